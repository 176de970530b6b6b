// Accepting a message into the outbox (validation, the sender's existence, the From address, idempotency — shared by the API and `mailgate send`), and an admin's retry or cancel of a stuck one.
import crypto from 'node:crypto';
import { ErrorCode, MailgateError } from '../errors.js';
import type { SenderService } from '../senders/service.js';
import { parseAddress } from './addresses.js';
import { parseMessageInput } from './message.js';
import { headerValue, messageIdOf, missingHeaders, summarize, type HeaderField, type RawEnvelope, type RawMessageSummary } from './rawMessage.js';
import { messageIdFor, newMessageId } from './identity.js';
import { OUTBOX_STATUSES, type OutboxRepository, type OutboxRow, type OutboxStatus, type OutboxView } from './repository.js';
import type { MessageSummary } from './summaries.js';
import { priorityFromHeaders } from './priority.js';

/** SHA-256 of the request as sent, without its idempotency key, keys in a fixed order: the same request hashes the same. */
function requestHash(raw: unknown): string {
  const { idempotencyKey: _key, ...rest } = raw as Record<string, unknown>;
  const canonical = (value: unknown): unknown =>
    Array.isArray(value) ? value.map(canonical) : value !== null && typeof value === 'object' ? Object.fromEntries(Object.keys(value).sort().map((k) => [k, canonical((value as Record<string, unknown>)[k])])) : value;
  return crypto.createHash('sha256').update(JSON.stringify(canonical(rest))).digest('hex');
}

/** What a cancelled message's last_error says. */
export const CANCELLED_BY_ADMIN = 'cancelled by an admin';

/** A worker may finish an attempt between our read and our write: read again this often before giving up. */
const TRANSITION_TRIES = 5;

export class OutboxService {
  constructor(
    private readonly outbox: OutboxRepository,
    private readonly senders: SenderService,
    private readonly maxMessageBytes: number,
    /** Called when a message becomes due (accepted, or retried by an admin), so a worker in this process starts at once. */
    private readonly wake: () => void = () => undefined,
    /** How long an idempotency key holds (outbox.idempotencyKeyHours). */
    private readonly idempotencyTtlMs = 24 * 3_600_000,
  ) {}

  /** Whether `caller` may read message `id`: its own messages only (an admin reads all; checked by the route). */
  async showOwn(id: string, caller: string): Promise<OutboxView> {
    const row = await this.outbox.get(id);
    // Another caller's message is "not found": its existence is nobody else's business.
    if (row.created_by !== caller) throw new MailgateError(ErrorCode.NOT_FOUND, `no message with id ${JSON.stringify(id)}`);
    return this.outbox.toView(row);
  }

  /**
   * Stores the message durably before answering, as submitted by `caller` (`apikey:<id>`, `cli`, `alerts`);
   * `created: false` when this caller sent the same request with the same idempotency key before (within
   * `idempotencyTtlMs`). The same key with another request: IDEMPOTENCY_KEY_REUSED.
   */
  async accept(raw: unknown, caller: string): Promise<{ view: OutboxView; created: boolean }> {
    const { message, idempotencyKey, size } = parseMessageInput(raw, this.maxMessageBytes);
    const sender = await this.senders.find(message.sender);
    if (!sender) throw new MailgateError(ErrorCode.INPUT_INVALID, `sender: no sender named ${JSON.stringify(message.sender)} (list them with \`mailgate sender list\` or GET /api/v1/senders)`);
    const senderFrom = parseAddress(sender.from);
    const fromAddress = message.from?.address ?? (senderFrom.ok ? senderFrom.address : 'mailgate.invalid');
    const idempotency = idempotencyKey === undefined ? undefined : { key: idempotencyKey, requestHash: requestHash(raw), ttlMs: this.idempotencyTtlMs };
    const { row, created } = await this.outbox.enqueue(message, fromAddress, size, caller, idempotency);
    if (created) this.wake();
    return { view: this.outbox.toView(row), created };
  }

  /**
   * Stores a raw MIME message as it came (the SMTP relay's), with its envelope: Message-ID and Date are put in front
   * only when the message lacks them. Resolves after the commit, with the outbox id. The caller has checked the
   * sender and the addresses; `headers` is the message's parsed header section.
   */
  async acceptRaw(submission: { sender: string; envelope: RawEnvelope; headers: HeaderField[]; raw: Buffer; submittedBy: RawMessageSummary['submittedBy'] }): Promise<OutboxView> {
    const { sender, envelope, headers, raw, submittedBy } = submission;
    const id = newMessageId();
    const summary = summarize(headers, envelope, sender, submittedBy);
    // A Message-ID the message has is kept, even a malformed one: a second Message-ID header would be worse.
    const own = headerValue(headers, 'message-id');
    const messageId = own !== undefined ? (messageIdOf(own) ?? own.trim()) : messageIdFor(id, summary.from?.address ?? envelope.from);
    const prefix = missingHeaders(headers, { messageId, date: new Date() });
    // X-Priority / Importance / Priority headers give the message its place in the queue (high first).
    const priority = priorityFromHeaders((name) => headerValue(headers, name));
    const row = await this.outbox.enqueueRaw({ id, raw: prefix ? Buffer.concat([Buffer.from(prefix), raw]) : raw, envelope, messageId, summary, priority });
    this.wake();
    return this.outbox.toView(row);
  }

