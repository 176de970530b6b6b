// Watches one IMAP folder: logs in with XOAUTH2 (or a password), delivers what is new, listens with IDLE (or polls), and reconnects with backoff.
import { secureContextFor } from '../servers/tlsTrust.js';
import { ImapFlow, type FetchMessageObject } from 'imapflow';
import type { Logger } from '../log.js';
import type { ResolvedServer } from '../servers/model.js';
import { backoffDelay } from '../tokens/backoff.js';
import { deliverInbound, parkOversized, type DeliveryOutcome, type InboundOptions } from './delivery.js';
import type { DeliveryRecord, DeliveryRow, WatcherRepository, WatcherRow } from './repository.js';
import { settingsOf } from './repository.js';
import { WatcherBase } from './watcherBase.js';

const RECONNECT_BASE_MS = 1000;
/** New messages are fetched and acknowledged in batches of this many, */
const BATCH_SIZE = 50;
/** fetched at most this many bytes at a time (a 50 MB message comes alone); two such slices are in memory at most. */
const BATCH_BYTES = 16 * 1024 * 1024;

export class ImapWatcher extends WatcherBase {
  #client: ImapFlow | undefined;

  protected override async beforeStop(): Promise<void> {
    try {
      await this.#client?.logout();
    } catch {
      this.#client?.close();
    }
  }

