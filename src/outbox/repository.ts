// The outbox table: accept a message durably (once per idempotency key), lease due messages to a worker, and record every attempt's outcome.
import type { Selectable } from 'kysely';
import { sql } from 'kysely';
import { ErrorCode, MailgateError } from '../errors.js';
import { runStatement, statement } from '../store/statements.js';
import type { Store } from '../store/store.js';
import type { OutboxTable } from '../store/tables.js';
import { insertOutboxRow, updateLeasedOutboxRow } from './hotWrites.js';
import { appendHistory, idempotencyHash, messageIdFor, newMessageId } from './identity.js';
import type { OutboxMessage } from './message.js';
import { priorityOfRank, priorityRank, type Priority } from './priority.js';
import type { RawEnvelope, RawMessageSummary } from './rawMessage.js';
import { messageSummaries, type MessageSummary } from './summaries.js';

export type OutboxRow = Selectable<OutboxTable>;
/** `cancelled` is an admin's doing, kept apart from `failed` so that it raises no alert. */
export const OUTBOX_STATUSES = ['queued', 'sending', 'sent', 'failed', 'cancelled'] as const;
export type OutboxStatus = (typeof OUTBOX_STATUSES)[number];

/**
 * One line of a message's history: a delivery attempt, or an admin's action (`retried`, `cancelled`; server `-`).
 * A `retried` line carries the error the message had failed with, which the fresh round then clears.
 */
export interface AttemptRecord {
  at: string;
  server: string;
  outcome: 'sent' | 'retry' | 'next_server' | 'failed' | 'retried' | 'cancelled' | 'throttled';
  error?: string;
  response?: string;
}

/** What GET /messages/:id shows. */
export interface OutboxView {
  id: string;
  status: OutboxStatus;
  sender: string;
  attempts: number;
  server: string | null;
  messageId: string;
  idempotencyKey: string | null;
  lastError: string | null;
  response: string | null;
  rejected: string[];
  nextAttemptAt: string | null;
  priority: Priority;
  history: AttemptRecord[];
  createdAt: string;
  sentAt: string | null;
}

/** The columns of a row that no attempt has touched yet. */
const UNSENT = { attempts: 0, server_index: 0, server_attempts: 0, lease_owner: null, lease_until: null, server_used: null, last_error: null, response: null, rejected: null, sent_at: null, body_pruned_at: null } as const;

export class OutboxRepository {
  constructor(private readonly store: Store) {}

  /**
   * Stores the message for `caller` (`apikey:<id>`, `cli`, `alerts`). With an idempotency key this caller used before,
   * within its lifetime: the first message (created: false) when the request is the same, IDEMPOTENCY_KEY_REUSED when
   * it differs. Keys are the caller's own — another caller's identical key is another message — and expire.
   */
  async enqueue(message: OutboxMessage, fromAddress: string, size: number, caller: string, idempotency?: { key: string; requestHash: string; ttlMs: number }): Promise<{ row: OutboxRow; created: boolean }> {
    const keyHash = idempotency ? idempotencyHash(caller, idempotency.key) : undefined;
    if (idempotency && keyHash) {
      const replay = await this.#replayOf(keyHash, idempotency);
      if (replay) return { row: replay, created: false };
    }
    const id = newMessageId();
    const at = new Date().toISOString();
    const row = {
      id,
      sender: message.sender,
      idempotency_key: keyHash ?? null,
      message: JSON.stringify(message),
      size,
      status: 'queued',
      next_attempt_at: at,
      message_id: messageIdFor(id, fromAddress),
      history: '[]',
      created_at: at,
      updated_at: at,
      created_by: caller,
      idempotency_label: idempotency?.key ?? null,
      request_hash: idempotency?.requestHash ?? null,
      idempotency_expires_at: idempotency ? new Date(Date.now() + idempotency.ttlMs).toISOString() : null,
      priority: priorityRank(message.priority),
    };
    try {
      await insertOutboxRow(this.store, row);
      return { row: { ...row, ...UNSENT, raw: null, envelope: null }, created: true };
    } catch (err) {
      // Two requests with the same key at once: the unique index decides, the loser returns the winner's message.
      const code = (err as { code?: string }).code;
      if (idempotency && keyHash && (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === '23505')) {
        const replay = await this.#replayOf(keyHash, idempotency);
        if (replay) return { row: replay, created: false };
      }
      throw err;
    }
  }

