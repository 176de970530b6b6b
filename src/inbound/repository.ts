// Watchers, their checkpoints (UIDVALIDITY + last UID) and the record of every inbound delivery, in the store.
import crypto from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import { sql } from 'kysely';
import { ErrorCode, MailgateError } from '../errors.js';
import type { Keyring } from '../secrets/keyring.js';
import { Secret } from '../secrets/secret.js';
import { assignments, runStatement, statement, type SqlValue } from '../store/statements.js';
import type { Store } from '../store/store.js';
import type { Database, InboundDeliveriesTable, WatchersTable, WatcherStateTable } from '../store/tables.js';
import type { WatcherRunState, WatcherSettings, WatcherView } from './model.js';

export type WatcherRow = Selectable<WatchersTable>;
export type WatcherStateRow = Selectable<WatcherStateTable>;
export type DeliveryRow = Selectable<InboundDeliveriesTable>;
export type DeliveryStatus = 'pending' | 'delivered' | 'parked' | 'skipped';

/**
 * What happens to the secret a new one replaces: it keeps signing until `previousSignsUntil` (a rotation's grace), or
 * stops at once when that is not in the future. Without a new secret: a rotation in progress ends by then, if sooner.
 */
export interface SecretRotation {
  previousSignsUntil: Date;
}

const secretContext = (name: string) => `watcher:${name}:webhookSecret`;
const now = () => new Date().toISOString();

/** What `recordDelivery` stores about one delivery's outcome. */
export interface DeliveryRecord {
  status: DeliveryStatus;
  event?: string;
  messageId?: string | null;
  subject?: string | null;
  from?: string | null;
  size?: number | null;
  error?: string | null;
  nextAttemptAt?: string;
  attempts?: number;
}

/** Opened secrets kept at most: one or two per watcher; a replaced secret's entry is dropped when the map fills. */
const OPENED_SECRETS_LIMIT = 1000;

export class WatcherRepository {
  /** Webhook secrets already opened (AES-GCM), by watcher and sealed value: opened once, not once per delivery. */
  readonly #opened = new Map<string, Secret>();

  constructor(
    private readonly store: Store,
    private readonly keyring: Keyring,
  ) {}

  async find(name: string): Promise<WatcherRow | undefined> {
    return this.store.db.selectFrom('watchers').selectAll().where('name', '=', name).executeTakeFirst();
  }

  async get(name: string): Promise<WatcherRow> {
    const row = await this.find(name);
    if (!row) throw new MailgateError(ErrorCode.NOT_FOUND, `no watcher named ${JSON.stringify(name)} (list them with \`mailgate watcher list\`)`);
    return row;
  }

  async list(): Promise<WatcherRow[]> {
    return this.store.db.selectFrom('watchers').selectAll().orderBy('name').execute();
  }