  protected async run(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      try {
        const connected = await this.#session();
        if (connected) failures = 0;
      } catch (err) {
        const message = describe(err);
        this.deps.logger.warn({ watcher: this.name, err: message }, 'watcher session failed');
        await this.deps.repo.setState(this.name, 'backoff', { error: message }).catch(() => undefined);
      }
      if (this.stopping) break;
      failures += 1;
      await this.sleep(backoffDelay(failures, { baseMs: RECONNECT_BASE_MS, maxMs: this.deps.options.reconnectMaxMs }));
    }
  }

  /** One connection's life. Returns true if it got as far as an open folder (so the backoff starts over). */
  async #session(): Promise<boolean> {
    const watcher = await this.deps.repo.get(this.name);
    const settings = settingsOf(watcher);
    const server = this.deps.servers.resolve(await this.deps.servers.get(settings.server));
    if (server.protocol !== 'imap') throw new Error(`server ${server.name} is ${server.protocol}, not imap`);
    await this.deps.repo.setState(this.name, 'connecting');

    const client = await this.#connect(server);
    this.#client = client;
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.on('error', (err: Error) => this.deps.logger.warn({ watcher: this.name, err: err.message }, 'IMAP connection error'));
    client.on('exists', () => this.kick());
    try {
      const mailbox = await client.mailboxOpen(settings.folder);
      const uidValidity = String(mailbox.uidValidity);
      const state = await this.deps.repo.state(this.name);
      if (state.uidvalidity !== uidValidity) {
        await this.deps.repo.resetCheckpoint(this.name, uidValidity);
        if (state.uidvalidity !== null) {
          const warning = `UIDVALIDITY of ${settings.folder} changed from ${state.uidvalidity} to ${uidValidity} (the folder was recreated or the server renumbered it): checkpoint reset; ${settings.after === 'seen' ? 'unseen' : 'all'} messages in the folder are delivered again`;
          this.deps.logger.warn({ watcher: this.name }, warning);
          await this.deps.repo.setState(this.name, 'connected', { error: warning });
        }
      }
      await this.deps.repo.setState(this.name, 'connected', { connected: true, ...(state.uidvalidity === uidValidity || state.uidvalidity === null ? { error: null } : {}) });
      await this.#reacknowledge(client, settings.after, uidValidity);
      const idleCapable = client.capabilities.has('IDLE');

      while (!this.stopping && client.usable) {
        await this.#deliverDue(client, watcher, server, uidValidity);
        await this.#deliverNew(client, watcher, server, uidValidity);
        const polling = settings.mode === 'poll' || !idleCapable;
        await this.deps.repo.setState(this.name, polling ? 'polling' : 'idle');
        const nextDue = await this.deps.repo.nextDueAt(this.name);
        const untilDue = nextDue ? Math.max(0, Date.parse(nextDue) - Date.now()) : Infinity;
        // IDLE runs on its own (imapflow starts it when the connection is free); a slow poll is kept as a safety net.
        const wait = Math.min(untilDue, polling ? settings.pollIntervalSeconds * 1000 : this.deps.options.idleCheckMs);
        await Promise.race([this.sleep(wait), closed]);
        if (polling && client.usable && !this.stopping) await client.noop();
      }
      return true;
    } finally {
      if (client.usable) await client.logout().catch(() => client.close());
      this.#client = undefined;
    }
  }

  /** Logs in; with OAuth2, a refused login forces one token refresh and one more try. */
  async #connect(server: ResolvedServer): Promise<ImapFlow> {
    const attempt = async (forceRefresh: boolean) => {
      const auth =
        server.auth.type === 'oauth2'
          ? { user: server.username ?? '', accessToken: (await this.deps.tokens.getAccessToken(server.auth.credential, { forceRefresh })).accessToken.reveal() }
          : server.auth.type === 'password'
            ? { user: server.username ?? '', pass: server.auth.password }
            : undefined;
      const client = new ImapFlow({
        host: server.host,
        port: server.port,
        secure: server.security === 'tls',
        doSTARTTLS: server.security === 'starttls' ? true : server.security === 'none' ? false : undefined,
        tls: { ...(server.tlsCa ? { secureContext: secureContextFor(server.tlsCa) } : {}), rejectUnauthorized: server.tlsRejectUnauthorized, minVersion: 'TLSv1.2' },
        ...(auth ? { auth } : {}),
        logger: false,
        // Some servers (Microsoft) drop an IDLE after about 30 minutes: renew it well before.
        maxIdleTime: 5 * 60_000,
        // IDLE soon after our own commands end (imapflow waits 15 s by default): new mail is announced at once.
        autoIdleDelay: 250,
        connectionTimeout: 20_000,
        greetingTimeout: 15_000,
      } as ConstructorParameters<typeof ImapFlow>[0]);
      client.on('error', () => undefined); // errors before connect() resolves are reported by connect() itself
      await client.connect();
      return client;
    };
    try {
      return await attempt(false);
    } catch (err) {
      if (server.auth.type === 'oauth2' && (err as { authenticationFailed?: boolean }).authenticationFailed) {
        this.deps.logger.info({ watcher: this.name }, 'IMAP login refused the token: refreshing once and retrying');
        return attempt(true);
      }
      throw err;
    }
  }

  /**
   * Acknowledges what was delivered but not acknowledged (the gateway died between the webhook's 2xx and the STORE):
   * idempotent — +FLAGS \\Seen again, a MOVE or delete of a UID that is gone does nothing.
   */
  async #reacknowledge(client: ImapFlow, after: string, uidValidity: string): Promise<void> {
    for (;;) {
      const pending = await this.deps.repo.unacknowledged(this.name, `imap:${uidValidity}:`);
      if (pending.length === 0) return;
      await acknowledge(client, pending.map((d) => d.uid).join(','), after);
      await this.deps.repo.markAcknowledged(pending.map((d) => d.id));
      this.deps.logger.info({ watcher: this.name, count: pending.length, after }, 'acknowledged upstream what was delivered before the last stop');
      if (pending.length < 500) return;
    }
  }

  /**
   * Delivers what is new since the checkpoint, in slices of up to BATCH_SIZE messages and BATCH_BYTES: each slice is
   * admitted and fetched with one FETCH, delivered message by message in UID order, recorded in one transaction and
   * then acknowledged with one STORE/MOVE/EXPUNGE of the messages whose webhook answered 2xx. The next slice is
   * fetched while this one is delivered (at most two slices in memory), so the webhooks do not wait for the server.
   */
  async #deliverNew(client: ImapFlow, watcher: WatcherRow, server: ResolvedServer, uidValidity: string): Promise<void> {
    const settings = settingsOf(watcher);
    const { last_uid: last } = await this.deps.repo.state(this.name);
    // From a fresh checkpoint (first start, or UIDVALIDITY changed) with after=seen, what was already read is done.
    const query = last === 0 && settings.after === 'seen' ? { seen: false } : { uid: `${last + 1}:*` };
    const found = await client.search(query, { uid: true });
    // "n:*" always matches the highest UID, even below n (RFC 9051 §6.4.4): filter.
    const uids = (found || []).filter((uid) => uid > last).sort((a, b) => a - b);
    if (uids.length === 0) return;
    const plan = this.#slices(client, uids, uidValidity);
    const fetchNext = async (): Promise<FetchedSlice | undefined> => {
      const next = await plan.next();
      return next.done ? undefined : { deliveries: next.value, sources: await fetchSources(client, next.value) };
    };
    let fetching = fetchNext();
    try {
      for (;;) {
        const slice = await fetching;
        if (!slice || this.stopping || !client.usable) return;
        fetching = fetchNext();
        // Failing while this slice is delivered leaves the next fetch without a reader: its failure is not "unhandled".
        fetching.catch(() => undefined);
        await this.#deliverSlice(client, watcher, server, uidValidity, slice);
      }
    } finally {
      await fetching.catch(() => undefined);
      await plan.return(undefined);
    }
  }

  /**
   * Admits `uids` BATCH_SIZE at a time (recorded as pending, checkpoint moved past them), reads their sizes, parks
   * those over the limit without fetching a byte of them, and yields the rest in slices of at most BATCH_BYTES.
   */
  async *#slices(client: ImapFlow, uids: number[], uidValidity: string): AsyncGenerator<DeliveryRow[], void, undefined> {
    for (let i = 0; i < uids.length; i += BATCH_SIZE) {
      if (this.stopping || !client.usable) return;
      const batch = uids.slice(i, i + BATCH_SIZE);
      const admitted = await this.deps.repo.admitMany(this.name, batch.map((uid) => ({ mailboxKey: `imap:${uidValidity}:${uid}`, uid })));
      const deliveries = admitted.filter((d) => d.status === 'pending');
      if (deliveries.length === 0) continue;
      const sizes = new Map<number, number>();
      for await (const msg of client.fetch(deliveries.map((d) => d.uid).join(','), { size: true }, { uid: true })) sizes.set(msg.uid, msg.size ?? 0);
      let slice: DeliveryRow[] = [];
      let bytes = 0;
      for (const d of deliveries) {
        const size = sizes.get(d.uid!) ?? 0;
        // Over the limit by RFC822.SIZE: parked (left in the mailbox) without fetching a byte of it.
        if (size > this.deps.options.maxMessageBytes) {
          this.deps.onDelivery?.(this.name, await parkOversized(this.deps, d, size));
          continue;
        }
        if (slice.length > 0 && bytes + size > BATCH_BYTES) {
          yield slice;
          slice = [];
          bytes = 0;
        }
        slice.push(d);
        bytes += size;
      }
      if (slice.length > 0) yield slice;
    }
  }

  /**
   * Delivers a fetched slice in UID order, records the outcomes in one transaction, then acknowledges the delivered
   * ones with one command. Only messages whose webhook answered 2xx, and whose outcome is stored, are acknowledged.
   */
  async #deliverSlice(client: ImapFlow, watcher: WatcherRow, server: ResolvedServer, uidValidity: string, { deliveries, sources }: FetchedSlice): Promise<void> {
    const settings = settingsOf(watcher);
    const outcomes: { id: string; outcome: DeliveryRecord }[] = [];
    const record = async (id: string, outcome: DeliveryRecord) => {
      outcomes.push({ id, outcome });
    };
    const delivered: DeliveryRow[] = [];
    try {
      for (const delivery of deliveries) {
        if (this.stopping) break;
        const raw = sources.get(delivery.uid!);
        if (!raw) {
          await record(delivery.id, { status: 'parked', error: 'the message is no longer in the folder (moved or deleted by someone else) before it could be delivered' });
          continue;
        }
        const outcome = await deliverInbound(
          { repo: this.deps.repo, outbox: this.deps.outbox, logger: this.deps.logger, options: this.deps.options, record },
          watcher,
          delivery,
          raw,
          { server: server.name, folder: settings.folder, uid: delivery.uid, uidValidity },
          async () => {
            delivered.push(delivery);
            return 'deferred';
          },
        );
        this.deps.onDelivery?.(this.name, outcome);
      }
    } catch (err) {
      // What the receivers took is still recorded (and acknowledged at the next session), as one at a time would have.
      await this.deps.repo.recordDeliveries(this.name, outcomes).catch(() => undefined);
      throw err;
    }
    // Stored before anything is acknowledged: a crash before this commit leaves them pending (delivered again).
    await this.deps.repo.recordDeliveries(this.name, outcomes);
    if (delivered.length === 0) return;
    try {
      await acknowledge(client, delivered.map((d) => d.uid).join(','), settings.after);
      await this.deps.repo.markAcknowledged(delivered.map((d) => d.id));
    } catch (err) {
      // The receivers have them (recorded as delivered); acknowledged at the next session.
      this.deps.logger.warn({ watcher: this.name, count: delivered.length, err: (err as Error).message }, 'delivered, but acknowledging upstream failed');
    }
  }

  async #deliverDue(client: ImapFlow, watcher: WatcherRow, server: ResolvedServer, uidValidity: string): Promise<void> {
    for (const delivery of await this.deps.repo.dueDeliveries(this.name, 50)) {
      if (this.stopping || !client.usable) return;
      if (!delivery.mailbox_key.startsWith(`imap:${uidValidity}:`)) {
        await this.deps.repo.recordDelivery(delivery.id, { status: 'parked', error: 'the folder was renumbered (UIDVALIDITY changed) before this message was delivered; it is delivered again under its new UID if it is still there' });
        continue;
      }
      await this.#attempt(client, watcher, server, uidValidity, delivery);
    }
  }

  async #attempt(client: ImapFlow, watcher: WatcherRow, server: ResolvedServer, uidValidity: string, delivery: DeliveryRow): Promise<void> {
    const settings = settingsOf(watcher);
    const uid = delivery.uid!;
    const sized = (await client.fetchOne(String(uid), { size: true }, { uid: true })) as FetchMessageObject | false;
    if (sized && (sized.size ?? 0) > this.deps.options.maxMessageBytes) {
      this.deps.onDelivery?.(this.name, await parkOversized(this.deps, delivery, sized.size!));
      return;
    }
    const fetched = (await client.fetchOne(String(uid), { source: true }, { uid: true })) as FetchMessageObject | false;
    if (!fetched || !fetched.source) {
      await this.deps.repo.recordDelivery(delivery.id, { status: 'parked', error: 'the message is no longer in the folder (moved or deleted by someone else) before it could be delivered' });
      return;
    }
    const outcome = await deliverInbound(
      { repo: this.deps.repo, outbox: this.deps.outbox, logger: this.deps.logger, options: this.deps.options },
      watcher,
      delivery,
      fetched.source,
      { server: server.name, folder: settings.folder, uid, uidValidity },
      async () => {
        await acknowledge(client, String(uid), settings.after);
        return 'done';
      },
    );
    this.deps.onDelivery?.(this.name, outcome);
  }
}

