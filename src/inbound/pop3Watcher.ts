// Watches a POP3 mailbox by polling: logs in with XOAUTH2 (or a password), delivers messages whose UIDL is new, deletes them after delivery if asked.
import type { ResolvedServer } from '../servers/model.js';
import { backoffDelay } from '../tokens/backoff.js';
import { connectPop3, type Pop3Client } from './pop3/client.js';
import { deliverInbound, parkOversized } from './delivery.js';
import { Pop3Error, Pop3ErrorCode } from './pop3/errors.js';
import type { WatcherRow } from './repository.js';
import { settingsOf } from './repository.js';
import { WatcherBase } from './watcherBase.js';

export class Pop3Watcher extends WatcherBase {
  protected async run(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      const watcher = await this.deps.repo.find(this.name);
      if (!watcher) return;
      const interval = settingsOf(watcher).pollIntervalSeconds * 1000;
      let wait = interval;
      try {
        await this.#poll(watcher);
        failures = 0;
        const nextDue = await this.deps.repo.nextDueAt(this.name);
        if (nextDue) wait = Math.min(wait, Math.max(0, Date.parse(nextDue) - Date.now()));
        await this.deps.repo.setState(this.name, 'polling');
      } catch (err) {
        failures += 1;
        const message = (err as Error).message?.slice(0, 500) ?? String(err);
        this.deps.logger.warn({ watcher: this.name, err: message }, 'POP3 poll failed');
        await this.deps.repo.setState(this.name, 'backoff', { error: message }).catch(() => undefined);
        wait = backoffDelay(failures, { baseMs: 1000, maxMs: this.deps.options.reconnectMaxMs });
      }
      if (this.stopping) break;
      await this.sleep(wait);
    }
  }

  /** One POP3 session: every message whose UIDL Mailgate has not delivered yet, oldest first; deletions commit at QUIT. */
  async #poll(watcher: WatcherRow): Promise<void> {
    const settings = settingsOf(watcher);
    const server = this.deps.servers.resolve(await this.deps.servers.get(settings.server));
    if (server.protocol !== 'pop3') throw new Error(`server ${server.name} is ${server.protocol}, not pop3`);
    await this.deps.repo.setState(this.name, 'connecting');
    const client = await this.#login(server);
    let clean = false;
    const deleted: string[] = [];
    try {
      await this.deps.repo.setState(this.name, 'connected', { connected: true, error: null });
      // Sizes first (one LIST): a message over the limit is parked without being downloaded.
      const sizes = new Map((await client.list()).map((m) => [m.number, m.size]));
      for (const { number, uid } of await client.uidl()) {
        if (this.stopping) break;
        const key = `pop3:${uid}`;
        const known = await this.deps.repo.deliveryByKey(this.name, key);
        // Delivered in an earlier session that ended before its QUIT: delete it now.
        if (known?.status === 'delivered' && known.acknowledged_at === null && settings.after === 'delete') {
          await client.delete(number);
          deleted.push(known.id);
          continue;
        }
        if (known && (known.status !== 'pending' || Date.parse(known.next_attempt_at) > Date.now())) continue;
        const delivery = known ?? (await this.deps.repo.admit(this.name, key, null, null));
        const size = sizes.get(number) ?? 0;
        if (size > this.deps.options.maxMessageBytes) {
          this.deps.onDelivery?.(this.name, await parkOversized(this.deps, delivery, size));
          continue;
        }
        let raw: Buffer;
        try {
          // Bounded as well: a server whose LIST understated the size cannot make the read grow without end.
          raw = await client.retrieve(number, { sizeHint: size, maxBytes: this.deps.options.maxMessageBytes });
        } catch (err) {
          if (err instanceof Pop3Error && err.code === Pop3ErrorCode.POP3_TOO_LARGE) {
            this.deps.onDelivery?.(this.name, await parkOversized(this.deps, delivery, this.deps.options.maxMessageBytes + 1));
          }
          throw err;
        }
        const outcome = await deliverInbound(
          { repo: this.deps.repo, outbox: this.deps.outbox, logger: this.deps.logger, options: this.deps.options },
          watcher,
          delivery,
          raw,
          { server: server.name, folder: 'INBOX', uid: null, uidValidity: null },
          async () => {
            if (settings.after !== 'delete') return 'done';
            // DELE takes effect at QUIT (RFC 1939 §6): recorded as acknowledged after a clean QUIT.
            await client.delete(number);
            deleted.push(delivery.id);
            return 'deferred';
          },
        );
        this.deps.onDelivery?.(this.name, outcome);
      }
      clean = true;
    } finally {
      // QUIT commits DELE (RFC 1939 §6); after an error, close without it so nothing half-done is committed.
      if (clean) {
        await client.quit();
        await this.deps.repo.markAcknowledged(deleted);
      } else client.close();
    }
  }

  async #login(server: ResolvedServer): Promise<Pop3Client> {
    const connect = () =>
      connectPop3({ host: server.host, port: server.port, security: server.security, ...(server.tlsCa ? { tlsCa: server.tlsCa } : {}), tlsRejectUnauthorized: server.tlsRejectUnauthorized, timeoutMs: 20_000 });
    if (server.auth.type === 'password') {
      const client = await connect();
      await client.authPassword(server.username ?? '', server.auth.password);
      return client;
    }
    if (server.auth.type !== 'oauth2') throw new Error(`server ${server.name} has no authentication configured`);
    const credential = server.auth.credential;
    for (const forceRefresh of [false, true]) {
      const client = await connect();
      try {
        await client.authXOAuth2(server.username ?? '', (await this.deps.tokens.getAccessToken(credential, { forceRefresh })).accessToken.reveal());
        return client;
      } catch (err) {
        client.close();
        if (forceRefresh || (err as { code?: string }).code !== 'POP3_AUTH_FAILED') throw err;
        this.deps.logger.info({ watcher: this.name }, 'POP3 login refused the token: refreshing once and retrying');
      }
    }
    throw new Error('unreachable');
  }
}