  /**
   * Inserts or replaces a watcher; `secret` undefined keeps the stored one. A new secret without `rotation` ends any
   * rotation in progress; with it, the secret it replaces is kept (sealed as it was) to sign alongside until then.
   * Only the newest previous secret is kept: a second rotation within the grace drops the one before.
   */
  async save(settings: WatcherSettings, secret: string | undefined, source: 'config' | 'api', rotation?: SecretRotation): Promise<void> {
    const at = now();
    const values = {
      name: settings.name,
      server: settings.server,
      folder: settings.folder,
      mode: settings.mode,
      poll_interval_seconds: settings.pollIntervalSeconds,
      after: settings.after,
      webhook_url: settings.webhookUrl,
      filter_from: settings.filterFrom ?? null,
      filter_subject: settings.filterSubject ?? null,
      enabled: settings.enabled ? 1 : 0,
      source,
      updated_at: at,
    };
    const sealed = secret === undefined ? undefined : this.keyring.seal(secret, secretContext(settings.name));
    await this.store.db.transaction().execute(async (trx) => {
      const existing = await trx.selectFrom('watchers').select(['webhook_secret', 'webhook_previous_secret', 'webhook_previous_secret_expires_at']).where('name', '=', settings.name).executeTakeFirst();
      const until = rotation && rotation.previousSignsUntil.getTime() > Date.now() ? rotation.previousSignsUntil.toISOString() : null;
      let previous: { webhook_previous_secret: string | null; webhook_previous_secret_expires_at: string | null } | undefined;
      if (sealed !== undefined) {
        // The sealed value moves as it is: same watcher, same keyring context, never opened on the way.
        previous = existing && until ? { webhook_previous_secret: existing.webhook_secret, webhook_previous_secret_expires_at: until } : { webhook_previous_secret: null, webhook_previous_secret_expires_at: null };
      } else if (rotation && existing?.webhook_previous_secret) {
        const sooner = until !== null && existing.webhook_previous_secret_expires_at !== null && existing.webhook_previous_secret_expires_at < until ? existing.webhook_previous_secret_expires_at : until;
        previous = sooner ? { webhook_previous_secret: existing.webhook_previous_secret, webhook_previous_secret_expires_at: sooner } : { webhook_previous_secret: null, webhook_previous_secret_expires_at: null };
      }
      const update = { ...values, ...(sealed !== undefined ? { webhook_secret: sealed } : {}), ...previous };
      await trx
        .insertInto('watchers')
        .values({ ...values, webhook_secret: sealed ?? '', webhook_previous_secret: null, webhook_previous_secret_expires_at: null, created_at: at })
        .onConflict((oc) => oc.column('name').doUpdateSet(update))
        .execute();
    });
    await this.store.changes.record('watchers', settings.name);
  }

  /** Tells every running instance that `name` needs a look (a parked delivery was put back): the one running it acts. */
  async announce(name: string): Promise<void> {
    await this.store.changes.record('watchers', name);
  }