/** A slice of new messages, admitted, and its messages' bytes by UID (a UID missing: gone from the folder meanwhile). */
interface FetchedSlice {
  deliveries: DeliveryRow[];
  sources: Map<number, Buffer>;
}

async function fetchSources(client: ImapFlow, deliveries: DeliveryRow[]): Promise<Map<number, Buffer>> {
  const sources = new Map<number, Buffer>();
  for await (const msg of client.fetch(deliveries.map((d) => d.uid).join(','), { source: true }, { uid: true })) if (msg.source) sources.set(msg.uid, msg.source);
  return sources;
}

/** What the watcher does upstream once the webhook took the message. */
async function acknowledge(client: ImapFlow, uids: string, after: string): Promise<void> {
  if (after === 'seen') await client.messageFlagsAdd(uids, ['\\Seen'], { uid: true });
  else if (after === 'delete') await client.messageDelete(uids, { uid: true });
  else if (after.startsWith('move:')) await client.messageMove(uids, after.slice('move:'.length), { uid: true });
}

function describe(err: unknown): string {
  const e = err as { message?: string; responseText?: string; authenticationFailed?: boolean; code?: string; serverResponseCode?: string };
  if (e.authenticationFailed) return `IMAP login refused${e.responseText ? `: ${e.responseText}` : ''} (token invalid or lacking the IMAP scope, or IMAP disabled for the mailbox)`;
  if (e.serverResponseCode === 'NONEXISTENT') return `the folder does not exist${e.responseText ? `: ${e.responseText}` : ''}`;
  return `${e.code ? `${e.code}: ` : ''}${e.responseText ?? e.message ?? String(err)}`.slice(0, 500);
}
