// The outbox worker: leases due messages, sends each through its sender's route (primary, then backups) with retries, and records the outcome.
import crypto from 'node:crypto';
import type { Config } from '../config/load.js';
import type { Logger } from '../log.js';
import { Wakeup } from '../wakeup.js';
import type { Services } from '../services.js';
import type { SenderView } from '../senders/model.js';
import type { SenderService } from '../senders/service.js';
import type { ResolvedServer } from '../servers/model.js';
import type { ServerRepository } from '../servers/repository.js';
import type { BudgetDecision, SendBudget } from '../servers/sendBudget.js';
import type { TokenManager } from '../tokens/tokenManager.js';
import { backoffDelay } from '../tokens/backoff.js';
import type { Mailbox, OutboxMessage } from './message.js';
import type { RawEnvelope } from './rawMessage.js';
import type { AttemptRecord, OutboxRepository, OutboxRow } from './repository.js';
import { classifySendError, type SendFailure } from './smtpErrors.js';
import type { SmtpTransports } from './transports.js';

/** How long a worker may hold a message before another may take it (a 25 MB message over a slow link included). */
const LEASE_MS = 5 * 60_000;
const IDLE_POLL_MS = 500;
const LEASE_CHECK_MS = 10_000;

export interface OutboxWorkerDependencies {
  outbox: OutboxRepository;
  senders: SenderService;
  servers: ServerRepository;
  transports: SmtpTransports;
  tokens: TokenManager;
  /** Servers' sending limits and provider pauses: asked before each message goes to a server. */
  budget: SendBudget;
  logger: Logger;
  options: Config['outbox'];
  /** With SQLite there is one instance: at start, whatever was "sending" died with the last process. */
  requeueOnStart: boolean;
  /** Told every attempt's outcome (metrics). */
  onAttempt?: (server: string, outcome: AttemptRecord['outcome']) => void;
  /** How long a claim holds before another worker may take the message (default 5 minutes), and how often leases are renewed and expired ones requeued (10 s). */
  leaseMs?: number;
  leaseCheckMs?: number;
  /** Whose leases its claims are (`serve`: the instance's id, so status can say which instance sends what). */
  owner?: string;
}

/** The worker for a set of services, as `serve` runs it. */
export function createOutboxWorker(services: Services): OutboxWorker {
  return new OutboxWorker({
    outbox: services.outbox,
    senders: services.senders,
    servers: services.serverRepo,
    transports: services.transports,
    tokens: services.tokens,
    budget: services.sendBudget,
    logger: services.logger.child({ component: 'outbox' }),
    options: services.config.outbox,
    requeueOnStart: services.config.database.kind === 'sqlite',
    // A message whose instance died goes back to the queue one lease period later (this worker renews its own).
    leaseMs: services.config.instances.leaseMs,
    leaseCheckMs: Math.max(500, Math.floor(services.config.instances.leaseMs / 3)),
    owner: services.instances.id,
    onAttempt: (server, outcome) => services.metrics.sends.inc({ server, outcome }),
  });
}

export class OutboxWorker {
  readonly #owner: string;
  readonly #inflight = new Set<Promise<void>>();
  /** Ids of the messages this worker is sending now: their leases are renewed while the send lasts. */
  readonly #sending = new Set<string>();
  #running: Promise<void> | undefined;
  #stopping = false;
  readonly #wakeup = new Wakeup();
  readonly #batch: number;
  /** Servers change rarely and are read for every message: remembered for a second (senders cache themselves). */
  readonly #servers = new Map<string, { server: ResolvedServer | undefined; until: number }>();

  readonly #leaseMs: number;
  readonly #leaseCheckMs: number;

  constructor(private readonly deps: OutboxWorkerDependencies) {
    this.#owner = deps.owner ?? `outbox-${crypto.randomUUID()}`;
    this.#leaseMs = deps.leaseMs ?? LEASE_MS;
    this.#leaseCheckMs = deps.leaseCheckMs ?? LEASE_CHECK_MS;
    this.#batch = Math.max(1, Math.floor(deps.options.concurrency / 4));
  }

