// Failed logins at the relay and proxies: a growing delay per failure, then a lockout per client address — and per account only for guessing spread over many addresses.

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

/** One login in progress: counted as a failure from the start (so parallel guesses cannot all pass the check), undone on success. */
export interface LoginAttempt {
  /** The password was right: the provisional failure is taken back and the address's record cleared. */
  succeeded(): void;
  /** The password was wrong: how long to wait before answering (grows with each failure). */
  failed(): number;
}

export class LoginGuard {
  readonly #failures = new Map<string, number[]>();
  readonly #options: LoginGuardOptions;

  constructor(options: Partial<LoginGuardOptions> = {}) {
    this.#options = { ...DEFAULTS, ...options };
  }

  /** Milliseconds until this address may try this account again; 0 when it may now. */
  lockedFor(address: string, account: string, now = Date.now()): number {
    const { maxFailures, lockoutMs, accountFactor } = this.#options;
    let wait = 0;
    const byAddress = this.#recent(addressKey(address), now);
    if (byAddress.length >= maxFailures) wait = Math.max(wait, byAddress[byAddress.length - maxFailures]! + lockoutMs - now);
    const byAccount = this.#recent(accountKey(account), now);
    if (byAccount.length >= maxFailures * accountFactor) wait = Math.max(wait, byAccount[byAccount.length - maxFailures * accountFactor]! + lockoutMs - now);
    return Math.max(0, wait);
  }

  /** Starts a login: counts it as failed now; the caller settles it with `succeeded()` or `failed()`. */
  begin(address: string, account: string, now = Date.now()): LoginAttempt {
    const keys = [addressKey(address), accountKey(account)];
    for (const key of keys) this.#push(key, now);
    let settled = false;
    return {
      succeeded: () => {
        if (settled) return;
        settled = true;
        // The right password takes this attempt back, and only this one: earlier failures from the address stay (one
        // account's right password must not reset the count of someone guessing at other accounts from there).
        this.#remove(keys[0]!, now);
        this.#remove(keys[1]!, now);
      },
      failed: () => {
        settled = true;
        const count = this.#recent(keys[0]!, Date.now()).length;
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

  #remove(key: string, at: number): void {
    const list = this.#failures.get(key);
    if (!list) return;
    const index = list.lastIndexOf(at);
    if (index >= 0) list.splice(index, 1);
    if (list.length === 0) this.#failures.delete(key);
  }

  #recent(key: string, now: number): number[] {
    return (this.#failures.get(key) ?? []).filter((t) => t > now - this.#options.lockoutMs);
  }
}

const addressKey = (address: string) => `addr:${address}`;
const accountKey = (account: string) => `acct:${account.toLowerCase()}`;
