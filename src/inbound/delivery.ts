// One inbound message from fetched bytes to its webhook: parse, filter, recognise a reply acknowledgement, POST signed, and record the outcome.
import type { Logger } from '../log.js';
import type { OutboxRepository } from '../outbox/repository.js';
import { backoffDelay, delayHonouringRetryAfter } from '../tokens/backoff.js';
import { findAcknowledgement, matchesFilter, parseInbound, type WebhookBody } from './payload.js';
import type { DeliveryRecord, DeliveryRow, WatcherRepository, WatcherRow } from './repository.js';
import { settingsOf } from './repository.js';
import { deliverWebhook } from './webhook.js';

export interface InboundOptions {
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  maxMessageBytes: number;
  webhookTimeoutMs: number;
}

export interface DeliveryContext {
  repo: WatcherRepository;
  outbox: OutboxRepository;
  logger: Logger;
  options: InboundOptions;
  /**
   * Where an outcome is recorded: by default at once, one write each. A batch passes its own, which collects the
   * outcomes and writes them in one transaction before the batch is acknowledged upstream.
   */
  record?: (id: string, outcome: DeliveryRecord) => Promise<void>;
}

export type DeliveryOutcome = 'delivered' | 'retry' | 'parked' | 'skipped';

/**
 * Delivers `raw` for `delivery`; `acknowledge` (mark seen / move / delete upstream) runs only after the webhook
 * answered 2xx — the design's invariant. Returns what happened; never throws for the message's own faults.
 */
export async function deliverInbound(
  ctx: DeliveryContext,
  watcher: WatcherRow,
  delivery: DeliveryRow,
  raw: Buffer,
  mailbox: WebhookBody['mailbox'],
  /** The upstream action: `done` when it happened now, `deferred` when the caller does it for a batch (and records it). */
  acknowledge: () => Promise<'done' | 'deferred'>,
): Promise<DeliveryOutcome> {
  const settings = settingsOf(watcher);
  const record = ctx.record ?? ((id: string, outcome: DeliveryRecord) => ctx.repo.recordDelivery(id, outcome));
  const attempts = delivery.attempts + 1;
  if (raw.length > ctx.options.maxMessageBytes) return parkOversized(ctx, delivery, raw.length);
  const message = await parseInbound(raw);
  const facts = { messageId: message.messageId, subject: message.subject, from: message.from[0]?.address ?? null, size: raw.length };
  if (!matchesFilter(message, { from: settings.filterFrom, subject: settings.filterSubject })) {
    await record(delivery.id, { status: 'skipped', ...facts, attempts });
    return 'skipped';
  }
  const ack = await findAcknowledgement(message, ctx.outbox);
  const body: WebhookBody = { event: ack ? 'ack' : 'message', deliveryId: delivery.id, watcher: settings.name, mailbox, message, ...(ack ? { ack } : {}) };
  const result = await deliverWebhook({
    url: settings.webhookUrl,
    // while a secret is being rotated, the one it replaced signs too (new first): receivers switch at their own pace
    secret: (await ctx.repo.signingSecrets(watcher)).map((s) => s.reveal()),
    event: body.event,
    body,
    deliveryId: delivery.id,
    timeoutMs: ctx.options.webhookTimeoutMs,
  });
  if (result.ok) {
    // Delivered first, acknowledged second, each recorded: a crash in between leaves a delivered, unacknowledged row
    // that the watcher acknowledges at its next start or reconnect (never a message delivered twice or left unseen).
    // A batch records its outcomes together before it acknowledges any: a crash before that leaves them pending, and
    // they are delivered again (at least once, never acknowledged unrecorded).
    await record(delivery.id, { status: 'delivered', event: body.event, ...facts, error: null, attempts });
    try {
      if ((await acknowledge()) === 'done') await ctx.repo.markAcknowledged([delivery.id]);
    } catch (err) {
      // The receiver has it; the acknowledgement is tried again at the next session.
      ctx.logger.warn({ watcher: settings.name, delivery: delivery.id, err: (err as Error).message }, 'delivered, but acknowledging upstream failed');
    }
    ctx.logger.info({ watcher: settings.name, delivery: delivery.id, event: body.event, status: result.status, ms: result.ms }, 'inbound message delivered');
    return 'delivered';
  }
  const error = `webhook: ${result.error ?? `answered ${result.status}`}`;
  if (result.retryable && attempts < ctx.options.maxAttempts) {
    // Not sooner than the receiver asked (Retry-After), within the retry ceiling.
    const delay = delayHonouringRetryAfter(backoffDelay(attempts, { baseMs: ctx.options.retryBaseMs, maxMs: ctx.options.retryMaxMs }), result.retryAfterMs, ctx.options.retryMaxMs);
    await record(delivery.id, { status: 'pending', event: body.event, ...facts, error, attempts, nextAttemptAt: new Date(Date.now() + delay).toISOString() });
    ctx.logger.warn({ watcher: settings.name, delivery: delivery.id, status: result.status, delayMs: delay }, 'webhook failed; retrying');
    return 'retry';
  }
  // Parked, never dropped: the message stays in the mailbox, unacknowledged, and is listed for a person to retry.
  await record(delivery.id, { status: 'parked', event: body.event, ...facts, error: `${error} (after ${attempts} attempt${attempts > 1 ? 's' : ''})`, attempts });
  ctx.logger.warn({ watcher: settings.name, delivery: delivery.id, status: result.status }, 'webhook keeps failing: delivery parked');
  return 'parked';
}

/**
 * Parks a message over inbound.maxMessageMegabytes, left in the mailbox: called with the size the server announced
 * (IMAP RFC822.SIZE, POP3 LIST) before anything is fetched, and again after a fetch as a last check.
 */
export async function parkOversized(ctx: Pick<DeliveryContext, 'repo' | 'options'>, delivery: DeliveryRow, size: number): Promise<'parked'> {
  const error = `the message is ${(size / 1048576).toFixed(1)} MB, over the ${(ctx.options.maxMessageBytes / 1048576).toFixed(0)} MB limit (inbound.maxMessageMegabytes): left in the mailbox`;
  await ctx.repo.recordDelivery(delivery.id, { status: 'parked', error, size, attempts: delivery.attempts + 1 });
  return 'parked';
}
