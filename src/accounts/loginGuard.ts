// Failed logins (relay, proxies, web UI): a growing delay per failure, a lockout per client address — per account only for guessing spread over many addresses — and checks in progress counted against the limit.

export interface LoginGuardOptions {
  /** Failures from one client address before it is locked out. */
  maxFailures: number;
  /** How long failures are remembered, and so how long a lockout lasts. */
  lockoutMs: number;
  /**
   * An account is locked only after this many times `maxFailures` failures from any addresses: a device that keeps
   * trying an old password must not lock the right one out from its own address (a free denial of service).
   */
  accountFactor: number;
  /** Keys remembered at most (oldest first out), so a flood of addresses cannot exhaust memory. */
  maxKeys: number;
}

const DEFAULTS: LoginGuardOptions = { maxFailures: 5, lockoutMs: 15 * 60_000, accountFactor: 4, maxKeys: 20_000 };
const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 4000;

/** One login in progress, holding one of the address's slots until it is settled. */
export interface LoginAttempt {
  /** The password was right: the slot is given back and nothing is counted. */
  succeeded(): void;
  /** The password was wrong: counted as a failure; how long to wait before answering (grows with each failure). */
  failed(): number;
}

/**
 * Verifications in progress count against the limit together with failures already counted: with 3 failures, at most
 * 2 passwords from that address are checked at once, and a burst of guesses cannot all pass the check while the first
 * is still being verified. Logins that find no free slot wait for one (a mail program opening 20 connections at once
 * with the right password is served in turns), and are refused only once the failures themselves reach the limit.
 */
export class LoginGuard {
  readonly #failures = new Map<string, number[]>();
  readonly #inProgress = new Map<string, number>();
  #waiting: (() => void)[] = [];
  readonly #options: LoginGuardOptions;

  constructor(options: Partial<LoginGuardOptions> = {}) {
    this.#options = { ...DEFAULTS, ...options };
  }

  /** Milliseconds until this address may try this account again (failures counted so far); 0 when it may now. */
  lockedFor(address: string, account: string, now = Date.now()): number {
    const { maxFailures, lockoutMs, accountFactor } = this.#options;
    let wait = 0;
    const byAddress = this.#recent(addressKey(address), now);
    if (byAddress.length >= maxFailures) wait = Math.max(wait, byAddress[byAddress.length - maxFailures]! + lockoutMs - now);
    const byAccount = this.#recent(accountKey(account), now);
    if (byAccount.length >= maxFailures * accountFactor) wait = Math.max(wait, byAccount[byAccount.length - maxFailures * accountFactor]! + lockoutMs - now);
    return Math.max(0, wait);
  }

  /**
   * Waits for a free slot (failures + checks in progress under the limit, for the address and the account) and takes
   * it: the attempt to settle with `succeeded()` or `failed()`. `{ lockedForMs }` when the failures alone reach the
   * limit, now or while waiting.
   */
  async begin(address: string, account: string): Promise<LoginAttempt | { lockedForMs: number }> {
    const keys = [addressKey(address), accountKey(account)] as const;
    const limits = [this.#options.maxFailures, this.#options.maxFailures * this.#options.accountFactor] as const;
    for (;;) {
      const locked = this.lockedFor(address, account);
      if (locked > 0) return { lockedForMs: locked };
      const now = Date.now();
      if (keys.every((key, i) => this.#recent(key, now).length + (this.#inProgress.get(key) ?? 0) < limits[i]!)) break;
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
    for (const key of keys) this.#inProgress.set(key, (this.#inProgress.get(key) ?? 0) + 1);
    let settled = false;
    const release = () => {
      settled = true;
      for (const key of keys) {
        const left = (this.#inProgress.get(key) ?? 1) - 1;
        if (left <= 0) this.#inProgress.delete(key);
        else this.#inProgress.set(key, left);
      }
      const waiting = this.#waiting;
      this.#waiting = [];
      for (const wake of waiting) wake();
    };
    return {
      succeeded: () => {
        if (!settled) release();
      },
      failed: () => {
        if (!settled) {
          const at = Date.now();
          for (const key of keys) this.#push(key, at);
          release();
        }
        const count = this.#recent(keys[0], Date.now()).length;
        return Math.min(FIRST_DELAY_MS * 2 ** Math.max(0, count - 1), MAX_DELAY_MS);
      },
    };
  }

  #push(key: string, now: number): void {
    const list = this.#recent(key, now);
    list.push(now);
    this.#failures.delete(key); // re-insert: the Map's order is then least recently failed first
    this.#failures.set(key, list.slice(-this.#options.maxFailures * this.#options.accountFactor));
    while (this.#failures.size > this.#options.maxKeys) this.#failures.delete(this.#failures.keys().next().value!);
  }

  #recent(key: string, now: number): number[] {
    return (this.#failures.get(key) ?? []).filter((t) => t > now - this.#options.lockoutMs);
  }
}

const addressKey = (address: string) => `addr:${address}`;
const accountKey = (account: string) => `acct:${account.toLowerCase()}`;