  async show(id: string): Promise<OutboxView> {
    return this.outbox.toView(await this.outbox.get(id));
  }

  /** The latest messages, newest first; with `status`, only those (e.g. `failed` for the ones needing a person). */
  async recent(limit: number, filter: { status?: string } = {}): Promise<OutboxView[]> {
    const { status } = filter;
    if (status !== undefined && !(OUTBOX_STATUSES as readonly string[]).includes(status)) {
      throw new MailgateError(ErrorCode.INPUT_INVALID, `status: expected one of ${OUTBOX_STATUSES.join(', ')}, got ${JSON.stringify(status.slice(0, 50))}`);
    }
    return (await this.outbox.recent(limit, status === undefined ? {} : { status: status as OutboxStatus })).map((row) => this.outbox.toView(row));
  }

  /** Subject, addresses and attachment names of these messages (never their bodies), by id; unknown ids are left out. */
  async summaries(ids: readonly string[]): Promise<Map<string, MessageSummary>> {
    return this.outbox.summaries(ids);
  }

  /**
   * Puts a failed (or cancelled) message back in the queue, due now, for a fresh round: `attempts` counts from 0
   * again and the route starts at the primary. The error it failed with stays in `history` (a `retried` line).
   * Any other status: STATE_CONFLICT.
   */
  async retry(id: string): Promise<OutboxView> {
    const row = await this.#transition(id, ['failed', 'cancelled'], 'retried', (current) => {
      if (current.body_pruned_at !== null) {
        throw new MailgateError(ErrorCode.STATE_CONFLICT, `message ${id} cannot be retried: its body was dropped on ${current.body_pruned_at} (retention.messageBodyDays); submit it anew (POST /api/v1/messages)`);
      }
      return this.outbox.requeue(current, { at: new Date().toISOString(), server: '-', outcome: 'retried', ...(current.last_error ? { error: current.last_error } : {}) });
    });
    this.wake();
    return this.outbox.toView(row);
  }

  /**
   * Stops a queued message (new, or waiting for its next attempt) from being sent: status `cancelled`. A message
   * being sent right now is not taken from under the worker (STATE_CONFLICT: try again in a moment); sent or
   * failed ones have nothing to cancel. Undo with `retry`.
   */
  async cancel(id: string): Promise<OutboxView> {
    const row = await this.#transition(id, ['queued'], 'cancelled', (current) =>
      this.outbox.cancel(current, { at: new Date().toISOString(), server: '-', outcome: 'cancelled', error: CANCELLED_BY_ADMIN }),
    );
    return this.outbox.toView(row);
  }

  /** Reads the message, checks its status, and writes only if nobody changed it meanwhile (else reads again). */
  async #transition(id: string, from: OutboxStatus[], action: 'retried' | 'cancelled', write: (row: OutboxRow) => Promise<OutboxRow | undefined>): Promise<OutboxRow> {
    for (let i = 0; i < TRANSITION_TRIES; i++) {
      const row = await this.outbox.get(id);
      if (!from.includes(row.status as OutboxStatus)) throw refusal(row, action);
      const updated = await write(row);
      if (updated) return updated;
    }
    throw new MailgateError(ErrorCode.STATE_CONFLICT, `message ${id} changed ${TRANSITION_TRIES} times while it was being ${action}: try again in a moment`);
  }
}

/** Why the message's status does not allow the action, and what to do instead. */
function refusal(row: OutboxRow, action: 'retried' | 'cancelled'): MailgateError {
  const status = row.status as OutboxStatus;
  const it = `message ${row.id}`;
  const sent = `${it} was sent${row.sent_at ? ` at ${row.sent_at}` : ''}`;
  const message =
    action === 'retried'
      ? {
          queued: `${it} is queued already (next attempt at ${row.next_attempt_at}); only failed or cancelled messages can be retried`,
          sending: `${it} is being sent right now; only failed or cancelled messages can be retried — wait for the outcome (GET /api/v1/messages/${row.id})`,
          sent: `${sent}; only failed or cancelled messages can be retried — to send it again, submit it anew (POST /api/v1/messages)`,
        }[status as 'queued' | 'sending' | 'sent']
      : {
          sending: `${it} is being sent right now and cannot be cancelled under the worker; try again in a moment (if this attempt fails, the message waits for its retry and can be cancelled then)`,
          sent: `${sent}; there is nothing to cancel`,
          failed: `${it} has failed already (${row.last_error ?? 'no error recorded'}); there is nothing to cancel`,
          cancelled: `${it} is cancelled already`,
        }[status as 'sending' | 'sent' | 'failed' | 'cancelled'];
  return new MailgateError(ErrorCode.STATE_CONFLICT, message ?? `${it} is ${status}; it cannot be ${action}`, { details: { status } });
}
