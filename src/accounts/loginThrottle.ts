// Limits failed sign-ins per client address and per username: after too many, further attempts wait, whatever the password.

export interface ThrottleOptions {
  /** Failures allowed within the window before attempts are refused. */
  maxFailures: number;
  windowMs: number;
  /** Keys remembered at most (oldest dropped first), so a flood of addresses cannot exhaust memory. */
  maxKeys: number;
}

const DEFAULTS: ThrottleOptions = { maxFailures: 5, windowMs: 15 * 60_000, maxKeys: 10_000 };

export class LoginThrottle {
  readonly #failures = new Map<string, number[]>();
  readonly #options: ThrottleOptions;

  constructor(options: Partial<ThrottleOptions> = {}) {
    this.#options = { ...DEFAULTS, ...options };
  }

  /** Milliseconds until any of `keys` may try again; 0 when none is locked. */
  retryAfterMs(keys: readonly string[], now = Date.now()): number {
    let wait = 0;
    for (const key of keys) {
      const recent = this.#recent(key, now);
      if (recent.length >= this.#options.maxFailures) wait = Math.max(wait, recent[0]! + this.#options.windowMs - now);
    }
    return wait;
  }

  recordFailure(keys: readonly string[], now = Date.now()): void {
    for (const key of keys) {
      const recent = this.#recent(key, now);
      recent.push(now);
      this.#failures.delete(key); // re-insert: the Map's order is then least recently failed first
      this.#failures.set(key, recent.slice(-this.#options.maxFailures));
    }
    while (this.#failures.size > this.#options.maxKeys) this.#failures.delete(this.#failures.keys().next().value!);
  }

  /** A successful sign-in clears the username's count (not the address's: one good password must not unlock guessing at others). */
  recordSuccess(key: string): void {
    this.#failures.delete(key);
  }

  #recent(key: string, now: number): number[] {
    return (this.#failures.get(key) ?? []).filter((t) => t > now - this.#options.windowMs);
  }
}
