// The alert lifecycle: raise what the conditions say, repeat with back-off while it lasts, resolve when the cause is gone; and the list people read.
import crypto from 'node:crypto';
import type { Selectable } from 'kysely';
import type { Logger } from '../log.js';
import type { Config } from '../config/load.js';
import type { Store } from '../store/store.js';
import type { AlertsTable } from '../store/tables.js';
import { alertSenderUses, notify, type AlertChannelDependencies, type AlertEvent, type AlertNotice } from './channels.js';
import { currentConditions, type AlertCondition } from './conditions.js';

type AlertRow = Selectable<AlertsTable>;
const MAX_REPEAT_MS = 86_400_000;

export interface AlertView {
  id: string;
  kind: string;
  subject: string;
  status: 'active' | 'resolved';
  message: string;
  link: string | null;
  raisedAt: string;
  notifiedCount: number;
  lastNotifiedAt: string | null;
  resolvedAt: string | null;
  /** Set when e-mail alerts go through the very credential this alert is about. */
  warning?: string;
}

/** What the alert service uses: the config, the store, and what its channels need. */
export interface AlertDependencies extends AlertChannelDependencies {
  config: Config;
  store: Store;
}

export class AlertService {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> | undefined;
  #started = false;
  /** A nudge arrived while a pass was running: run another right after it (the change may have come too late for it). */
  #again = false;

  constructor(
    private readonly services: AlertDependencies,
    private readonly logger: Logger,
  ) {}

  /** Evaluates only while `gate` says yes, when given: several instances share a database, one of them alerts. */
  #gate: (() => Promise<boolean>) | undefined;

  start(options: { gate?: () => Promise<boolean> } = {}): void {
    this.#gate = options.gate;
    this.#started = true;
    this.#timer = setTimeout(() => this.#tick(), 1000);
  }

  #tick(): void {
    clearTimeout(this.#timer);
    const gate = this.#gate;
    this.#running = (gate ? gate().then((mine) => (mine ? this.evaluate() : undefined)) : this.evaluate())
      .catch((err: unknown) => this.logger.error({ err }, 'alert evaluation failed'))
      .finally(() => {
        this.#running = undefined;
        if (!this.#started) return;
        const again = this.#again;
        this.#again = false;
        this.#timer = setTimeout(() => this.#tick(), again ? 0 : this.services.config.alerts.evaluateMs);
      });
  }

  /**
   * A state this process just changed (a refresh that failed, a credential that recovered): evaluate now instead of at
   * the next tick, which may be minutes away. Does nothing unless the evaluation loop runs (`start`).
   */
  nudge(): void {
    if (!this.#started) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#tick();
  }

  async stop(): Promise<void> {
    this.#started = false;
    clearTimeout(this.#timer);
    await this.#running;
    clearTimeout(this.#timer);
  }

  /** One pass: compares what should alert with what does, and notifies every change (and due repeats). */
  async evaluate(now = Date.now()): Promise<{ raised: number; resolved: number; repeated: number }> {
    const db = this.services.store.db;
    const wanted = await currentConditions(this.services.store, this.services.config.publicUrl, now);
    const active = await db.selectFrom('alerts').selectAll().where('status', '=', 'active').execute();
    const key = (a: { kind: string; subject: string }) => `${a.kind}\u0000${a.subject}`;
    const activeByKey = new Map(active.map((a) => [key(a), a]));
    const wantedKeys = new Set(wanted.map(key));
    const at = new Date(now).toISOString();
    const counts = { raised: 0, resolved: 0, repeated: 0 };

    for (const condition of wanted) {
      const existing = activeByKey.get(key(condition));
      if (!existing) {
        const row: AlertRow = { id: `al_${crypto.randomBytes(9).toString('base64url')}`, kind: condition.kind, subject: condition.subject, status: 'active', message: condition.message, link: condition.link ?? null, raised_at: at, notified_count: 0, last_notified_at: null, next_notify_at: null, resolved_at: null };
        await db.insertInto('alerts').values(row).execute();
        this.logger.warn({ alert: row.id, kind: row.kind, subject: row.subject }, row.message);
        await this.#notify(row, 'raised', now);
        counts.raised += 1;
      } else {
        if (existing.message !== condition.message) await db.updateTable('alerts').set({ message: condition.message }).where('id', '=', existing.id).execute();
        if (existing.next_notify_at && Date.parse(existing.next_notify_at) <= now) {
          await this.#notify({ ...existing, message: condition.message }, 'repeated', now);
          counts.repeated += 1;
        }
      }
    }
    for (const row of active) {
      if (wantedKeys.has(key(row))) continue;
      await db.updateTable('alerts').set({ status: 'resolved', resolved_at: at, next_notify_at: null }).where('id', '=', row.id).execute();
      this.logger.info({ alert: row.id, kind: row.kind, subject: row.subject }, 'alert resolved');
      await this.#notify({ ...row, status: 'resolved', resolved_at: at }, 'resolved', now);
      counts.resolved += 1;
    }
    return counts;
  }

  async list(status?: 'active' | 'resolved', limit = 100): Promise<AlertView[]> {
    let query = this.services.store.db.selectFrom('alerts').selectAll();
    if (status) query = query.where('status', '=', status);
    const rows = await query.orderBy('raised_at', 'desc').limit(limit).execute();
    return Promise.all(
      rows.map(async (r) => {
        const credential = r.subject.split(':')[0]!;
        const sameRoute = ['needs_reauthorization', 'client_secret_invalid', 'configuration_error', 'refresh_failing'].includes(r.kind) && (await alertSenderUses(credential, this.services.config.alerts, this.services));
        return {
          id: r.id,
          kind: r.kind,
          subject: r.subject,
          status: r.status as 'active' | 'resolved',
          message: r.message,
          link: r.link,
          raisedAt: r.raised_at,
          notifiedCount: r.notified_count,
          lastNotifiedAt: r.last_notified_at,
          resolvedAt: r.resolved_at,
          ...(sameRoute ? { warning: `alert e-mails go through credential ${credential} itself, so this one may not arrive: give the alert sender a server with another credential or a password` } : {}),
        };
      }),
    );
  }

  async #notify(row: AlertRow, event: AlertEvent, now: number): Promise<void> {
    const notice: AlertNotice = { id: row.id, event, kind: row.kind, subject: row.subject, message: row.message, link: row.link, raisedAt: row.raised_at, resolvedAt: row.resolved_at };
    await notify(notice, this.services.config.alerts, this.services, this.logger);
    const count = row.notified_count + 1;
    // Back-off: repeat after repeatMs, then twice as long each time, at most daily.
    const next = event === 'resolved' ? null : new Date(now + Math.min(MAX_REPEAT_MS, this.services.config.alerts.repeatMs * 2 ** (count - 1))).toISOString();
    await this.services.store.db.updateTable('alerts').set({ notified_count: count, last_notified_at: new Date(now).toISOString(), next_notify_at: next }).where('id', '=', row.id).execute();
  }
}

export type { AlertCondition };
