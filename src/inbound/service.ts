// Watcher operations for the CLI and the API: validation against the servers, and telling the running watchers what changed.
import type { AuditLog } from '../audit/auditLog.js';
import { refuseRename } from '../patches.js';
import { ErrorCode, MailgateError } from '../errors.js';
import type { ServerRepository } from '../servers/repository.js';
import { watcherInputSchema, type WatcherSettings, type WatcherView } from './model.js';
import type { DeliveryStatus, SecretRotation, WatcherRepository } from './repository.js';
import { previousSecretExpiresAt, settingsOf } from './repository.js';

/** The longest grace a change may give a replaced webhook secret: 30 days, as inbound.webhookSecretGraceHours. */
export const MAX_SECRET_GRACE_SECONDS = 720 * 3600;

/** What a change needs besides its body: the configured grace, and who makes the change (for the audit log). */
export interface WatcherChangeContext {
  /** How long a replaced webhook secret keeps signing when the change does not say (inbound.webhookSecretGraceHours). */
  defaultSecretGraceMs: number;
  audit: AuditLog;
  actor: string;
}

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

  /**
   * Changes a watcher. A new `webhook.secret` starts a rotation: the secret it replaces keeps signing next to it for
   * `webhook.graceSeconds` (default: the configured grace; 0 ends it at once, for a leaked secret). `graceSeconds`
   * without a new secret shortens a rotation in progress (0 ends it now); it never makes one longer.
   */
  async update(name: string, patch: unknown, context: WatcherChangeContext): Promise<WatcherView> {
    const row = await this.repo.get(name);
    if (row.source === 'config') throw new MailgateError(ErrorCode.INPUT_INVALID, `watcher ${name} is defined in the configuration file: change it there`);
    if (typeof patch !== 'object' || patch === null) throw new MailgateError(ErrorCode.INPUT_INVALID, 'body: expected a JSON object with the fields to change');
    refuseRename('watcher', name, patch);
    const current = settingsOf(row);
    const p = patch as Record<string, unknown>;
    if (p.webhook !== undefined && (typeof p.webhook !== 'object' || p.webhook === null || Array.isArray(p.webhook))) {
      throw new MailgateError(ErrorCode.INPUT_INVALID, 'webhook: expected an object with the fields to change: { url?, secret?, graceSeconds? }');
    }
    const { graceSeconds: graceInput, ...webhook } = (p.webhook ?? {}) as { url?: string; secret?: string; graceSeconds?: unknown };
    const graceSeconds = checkGraceSeconds(graceInput);
    const merged = {
      server: current.server,
      folder: current.folder,
      mode: current.mode,
      pollIntervalSeconds: current.pollIntervalSeconds,
      after: current.after,
      enabled: current.enabled,
      ...(current.filterFrom || current.filterSubject ? { filter: { ...(current.filterFrom ? { from: current.filterFrom } : {}), ...(current.filterSubject ? { subject: current.filterSubject } : {}) } } : {}),
      ...p,
      name,
      // The stored secret stays unless a new one is given (a form leaves it blank).
      webhook: { url: webhook.url ?? current.webhookUrl, secret: webhook.secret || this.repo.secretOf(row).reveal() },
    };
    const { settings } = await this.#validate(merged);
    // The same secret again is no rotation: nothing would change for a receiver.
    const replacing = typeof webhook.secret === 'string' && webhook.secret !== '' && webhook.secret !== this.repo.secretOf(row).reveal();
    const rotating = replacing || (graceSeconds !== undefined && previousSecretExpiresAt(row) !== null);
    const graceMs = graceSeconds !== undefined ? graceSeconds * 1000 : context.defaultSecretGraceMs;
    const rotation: SecretRotation | undefined = rotating ? { previousSignsUntil: new Date(Date.now() + graceMs) } : undefined;
    await this.repo.save(settings, replacing ? webhook.secret : undefined, 'api', rotation);
    this.onChange(name);
    const view = await this.show(name);
    if (rotating) {
      // Values never: how long the old secret signs on, which a receiver's owner may need to know afterwards.
      await context.audit.record(context.actor, replacing ? 'watcher.rotateSecret' : 'watcher.shortenSecretGrace', name, { graceSeconds: graceMs / 1000, previousSecretExpiresAt: view.previousSecretExpiresAt });
    }
    return view;
  }

  async remove(name: string): Promise<void> {
    const row = await this.repo.get(name);
    if (row.source === 'config') throw new MailgateError(ErrorCode.INPUT_INVALID, `watcher ${name} is defined in the configuration file: remove it there`);
    await this.repo.remove(name);
    this.onChange(name);
  }

  async list(): Promise<WatcherView[]> {
    await this.repo.pruneExpiredSecrets();
    return Promise.all((await this.repo.list()).map((row) => this.repo.view(row)));
  }

  async show(name: string): Promise<WatcherView> {
    await this.repo.pruneExpiredSecrets(name);
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
    // The watcher may run in another instance on the same database: the change log reaches it there.
    await this.repo.announce(name);
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

/** `webhook.graceSeconds`: whole seconds, 0 (the old secret stops at once) to 30 days. */
function checkGraceSeconds(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_SECRET_GRACE_SECONDS) {
    throw new MailgateError(ErrorCode.INPUT_INVALID, `webhook.graceSeconds: expected whole seconds, 0-${MAX_SECRET_GRACE_SECONDS} (0 ends the old secret at once, e.g. after a leak)`);
  }
  return value;
}