  /** The message a live key names (same request), undefined when none does; an expired key is released for reuse. */
  async #replayOf(keyHash: string, idempotency: { key: string; requestHash: string }): Promise<OutboxRow | undefined> {
    const existing = await this.findByIdempotencyKey(keyHash);
    if (!existing) return undefined;
    if (existing.idempotency_expires_at !== null && existing.idempotency_expires_at <= new Date().toISOString()) {
      await this.store.db.updateTable('outbox').set({ idempotency_key: null }).where('id', '=', existing.id).where('idempotency_key', '=', keyHash).execute();
      return undefined;
    }
    if (existing.request_hash !== idempotency.requestHash) {
      throw new MailgateError(
        ErrorCode.IDEMPOTENCY_KEY_REUSED,
        `idempotencyKey: ${JSON.stringify(idempotency.key.slice(0, 100))} was used for another message (${existing.id}, ${existing.created_at}) with a different request; use a new key for a new message`,
        { details: { messageId: existing.id } },
      );
    }
    return existing;
  }

  /**
   * Stores a raw MIME message (the SMTP relay's) with its envelope; `summary` is what lists and the detail page show.
   * Resolves once the row is committed: only then may the relay answer 250.
   */
  async enqueueRaw(message: { id: string; raw: Buffer; envelope: RawEnvelope; messageId: string; summary: RawMessageSummary; priority?: Priority }): Promise<OutboxRow> {
    const at = new Date().toISOString();
    const row = {
      id: message.id,
      sender: message.summary.sender,
      idempotency_key: null,
      message: JSON.stringify(message.summary),
      size: message.raw.length,
      status: 'queued',
      next_attempt_at: at,
      message_id: message.messageId,
      history: '[]',
      created_at: at,
      updated_at: at,
      raw: message.raw,
      envelope: JSON.stringify(message.envelope),
      created_by: `relay:${message.summary.submittedBy.account}`,
      idempotency_label: null,
      request_hash: null,
      idempotency_expires_at: null,
      priority: priorityRank(message.priority),
    };
    await insertOutboxRow(this.store, row);
    return { ...row, ...UNSENT };
  }

  async find(id: string): Promise<OutboxRow | undefined> {
    return this.store.db.selectFrom('outbox').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async get(id: string): Promise<OutboxRow> {
    const row = await this.find(id);
    if (!row) throw new MailgateError(ErrorCode.NOT_FOUND, `no message with id ${JSON.stringify(id)}`);
    return row;
  }

  async findByIdempotencyKey(key: string): Promise<OutboxRow | undefined> {
    return this.store.db.selectFrom('outbox').selectAll().where('idempotency_key', '=', key).executeTakeFirst();
  }

  async findByMessageIds(messageIds: string[]): Promise<OutboxRow[]> {
    if (messageIds.length === 0) return [];
    return this.store.db.selectFrom('outbox').selectAll().where('message_id', 'in', messageIds).execute();
  }

  async recent(limit: number, filter: { status?: OutboxStatus } = {}): Promise<OutboxRow[]> {
    let query = this.store.db.selectFrom('outbox').selectAll();
    if (filter.status !== undefined) query = query.where('status', '=', filter.status);
    return query.orderBy('id', 'desc').limit(limit).execute();
  }

  /**
   * Leases up to `limit` due queued messages to `owner`. The inner select walks the outbox_due index only: sent messages pile up in the same table and must not be scanned on every claim.
   */
  async claimDue(owner: string, limit: number, leaseMs: number): Promise<OutboxRow[]> {
    const now = new Date().toISOString();
    const until = new Date(Date.now() + leaseMs).toISOString();
    // One statement, so the choice and the update are atomic under SQLite's single writer. No outer
    // "status = queued" here: with it, SQLite walks every queued row of the status index to test the IN list
    // (a claim cost 1.3 ms with 4,000 waiting); without it, it looks the few chosen ids up by primary key.
    // PostgreSQL has several writers: the inner select locks the rows it picks and skips those another claim holds
    // (SKIP LOCKED), re-checking a row's status once locked, so the update only touches rows this claim holds. (An
    // outer status check would be redundant, and made PostgreSQL scan every queued row: 9.4 ms a claim instead of 0.8.)
    // High priority first, then the longest waiting: the (status, priority, next_attempt_at, id) index gives this order.
    // Written once, not built by Kysely per claim: building and compiling it cost twice what SQLite's execution did.
    const claimed = await runStatement<OutboxRow>(this.store.db, statement(this.store.kind, 'outbox claim', () => claimSql(this.store.kind)), [owner, until, now, now, limit]);
    // RETURNING gives the rows in the update's order (by key), not the choice's: the worker must start them by priority.
    return claimed.rows.sort((a, b) => a.priority - b.priority || (a.next_attempt_at < b.next_attempt_at ? -1 : a.next_attempt_at > b.next_attempt_at ? 1 : a.id < b.id ? -1 : 1));
  }

  /**
   * Puts back messages whose lease ran out: their worker (another instance) died mid-send. At-least-once: they go
   * again. Run now and then, not on every claim.
   */
  async requeueExpiredLeases(exceptOwner?: string): Promise<number> {
    const now = new Date().toISOString();
    let query = this.store.db
      .updateTable('outbox')
      .set({ status: 'queued', lease_owner: null, lease_until: null, next_attempt_at: now, updated_at: now })
      .where('status', '=', 'sending')
      .where('lease_until', '<', now);
    // A worker knows its own sends are alive: it never requeues them (that was a double send in one process).
    if (exceptOwner !== undefined) query = query.where('lease_owner', '!=', exceptOwner);
    const result = await query.executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  /** After a crash of the only instance (SQLite), messages it was sending go back to the queue at once. */
  async requeueAllSending(): Promise<number> {
    const now = new Date().toISOString();
    const result = await this.store.db.updateTable('outbox').set({ status: 'queued', lease_owner: null, lease_until: null, next_attempt_at: now, updated_at: now }).where('status', '=', 'sending').executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  /** Extends the leases of messages `owner` is still sending. */
  async renewLeases(owner: string, ids: readonly string[], leaseMs: number): Promise<void> {
    if (ids.length === 0) return;
    await this.store.db
      .updateTable('outbox')
      .set({ lease_until: new Date(Date.now() + leaseMs).toISOString() })
      .where('id', 'in', [...ids])
      .where('lease_owner', '=', owner)
      .where('status', '=', 'sending')
      .execute();
  }

  /**
   * The outcome writes below change the row only while the caller still holds the lease it was given (status sending,
   * same owner): false when the lease was lost meanwhile, and nothing is written.
   */
  async markSent(row: OutboxRow, outcome: { server: string; response: string; rejected: string[]; attempt: AttemptRecord }): Promise<boolean> {
    const at = new Date().toISOString();
    // Committed together with the other writes of the moment, and resolved after the commit (store/groupCommit.ts).
    return updateLeasedOutboxRow(this.store, row.id, row.lease_owner, {
      status: 'sent',
      attempts: row.attempts + 1,
      server_used: outcome.server,
      response: outcome.response,
      rejected: outcome.rejected.length ? JSON.stringify(outcome.rejected) : null,
      last_error: outcome.rejected.length ? `the server refused ${outcome.rejected.join(', ')}` : null,
      history: appendHistory(row.history, outcome.attempt),
      lease_owner: null,
      lease_until: null,
      sent_at: at,
      updated_at: at,
    });
  }

  async reschedule(row: OutboxRow, next: { at: Date; serverIndex: number; serverAttempts: number; error: string; attempt: AttemptRecord }): Promise<boolean> {
    return updateLeasedOutboxRow(this.store, row.id, row.lease_owner, {
      status: 'queued',
      attempts: row.attempts + 1,
      server_index: next.serverIndex,
      server_attempts: next.serverAttempts,
      next_attempt_at: next.at.toISOString(),
      last_error: next.error,
      server_used: next.attempt.server,
      history: appendHistory(row.history, next.attempt),
      lease_owner: null,
      lease_until: null,
      updated_at: new Date().toISOString(),
    });
  }

  /**
   * Puts a message back to wait for a server's sending limit (its budget or a provider's pause): no attempt is spent.
   * Lease-checked like the outcome writes; `attempt`, when given, is added to the history (a provider's reply).
   */
  async defer(row: OutboxRow, next: { at: Date; serverIndex: number; serverAttempts: number; note?: string; attempt?: AttemptRecord }): Promise<boolean> {
    const result = await this.store.db
      .updateTable('outbox')
      .set({
        status: 'queued',
        server_index: next.serverIndex,
        server_attempts: next.serverAttempts,
        next_attempt_at: next.at.toISOString(),
        ...(next.note !== undefined ? { last_error: next.note } : {}),
        ...(next.attempt ? { history: appendHistory(row.history, next.attempt), server_used: next.attempt.server } : {}),
        lease_owner: null,
        lease_until: null,
        updated_at: new Date().toISOString(),
      })
      .where('id', '=', row.id)
      .where('status', '=', 'sending')
      .where('lease_owner', row.lease_owner === null ? 'is' : '=', row.lease_owner)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async markFailed(row: OutboxRow, failure: { error: string; response?: string; rejected?: string[]; attempt: AttemptRecord }): Promise<boolean> {
    return updateLeasedOutboxRow(this.store, row.id, row.lease_owner, {
      status: 'failed',
      attempts: row.attempts + 1,
      last_error: failure.error,
      response: failure.response ?? null,
      rejected: failure.rejected?.length ? JSON.stringify(failure.rejected) : null,
      server_used: failure.attempt.server,
      history: appendHistory(row.history, failure.attempt),
      lease_owner: null,
      lease_until: null,
      updated_at: new Date().toISOString(),
    });
  }

  /**
   * An admin's retry of a failed or cancelled message: queued at once for a fresh round (attempt counters and route
   * position reset, the last error moved to history). Only if the row is still as the caller read it (status, attempts
   * — every finished attempt counts one — and updated_at): otherwise undefined, and nothing changed.
   */
  async requeue(row: OutboxRow, note: AttemptRecord): Promise<OutboxRow | undefined> {
    const now = new Date().toISOString();
    return this.store.db
      .updateTable('outbox')
      .set({
        status: 'queued',
        attempts: 0,
        server_index: 0,
        server_attempts: 0,
        next_attempt_at: now,
        last_error: null,
        response: null,
        rejected: null,
        history: appendHistory(row.history, note),
        updated_at: now,
      })
      .where('id', '=', row.id)
      .where('status', 'in', ['failed', 'cancelled'])
      .where('attempts', '=', row.attempts)
      .where('updated_at', '=', row.updated_at)
      .returningAll()
      .executeTakeFirst();
  }

  /**
   * An admin's cancel of a queued message. Conditional like `requeue`: a worker that leased the message (or finished
   * an attempt) since the caller read it wins, and this returns undefined.
   */
  async cancel(row: OutboxRow, note: AttemptRecord): Promise<OutboxRow | undefined> {
    return this.store.db
      .updateTable('outbox')
      .set({ status: 'cancelled', last_error: note.error ?? 'cancelled', history: appendHistory(row.history, note), lease_owner: null, lease_until: null, updated_at: new Date().toISOString() })
      .where('id', '=', row.id)
      .where('status', '=', 'queued')
      .where('attempts', '=', row.attempts)
      .where('updated_at', '=', row.updated_at)
      .returningAll()
      .executeTakeFirst();
  }

  /** Subject, addresses and attachment names of messages, without their bodies (see summaries.ts). */
  summaries(ids: readonly string[]): Promise<Map<string, MessageSummary>> {
    return messageSummaries(this.store, ids);
  }

  /** Queue depth and the age of the oldest waiting message, for status and metrics. */
  async depth(): Promise<{ queued: number; oldestQueuedAt: string | null }> {
    const row = await this.store.db
      .selectFrom('outbox')
      .select([sql<number>`count(*)`.as('queued'), sql<string | null>`min(created_at)`.as('oldest')])
      .where('status', 'in', ['queued', 'sending'])
      .executeTakeFirst();
    return { queued: Number(row?.queued ?? 0), oldestQueuedAt: row?.oldest ?? null };
  }

  toView(row: OutboxRow): OutboxView {
    return {
      id: row.id,
      status: row.status as OutboxStatus,
      sender: row.sender,
      attempts: row.attempts,
      server: row.server_used,
      messageId: row.message_id,
      // Rows before migration 0012 kept the key itself; later ones its hash with the caller, and the key as given.
      idempotencyKey: row.idempotency_label ?? (row.created_by === null ? row.idempotency_key : null),
      lastError: row.last_error,
      response: row.response,
      rejected: row.rejected ? (JSON.parse(row.rejected) as string[]) : [],
      nextAttemptAt: row.status === 'queued' ? row.next_attempt_at : null,
      priority: priorityOfRank(row.priority),
      history: JSON.parse(row.history) as AttemptRecord[],
      createdAt: row.created_at,
      sentAt: row.sent_at,
    };
  }
}

/** The claim (`?` placeholders; PostgreSQL also skips the rows another claim has locked). */
function claimSql(kind: Store['kind']): string {
  return (
    `update "outbox" set "status" = 'sending', "lease_owner" = ?, "lease_until" = ?, "updated_at" = ? ` +
    `where "id" in (select "id" from "outbox" where "status" = 'queued' and "next_attempt_at" <= ? ` +
    `order by "priority", "next_attempt_at", "id" limit ?${kind === 'postgres' ? ' for update skip locked' : ''}) returning *`
  );
}
