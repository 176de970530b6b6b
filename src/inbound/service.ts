// Watcher operations for the CLI and the API: validation against the servers, and telling the running watchers what changed.
import { ErrorCode, MailgateError } from '../errors.js';
import type { ServerRepository } from '../servers/repository.js';
import { watcherInputSchema, type WatcherSettings, type WatcherView } from './model.js';
import type { DeliveryStatus, WatcherRepository } from './repository.js';
import { settingsOf } from './repository.js';

export class WatcherService {
  constructor(
    private readonly repo: WatcherRepository,
    private readonly servers: ServerRepository,
    /** Told when a watcher is added, changed or removed, so a running gateway restarts it. */
    private readonly onChange: (name: string) => void = () => undefined,
  ) {}

  async add(raw: unknown): Promise<WatcherView> {
    const { settings, secret } = await this.#validate(raw);
    if (await this.repo.find(settings.name)) throw new MailgateError(ErrorCode.ALREADY_EXISTS, `watcher ${JSON.stringify(settings.name)} exists already`);
    await this.repo.save(settings, secret, 'api');
    this.onChange(settings.name);
    return this.show(settings.name);
  }

  async update(name: string, patch: unknown): Promise<WatcherView> {
    const row = await this.repo.get(name);
    if (row.source === 'config') throw new MailgateError(ErrorCode.INPUT_INVALID, `watcher ${name} is defined in the configuration file: change it there`);
    if (typeof patch !== 'object' || patch === null) throw new MailgateError(ErrorCode.INPUT_INVALID, 'body: expected a JSON object with the fields to change');
    const current = settingsOf(row);
    const p = patch as Record<string, unknown>;
    const webhook = (p.webhook ?? {}) as { url?: string; secret?: string };
    const merged = {
      name,
      server: current.server,
      folder: current.folder,
      mode: current.mode,
      pollIntervalSeconds: current.pollIntervalSeconds,
      after: current.after,
      enabled: current.enabled,
      ...(current.filterFrom || current.filterSubject ? { filter: { ...(current.filterFrom ? { from: current.filterFrom } : {}), ...(current.filterSubject ? { subject: current.filterSubject } : {}) } } : {}),
      ...p,
      // The stored secret stays unless a new one is given (a form leaves it blank).
      webhook: { url: webhook.url ?? current.webhookUrl, secret: webhook.secret || this.repo.secretOf(row).reveal() },
    };
    const { settings } = await this.#validate(merged);
    await this.repo.save(settings, webhook.secret || undefined, 'api');
    this.onChange(name);
    return this.show(name);
  }

  async remove(name: string): Promise<void> {
    const row = await this.repo.get(name);
    if (row.source === 'config') throw new MailgateError(ErrorCode.INPUT_INVALID, `watcher ${name} is defined in the configuration file: remove it there`);
    await this.repo.remove(name);
    this.onChange(name);
  }

  async list(): Promise<WatcherView[]> {
    return Promise.all((await this.repo.list()).map((row) => this.repo.view(row)));
  }

  async show(name: string): Promise<WatcherView> {
    return this.repo.view(await this.repo.get(name));
  }

  async deliveries(name: string, status: string | undefined, limit: number) {
    await this.repo.get(name);
    if (status !== undefined && !['pending', 'delivered', 'parked', 'skipped'].includes(status)) throw new MailgateError(ErrorCode.INPUT_INVALID, 'status: expected pending, delivered, parked or skipped');
    return (await this.repo.deliveries(name, status as DeliveryStatus | undefined, limit)).map((d) => ({
      id: d.id,
      status: d.status,
      event: d.event,
      uid: d.uid,
      messageId: d.message_id,
      subject: d.subject,
      from: d.from_address,
      size: d.size,
      attempts: d.attempts,
      nextAttemptAt: d.status === 'pending' ? d.next_attempt_at : null,
      lastError: d.last_error,
      createdAt: d.created_at,
      deliveredAt: d.delivered_at,
    }));
  }

  /** Puts a parked delivery back in line: the watcher fetches the message again and retries its webhook. */
  async retry(name: string, id: string): Promise<void> {
    const delivery = await this.repo.findDelivery(id);
    if (!delivery || delivery.watcher !== name) throw new MailgateError(ErrorCode.NOT_FOUND, `watcher ${name} has no delivery ${JSON.stringify(id)}`);
    if (delivery.status !== 'parked') throw new MailgateError(ErrorCode.INPUT_INVALID, `delivery ${id} is ${delivery.status}; only parked deliveries can be retried`);
    await this.repo.recordDelivery(id, { status: 'pending', attempts: 0, nextAttemptAt: new Date().toISOString() });
    this.onChange(name);
  }

  async #validate(raw: unknown): Promise<{ settings: WatcherSettings; secret: string }> {
    const parsed = watcherInputSchema.safeParse(raw);
    if (!parsed.success) {
      throw new MailgateError(ErrorCode.INPUT_INVALID, parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.code === 'unrecognized_keys' ? `unknown field ${i.keys.join(', ')}` : i.message}`).join('; '));
    }
    const input = parsed.data;
    const problems: string[] = [];
    const server = await this.servers.find(input.server);
    if (!server) problems.push(`server: no server named ${JSON.stringify(input.server)} (add it first)`);
    else if (server.protocol === 'smtp') problems.push(`server: ${input.server} is an smtp server; a watcher reads an imap or pop3 server`);
    const after = input.after ?? 'seen';
    if (server?.protocol === 'pop3' && after.startsWith('move:')) problems.push('after: POP3 has no folders: use seen (keep, remembered by UIDL) or delete');
    if (server?.protocol === 'pop3' && input.folder && input.folder.toUpperCase() !== 'INBOX') problems.push('folder: POP3 reads only the inbox');
    if (!URL.canParse(input.webhook.url) || !/^https?:$/.test(new URL(input.webhook.url).protocol)) problems.push(`webhook.url: expected an http(s) URL, got ${JSON.stringify(input.webhook.url.slice(0, 100))}`);
    if (input.filter?.subject) {
      try {
        new RegExp(input.filter.subject, 'i');
      } catch {
        problems.push('filter.subject: not a valid regular expression');
      }
    }
    if (problems.length > 0) throw new MailgateError(ErrorCode.INPUT_INVALID, problems.join('; '));
    return {
      settings: {
        name: input.name,
        server: input.server,
        folder: input.folder ?? 'INBOX',
        mode: input.mode ?? (server?.protocol === 'pop3' ? 'poll' : 'idle'),
        pollIntervalSeconds: input.pollIntervalSeconds ?? 60,
        after,
        webhookUrl: input.webhook.url,
        filterFrom: input.filter?.from,
        filterSubject: input.filter?.subject,
        enabled: input.enabled ?? true,
      },
      secret: input.webhook.secret,
    };
  }
}
