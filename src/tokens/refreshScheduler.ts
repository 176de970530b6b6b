// Refreshes tokens ahead of expiry and keeps idle credentials alive, on a timer, with bounded concurrency.
import type { CredentialRepository } from '../credentials/repository.js';
import type { Logger } from '../log.js';
import { dueWindowOf, type TokenManager } from './tokenManager.js';

export interface RefreshSchedulerOptions {
  intervalMs: number;
  /** Refresh tokens expiring within this window (wider than the on-demand margin, so callers rarely wait). */
  aheadMs: number;
  /** Refresh credentials not refreshed for this long, even if their access token is still valid. */
  keepAliveMs: number;
  concurrency?: number;
}

export class RefreshScheduler {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> | undefined;
  #stopped = false;

  constructor(
    private readonly repo: CredentialRepository,
    private readonly tokens: TokenManager,
    private readonly logger: Logger,
    private readonly options: RefreshSchedulerOptions,
  ) {}

  start(): void {
    this.#stopped = false;
    const tick = () => {
      this.#running = this.runOnce().finally(() => {
        this.#running = undefined;
        if (!this.#stopped) this.#timer = setTimeout(tick, this.options.intervalMs);
      });
    };
    this.#timer = setTimeout(tick, 0);
  }

  /** One pass: refresh every due credential, at most `concurrency` at once. Failures are recorded on the credential. */
  async runOnce(): Promise<{ refreshed: number; failed: number }> {
    const now = Date.now();
    const idleSince = new Date(now - this.options.keepAliveMs).toISOString();
    const candidates = await this.repo.dueForRefresh(new Date(now + this.options.aheadMs).toISOString(), idleSince, new Date(now).toISOString());
    // A token living less than twice the look-ahead waits for the last half of its lifetime (else every pass refreshed it).
    const due = candidates.filter(
      (row) => row.status !== 'active' || !row.expires_at || (row.last_refreshed_at ?? '') < idleSince || Date.parse(row.expires_at) - now < dueWindowOf(row, this.options.aheadMs),
    );
    let refreshed = 0;
    let failed = 0;
    const queue = [...due];
    const worker = async () => {
      for (let row = queue.shift(); row && !this.#stopped; row = queue.shift()) {
        try {
          await this.tokens.refresh(row.name);
          refreshed += 1;
        } catch (err) {
          failed += 1;
          this.logger.debug({ credential: row.name, code: (err as { code?: string }).code }, 'scheduled refresh failed');
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.options.concurrency ?? 8, queue.length) }, worker));
    if (due.length > 0) this.logger.info({ due: due.length, refreshed, failed }, 'scheduled refresh pass');
    return { refreshed, failed };
  }

  /** Stops the timer and waits for a pass in progress (its requests finish; the rest waits for the next start). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }
}
