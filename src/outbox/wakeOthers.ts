// Wakes the outbox workers of the other instances on a PostgreSQL database when a message is accepted here: whichever is idle sends it at once, not at its next poll.
import type { ChangeSignal } from '../store/changes.js';
import type { Logger } from '../log.js';

/** PostgreSQL's channel for "the outbox has new work". */
export const OUTBOX_CHANNEL = 'mailgate_outbox';

/**
 * A NOTIFY is one more round trip to the database: at most one per `intervalMs`, the last accept of a burst always
 * followed by one (a worker woken early finds the messages committed before it, and the rest at the next wake).
 */
export class OutboxWakeups {
  #last = 0;
  #pending: NodeJS.Timeout | undefined;

  constructor(
    private readonly signal: ChangeSignal,
    private readonly logger: Logger,
    private readonly intervalMs = 50,
  ) {}

  /** Called after a message was accepted (committed). */
  accepted(): void {
    if (this.#pending) return;
    const wait = this.#last + this.intervalMs - Date.now();
    if (wait <= 0) return this.#send();
    this.#pending = setTimeout(() => this.#send(), wait);
    this.#pending.unref();
  }

  /** Listens for the others' wake-ups; returns the function that stops listening. */
  listen(wake: () => void): () => Promise<void> {
    return this.signal.listen({ wake, problem: (err, retryInMs) => this.logger.warn({ err, retryInMs }, 'the outbox wake-up connection to PostgreSQL failed; reconnecting (the 500 ms poll goes on meanwhile)') });
  }

  stop(): void {
    clearTimeout(this.#pending);
    this.#pending = undefined;
  }

  #send(): void {
    this.#pending = undefined;
    this.#last = Date.now();
    this.signal.notify().catch((err: unknown) => this.logger.debug({ err }, 'cannot notify the other instances of new outbox work'));
  }
}