  async remove(name: string): Promise<void> {
    await this.store.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('watchers').where('name', '=', name).execute();
      await trx.deleteFrom('watcher_state').where('watcher', '=', name).execute();
    });
    await this.store.changes.record('watchers', name);
  }

  secretOf(row: WatcherRow): Secret {
    return this.#open(row.name, row.webhook_secret);
  }

  /** A sealed secret opened, or taken from those opened before: a sealed value is the same secret for as long as it is stored. */
  #open(name: string, sealed: string): Secret {
    const key = `${name}\n${sealed}`;
    let secret = this.#opened.get(key);
    if (!secret) {
      secret = new Secret(this.keyring.open(sealed, secretContext(name)));
      if (this.#opened.size >= OPENED_SECRETS_LIMIT) this.#opened.clear();
      this.#opened.set(key, secret);
    }
    return secret;
  }

  /**
   * The secrets that sign a delivery now: the current one, then the one it replaced while its grace lasts. Read from
   * the store at each signing, not from the row a watcher session started with: a secret replaced with grace 0 (a
   * leak) signs nothing more once the change is stored, in this process or any other. A previous secret found expired
   * is dropped from the store here (lazily: nothing else needs to run at the moment it expires). Each read is of the
   * three sealed columns only; what they seal is opened once per sealed value (`#open`).
   */
  async signingSecrets(watcher: WatcherRow): Promise<Secret[]> {
    const read = statement(this.store.kind, 'watcher secrets', () => 'select "webhook_secret", "webhook_previous_secret", "webhook_previous_secret_expires_at" from "watchers" where "name" = ?');
    const row = (await runStatement<Pick<WatcherRow, 'webhook_secret' | 'webhook_previous_secret' | 'webhook_previous_secret_expires_at'>>(this.store.db, read, [watcher.name])).rows[0] ?? watcher;
    const current = this.#open(watcher.name, row.webhook_secret);
    if (row.webhook_previous_secret === null) return [current];
    if (previousSecretExpiresAt(row) !== null) return [current, this.#open(watcher.name, row.webhook_previous_secret)];
    await this.pruneExpiredSecrets(watcher.name);
    return [current];
  }

  /**
   * Drops previous secrets whose grace is over (of one watcher, or all). Not a definition change: what signs does not
   * change, so no running watcher needs a restart.
   */
  async pruneExpiredSecrets(name?: string): Promise<void> {
    let query = this.store.db
      .updateTable('watchers')
      .set({ webhook_previous_secret: null, webhook_previous_secret_expires_at: null })
      .where('webhook_previous_secret_expires_at', 'is not', null)
      .where('webhook_previous_secret_expires_at', '<=', now());
    if (name !== undefined) query = query.where('name', '=', name);
    await query.execute();
  }

  async state(name: string): Promise<WatcherStateRow> {
    const row = await this.store.db.selectFrom('watcher_state').selectAll().where('watcher', '=', name).executeTakeFirst();
    if (row) return row;
    const fresh = { watcher: name, uidvalidity: null, last_uid: 0, state: 'stopped', connected_at: null, last_message_at: null, last_error: null, last_error_at: null, updated_at: now() };
    await this.store.db.insertInto('watcher_state').values(fresh).onConflict((oc) => oc.column('watcher').doNothing()).execute();
    return fresh;
  }

  async setState(name: string, state: WatcherRunState, extra: { error?: string | null; connected?: boolean } = {}): Promise<void> {
    await this.state(name);
    const at = now();
    await this.store.db
      .updateTable('watcher_state')
      .set({
        state,
        updated_at: at,
        ...(extra.connected ? { connected_at: at } : {}),
        ...(extra.error !== undefined ? { last_error: extra.error, ...(extra.error ? { last_error_at: at } : {}) } : {}),
      })
      .where('watcher', '=', name)
      .execute();
  }

  /** A new UIDVALIDITY means the folder's UIDs were renumbered: start over from UID 0 (RFC 9051 §2.3.1.1). */
  async resetCheckpoint(name: string, uidValidity: string): Promise<void> {
    await this.state(name);
    await this.store.db.updateTable('watcher_state').set({ uidvalidity: uidValidity, last_uid: 0, updated_at: now() }).where('watcher', '=', name).execute();
  }

  /**
   * Records that `uid` was seen (a pending delivery) and moves the checkpoint past it, in one transaction: after a
   * crash the pending row is retried, so nothing is missed, and the checkpoint never goes past an unrecorded message.
   */
  async admit(name: string, mailboxKey: string, uid: number | null, advanceTo: number | null): Promise<DeliveryRow> {
    const at = now();
    const row: DeliveryRow = {
      id: `${Date.now().toString(36).padStart(9, '0')}${crypto.randomBytes(8).toString('hex')}`,
      watcher: name,
      mailbox_key: mailboxKey,
      uid,
      status: 'pending',
      event: null,
      message_id: null,
      subject: null,
      from_address: null,
      size: null,
      attempts: 0,
      next_attempt_at: at,
      last_error: null,
      created_at: at,
      updated_at: at,
      delivered_at: null,
      acknowledged_at: null,
    };
    return this.store.db.transaction().execute(async (trx) => {
      const existing = await trx.selectFrom('inbound_deliveries').selectAll().where('watcher', '=', name).where('mailbox_key', '=', mailboxKey).executeTakeFirst();
      if (!existing) await trx.insertInto('inbound_deliveries').values(row).execute();
      if (advanceTo !== null) await trx.updateTable('watcher_state').set({ last_uid: advanceTo, updated_at: at }).where('watcher', '=', name).where('last_uid', '<', advanceTo).execute();
      return existing ?? row;
    });
  }

  /** `admit` for a batch of UIDs in one transaction; returns the delivery rows in the same order. */
  async admitMany(name: string, items: { mailboxKey: string; uid: number }[]): Promise<DeliveryRow[]> {
    if (items.length === 0) return [];
    const at = now();
    const advanceTo = Math.max(...items.map((i) => i.uid));
    return this.store.db.transaction().execute(async (trx) => {
      const existing = await trx.selectFrom('inbound_deliveries').selectAll().where('watcher', '=', name).where('mailbox_key', 'in', items.map((i) => i.mailboxKey)).execute();
      const byKey = new Map(existing.map((r) => [r.mailbox_key, r]));
      const fresh: DeliveryRow[] = [];
      const rows = items.map((item) => {
        let row = byKey.get(item.mailboxKey);
        if (!row) {
          row = { id: `${Date.now().toString(36).padStart(9, '0')}${crypto.randomBytes(8).toString('hex')}`, watcher: name, mailbox_key: item.mailboxKey, uid: item.uid, status: 'pending', event: null, message_id: null, subject: null, from_address: null, size: null, attempts: 0, next_attempt_at: at, last_error: null, created_at: at, updated_at: at, delivered_at: null, acknowledged_at: null };
          byKey.set(item.mailboxKey, row);
          fresh.push(row);
        }
        return row;
      });
      // One INSERT per 50 rows (17 values a row: under the 999 parameters of SQLite builds before 3.32).
      for (let i = 0; i < fresh.length; i += 50) await trx.insertInto('inbound_deliveries').values(fresh.slice(i, i + 50)).execute();
      await trx.updateTable('watcher_state').set({ last_uid: advanceTo, updated_at: at }).where('watcher', '=', name).where('last_uid', '<', advanceTo).execute();
      return rows;
    });
  }

  async dueDeliveries(name: string, limit: number): Promise<DeliveryRow[]> {
    return this.store.db.selectFrom('inbound_deliveries').selectAll().where('watcher', '=', name).where('status', '=', 'pending').where('next_attempt_at', '<=', now()).orderBy('id').limit(limit).execute();
  }

  async nextDueAt(name: string): Promise<string | undefined> {
    const row = await this.store.db.selectFrom('inbound_deliveries').select(sql<string | null>`min(next_attempt_at)`.as('next')).where('watcher', '=', name).where('status', '=', 'pending').executeTakeFirst();
    return row?.next ?? undefined;
  }

  async findDelivery(id: string): Promise<DeliveryRow | undefined> {
    return this.store.db.selectFrom('inbound_deliveries').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Delivered messages whose upstream acknowledgement is not recorded yet (the gateway died in between), oldest first. */
  async unacknowledged(name: string, mailboxKeyPrefix: string, limit = 500): Promise<DeliveryRow[]> {
    return this.store.db
      .selectFrom('inbound_deliveries')
      .selectAll()
      .where('watcher', '=', name)
      .where('status', '=', 'delivered')
      .where('acknowledged_at', 'is', null)
      .where('mailbox_key', 'like', `${mailboxKeyPrefix}%`)
      .orderBy('id')
      .limit(limit)
      .execute();
  }

  async markAcknowledged(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.store.db.updateTable('inbound_deliveries').set({ acknowledged_at: now() }).where('id', 'in', [...ids]).execute();
  }

  async deliveryByKey(name: string, mailboxKey: string): Promise<DeliveryRow | undefined> {
    return this.store.db.selectFrom('inbound_deliveries').selectAll().where('watcher', '=', name).where('mailbox_key', '=', mailboxKey).executeTakeFirst();
  }

  async recordDelivery(id: string, outcome: DeliveryRecord): Promise<void> {
    const at = now();
    await this.#updateDelivery(this.store.db, id, outcome, at);
    if (outcome.status === 'delivered') {
      await this.store.db
        .updateTable('watcher_state')
        .set({ last_message_at: at })
        .where('watcher', '=', (eb) => eb.selectFrom('inbound_deliveries').select('watcher').where('id', '=', id))
        .execute();
    }
  }

  /**
   * The outcomes of a batch of `name`'s deliveries in one transaction (one commit instead of one or two per message):
   * a batch is recorded before it is acknowledged upstream.
   */
  async recordDeliveries(name: string, outcomes: readonly { id: string; outcome: DeliveryRecord }[]): Promise<void> {
    if (outcomes.length === 0) return;
    const at = now();
    await this.store.db.transaction().execute(async (trx) => {
      for (const { id, outcome } of outcomes) await this.#updateDelivery(trx, id, outcome, at);
      if (outcomes.some(({ outcome }) => outcome.status === 'delivered')) await trx.updateTable('watcher_state').set({ last_message_at: at }).where('watcher', '=', name).execute();
    });
  }

  /** One per delivery: its SQL is written once per set of columns (store/statements.ts), not built per message. */
  async #updateDelivery(db: Kysely<Database>, id: string, outcome: DeliveryRecord, at: string): Promise<void> {
    const set: { [Column in keyof InboundDeliveriesTable]?: SqlValue } = {
      status: outcome.status,
      updated_at: at,
      ...(outcome.event !== undefined ? { event: outcome.event } : {}),
      ...(outcome.messageId !== undefined ? { message_id: outcome.messageId } : {}),
      ...(outcome.subject !== undefined ? { subject: outcome.subject?.slice(0, 1000) ?? null } : {}),
      ...(outcome.from !== undefined ? { from_address: outcome.from?.slice(0, 500) ?? null } : {}),
      ...(outcome.size !== undefined ? { size: outcome.size } : {}),
      ...(outcome.error !== undefined ? { last_error: outcome.error } : {}),
      ...(outcome.nextAttemptAt !== undefined ? { next_attempt_at: outcome.nextAttemptAt } : {}),
      ...(outcome.attempts !== undefined ? { attempts: outcome.attempts } : {}),
      ...(outcome.status === 'delivered' ? { delivered_at: at } : {}),
    };
    const columns = Object.keys(set) as (keyof typeof set)[];
    const update = statement(this.store.kind, `inbound delivery:${columns.join(',')}`, () => `update "inbound_deliveries" set ${assignments(columns)} where "id" = ?`);
    await runStatement(db, update, [...columns.map((c) => set[c] ?? null), id]);
  }

  async deliveries(name: string, status: DeliveryStatus | undefined, limit: number): Promise<DeliveryRow[]> {
    let query = this.store.db.selectFrom('inbound_deliveries').selectAll().where('watcher', '=', name);
    if (status) query = query.where('status', '=', status);
    return query.orderBy('id', 'desc').limit(limit).execute();
  }

  async counts(name: string): Promise<Record<DeliveryStatus, number>> {
    const rows = await this.store.db.selectFrom('inbound_deliveries').select(['status', sql<number>`count(*)`.as('n')]).where('watcher', '=', name).groupBy('status').execute();
    const counts: Record<DeliveryStatus, number> = { pending: 0, delivered: 0, parked: 0, skipped: 0 };
    for (const r of rows) counts[r.status as DeliveryStatus] = Number(r.n);
    return counts;
  }

  async view(row: WatcherRow): Promise<WatcherView> {
    const state = await this.state(row.name);
    const counts = await this.counts(row.name);
    return {
      ...settingsOf(row),
      source: row.source as 'config' | 'api',
      status: {
        state: state.state as WatcherRunState,
        connectedAt: state.connected_at,
        lastMessageAt: state.last_message_at,
        lastError: state.last_error,
        lastErrorAt: state.last_error_at,
        uidValidity: state.uidvalidity,
        lastUid: state.last_uid,
        delivered: counts.delivered,
        pending: counts.pending,
        parked: counts.parked,
      },
      previousSecretExpiresAt: previousSecretExpiresAt(row),
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    };
  }
}

/** Until when the secret a rotation replaced still signs, or null: no rotation in progress (or its grace is over). */
export function previousSecretExpiresAt(row: Pick<WatcherRow, 'webhook_previous_secret' | 'webhook_previous_secret_expires_at'>): string | null {
  const until = row.webhook_previous_secret_expires_at;
  return row.webhook_previous_secret !== null && until !== null && until > now() ? until : null;
}

export function settingsOf(row: WatcherRow): WatcherSettings {
  return {
    name: row.name,
    server: row.server,
    folder: row.folder,
    mode: row.mode as 'idle' | 'poll',
    pollIntervalSeconds: row.poll_interval_seconds,
    after: row.after,
    webhookUrl: row.webhook_url,
    filterFrom: row.filter_from ?? undefined,
    filterSubject: row.filter_subject ?? undefined,
    enabled: row.enabled === 1,
  };
}