  async #serverOf(name: string): Promise<ResolvedServer | undefined> {
    const cached = this.#servers.get(name);
    if (cached && cached.until > Date.now()) return cached.server;
    const row = await this.deps.servers.find(name);
    const server = row ? this.deps.servers.resolve(row) : undefined;
    this.#servers.set(name, { server, until: Date.now() + 1000 });
    return server;
  }

  async start(): Promise<void> {
    if (this.deps.requeueOnStart) {
      const requeued = await this.deps.outbox.requeueAllSending();
      if (requeued > 0) this.deps.logger.warn({ requeued }, 'messages that were being sent when Mailgate stopped are queued again (at-least-once)');
    }
    this.#stopping = false;
    this.#running = this.#loop().catch((err: unknown) => this.deps.logger.error({ err }, 'outbox loop stopped'));
  }

  /** Tells the loop that a message was accepted, so it need not wait for the next poll. */
  wake(): void {
    this.#wakeup.wake();
  }

  /** Stops taking messages and waits for the ones being sent, up to `timeoutMs`; unfinished ones are sent again later. */
  async stop(timeoutMs: number): Promise<void> {
    this.#stopping = true;
    this.wake();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      (async () => {
        await this.#running;
        await Promise.allSettled([...this.#inflight]);
      })(),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
    clearTimeout(timer);
    await this.deps.transports.closeAll();
  }

  async #loop(): Promise<void> {
    let leasesCheckedAt = 0;
    while (!this.#stopping) {
      if (Date.now() - leasesCheckedAt > this.#leaseCheckMs) {
        leasesCheckedAt = Date.now();
        // Our own sends may outlast a lease (a 25 MB message on a slow link): renew them, and never requeue our own.
        if (this.#sending.size > 0) await this.deps.outbox.renewLeases(this.#owner, [...this.#sending], this.#leaseMs).catch((err: unknown) => this.deps.logger.warn({ err }, 'cannot renew the outbox leases'));
        const requeued = await this.deps.outbox.requeueExpiredLeases(this.#owner).catch(() => 0);
        if (requeued > 0) this.deps.logger.warn({ requeued }, 'messages whose worker stopped mid-send are queued again (at-least-once)');
      }
      const free = this.deps.options.concurrency - this.#inflight.size;
      let claimed: OutboxRow[] = [];
      // Claim in batches: a claim is one write, and claiming one message per finished send would double the writes.
      if (free >= this.#batch || (free > 0 && this.#inflight.size === 0)) {
        try {
          claimed = await this.deps.outbox.claimDue(this.#owner, free, this.#leaseMs);
        } catch (err) {
          this.deps.logger.error({ err }, 'cannot read the outbox; retrying');
        }
        // Senders and servers are looked up first, one after another (cached), so that the deliveries then ask the
        // sending budget in claim order: with limits, that order (priority, then age) decides who goes first.
        const targets: (Target | Error)[] = [];
        for (const row of claimed) targets.push(await this.#targetOf(row).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err)))));
        for (const [i, row] of claimed.entries()) {
          this.#sending.add(row.id);
          const target = targets[i]!;
          const work = (target instanceof Error ? Promise.reject(target) : this.#deliver(row, target)).catch((err: unknown) => this.deps.logger.error({ err, id: row.id }, 'outbox delivery crashed'));
          this.#inflight.add(work);
          void work.finally(() => {
            this.#inflight.delete(work);
            this.#sending.delete(row.id);
            this.wake();
          });
        }
      }
      if (claimed.length === 0 || claimed.length === free || free < this.#batch) await this.#sleep(IDLE_POLL_MS);
    }
  }

  /** An outcome write that found the lease gone: another worker took the message meanwhile and may send it again. */
  #recorded(row: OutboxRow, written: boolean): void {
    if (!written) this.deps.logger.error({ id: row.id, owner: this.#owner }, 'lost the lease on this message before its outcome was recorded: another worker took it and may send it again (duplicate possible)');
  }

  #sleep(ms: number): Promise<void> {
    return this.#wakeup.sleep(ms);
  }

  /** Where the message goes this attempt: its sender's route and the server at its place in it. */
  async #targetOf(row: OutboxRow): Promise<Target> {
    const sender = await this.deps.senders.find(row.sender);
    if (!sender) return { sender: undefined };
    const route = [sender.primary, ...sender.backups];
    const index = row.server_index % route.length;
    const serverName = route[index]!;
    // A store error reading the server is this attempt's failure (retried), as a refused connection would be.
    return { sender, route, index, serverName, server: await this.#serverOf(serverName).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err)))) };
  }

  async #deliver(row: OutboxRow, target: Target): Promise<void> {
    const at = () => new Date().toISOString();
    if (!target.sender) {
      const error = `sender ${row.sender} no longer exists`;
      this.#recorded(row, await this.deps.outbox.markFailed(row, { error, attempt: { at: at(), server: '-', outcome: 'failed', error } }));
      return;
    }
    const { sender, route, index, serverName, server } = target;
    try {
      if (server instanceof Error) throw server;
      if (!server) throw Object.assign(new Error(`server ${serverName} no longer exists`), { code: 'EAUTH' });
      const message = row.raw === null ? (JSON.parse(row.message) as OutboxMessage) : undefined;
      // The server's sending limits (and any pause its provider imposed) first: a message over budget waits, unspent.
      const budget = await this.deps.budget.reserve(serverName, server.limits ?? {}, recipientCount(row, message));
      if (!budget.ok) {
        await this.#waitForBudget(row, route, index, serverName, budget);
        return;
      }
      // Fetch the token first: a dead grant or an unreachable provider is then known as such, not as "login failed".
      if (server.auth.type === 'oauth2') await this.deps.tokens.getAccessToken(server.auth.credential);
      const { response, rejected } = await this.deps.transports
        .send(server, row.raw !== null ? rawMailOptions(row, row.raw) : mailOptions(message!, sender, row))
        .finally(() => this.deps.budget.settle(budget.reservation).catch((err: unknown) => this.deps.logger.warn({ err, server: serverName }, 'cannot record the end of a send in the sending budget')));
      this.#recorded(row, await this.deps.outbox.markSent(row, { server: serverName, response, rejected, attempt: { at: at(), server: serverName, outcome: 'sent', response } }));
      this.deps.onAttempt?.(serverName, 'sent');
      this.deps.logger.debug({ id: row.id, server: serverName, attempts: row.attempts + 1, rejected: rejected.length }, 'message sent');
    } catch (err) {
      await this.#handleFailure(row, route, index, serverName, classifySendError(err));
    }
  }

  /**
   * Over budget: a spent daily budget moves the message to the next server of its route (a backup) at once; anything
   * else waits on this server until the window allows it. No attempt is spent; only a move to the backup is written
   * to the history.
   */
  async #waitForBudget(row: OutboxRow, route: string[], index: number, serverName: string, decision: Extract<BudgetDecision, { ok: false }>): Promise<void> {
    // A daily budget spent by Mailgate's own count pauses the server like a provider's reply would: every instance,
    // the alert and the server's page then say so.
    if (decision.daily && !decision.paused) await this.deps.budget.pause(serverName, decision.until, decision.limit, `Mailgate counted its ${decision.limit} budget spent`);
    if (decision.daily && index < route.length - 1) {
      const note = `${serverName}: its ${decision.limit} budget is spent until ${decision.until.toISOString()}; sending through ${route[index + 1]}`;
      const attempt: AttemptRecord = { at: new Date().toISOString(), server: serverName, outcome: 'next_server', error: note };
      this.#recorded(row, await this.deps.outbox.defer(row, { at: new Date(), serverIndex: index + 1, serverAttempts: 0, note, attempt }));
      this.deps.logger.info({ id: row.id, server: serverName, next: route[index + 1], limit: decision.limit }, 'daily sending budget spent: moving to the next server of the route');
      return;
    }
    const note = decision.paused ? `${serverName} is paused until ${decision.until.toISOString()} (${decision.limit})` : `waiting for ${serverName}'s ${decision.limit} limit until ${decision.until.toISOString()}`;
    this.#recorded(row, await this.deps.outbox.defer(row, { at: decision.until, serverIndex: index, serverAttempts: row.server_attempts, note }));
    this.deps.logger.debug({ id: row.id, server: serverName, limit: decision.limit, until: decision.until.toISOString() }, 'message waits for the server\'s sending limit');
  }

  /** A provider's throttling reply: the server pauses for the limit's window (in every instance); the message waits, unspent. */
  async #throttled(row: OutboxRow, route: string[], index: number, serverName: string, failure: SendFailure): Promise<void> {
    const limit = failure.limit ?? 'messagesPerMinute';
    const daily = limit === 'messagesPerDay' || limit === 'recipientsPerDay';
    const now = Date.now();
    const until = new Date(now + (daily ? this.deps.budget.windows.dayMs : this.deps.budget.windows.minuteMs));
    await this.deps.budget.pause(serverName, until, limit, failure.message);
    this.deps.onAttempt?.(serverName, 'throttled');
    const attempt: AttemptRecord = { at: new Date(now).toISOString(), server: serverName, outcome: 'throttled', error: failure.message, ...(failure.response ? { response: failure.response } : {}) };
    const toNext = daily && index < route.length - 1;
    this.#recorded(row, await this.deps.outbox.defer(row, toNext ? { at: new Date(), serverIndex: index + 1, serverAttempts: 0, note: failure.message, attempt } : { at: until, serverIndex: index, serverAttempts: row.server_attempts, note: failure.message, attempt }));
    this.deps.logger.warn({ id: row.id, server: serverName, limit, until: until.toISOString(), next: toNext ? route[index + 1] : undefined, responseCode: failure.responseCode }, 'the provider is throttling this mailbox: the server is paused');
  }

  async #handleFailure(row: OutboxRow, route: string[], index: number, serverName: string, failure: SendFailure): Promise<void> {
    const { options, outbox, logger } = this.deps;
    const attemptNo = row.attempts + 1;
    const record = (outcome: AttemptRecord['outcome']): AttemptRecord => {
      this.deps.onAttempt?.(serverName, outcome);
      return { at: new Date().toISOString(), server: serverName, outcome, error: failure.message, ...(failure.response ? { response: failure.response } : {}) };
    };
    if (failure.kind === 'throttled') {
      await this.#throttled(row, route, index, serverName, failure);
      return;
    }
    if (failure.kind === 'permanent') {
      this.#recorded(row, await outbox.markFailed(row, { error: failure.message, ...(failure.response ? { response: failure.response } : {}), rejected: failure.rejected, attempt: record('failed') }));
      logger.warn({ id: row.id, server: serverName, responseCode: failure.responseCode }, 'message refused by the server: failed');
      return;
    }
    if (attemptNo >= options.maxAttempts) {
      this.#recorded(row, await outbox.markFailed(row, { error: `gave up after ${attemptNo} attempts: ${failure.message}`, attempt: record('failed') }));
      logger.warn({ id: row.id, attempts: attemptNo }, 'message failed after all attempts');
      return;
    }
    const sameServerAgain = failure.kind === 'transient' && row.server_attempts + 1 < options.attemptsPerServer;
    if (sameServerAgain) {
      const delay = backoffDelay(row.server_attempts + 1, { baseMs: options.retryBaseMs, maxMs: options.retryMaxMs });
      this.#recorded(row, await outbox.reschedule(row, { at: new Date(Date.now() + delay), serverIndex: index, serverAttempts: row.server_attempts + 1, error: failure.message, attempt: record('retry') }));
      logger.info({ id: row.id, server: serverName, delayMs: delay, reason: failure.kind }, 'message deferred; retrying on the same server');
      return;
    }
    // Next server in the route. Back at the primary after the last backup, wait first: everything just failed.
    const nextIndex = (index + 1) % route.length;
    const delay = nextIndex === 0 ? backoffDelay(Math.ceil(attemptNo / route.length), { baseMs: options.retryBaseMs, maxMs: options.retryMaxMs }) : 0;
    this.#recorded(row, await outbox.reschedule(row, { at: new Date(Date.now() + delay), serverIndex: nextIndex, serverAttempts: 0, error: failure.message, attempt: record('next_server') }));
    logger.warn({ id: row.id, server: serverName, next: route[nextIndex], reason: failure.kind }, 'server failed; trying the next server of the route');
  }
}

/** How many recipients the provider counts for the message: its envelope (relay) or To, Cc and Bcc (API). */
function recipientCount(row: OutboxRow, message: OutboxMessage | undefined): number {
  if (message) return message.to.length + message.cc.length + message.bcc.length;
  const envelope = JSON.parse(row.envelope ?? '{"to":[]}') as { to?: unknown[] };
  return Math.max(1, envelope.to?.length ?? 1);
}

type Target = { sender: undefined } | { sender: SenderView; route: string[]; index: number; serverName: string; server: ResolvedServer | undefined | Error };

function mailbox(m: Mailbox): { name: string; address: string } | string {
  return m.name ? { name: m.name, address: m.address } : m.address;
}

function mailOptions(message: OutboxMessage, sender: SenderView, row: OutboxRow) {
  return {
    from: message.from ? mailbox(message.from) : sender.from,
    to: message.to.map(mailbox),
    cc: message.cc.map(mailbox),
    bcc: message.bcc.map(mailbox),
    ...(message.replyTo ? { replyTo: mailbox(message.replyTo) } : sender.replyTo ? { replyTo: sender.replyTo } : {}),
    subject: message.subject,
    ...(message.text !== undefined ? { text: message.text } : {}),
    ...(message.html !== undefined ? { html: message.html } : {}),
    attachments: message.attachments.map((a) => ({ filename: a.filename, content: a.content, encoding: 'base64', ...(a.contentType ? { contentType: a.contentType } : {}), ...(a.cid ? { cid: a.cid } : {}) })),
    headers: message.headers,
    messageId: row.message_id,
    date: new Date(row.created_at),
  };
}

/**
 * A raw message goes out byte for byte as the relay stored it, to the envelope it was given: nodemailer then neither
 * rebuilds the MIME nor derives recipients from headers (so Bcc recipients stay out of the message).
 */
function rawMailOptions(row: OutboxRow, raw: Buffer) {
  const envelope = JSON.parse(row.envelope ?? '{"from":"","to":[]}') as RawEnvelope;
  return { envelope: { from: envelope.from, to: envelope.to }, raw };
}
