// One login at the relay or a proxy: lockout check, the password check (remembered briefly when right), the growing delay when wrong, and the audit line.
import crypto from 'node:crypto';
import type { AuditLog } from '../audit/auditLog.js';
import type { Logger } from '../log.js';
import { verifyAccountPassword } from './accountPasswords.js';
import { LoginGuard, type LoginGuardOptions } from './loginGuard.js';
import type { AccountKind, LoginResult } from './model.js';
import { decoyHash } from './passwords.js';

/** A right password is remembered (as a SHA-256 with the stored hash) this long, so a chosen one costs scrypt once, not per login. */
const VERIFIED_TTL_MS = 10 * 60_000;
const VERIFIED_MAX = 10_000;
/** last_login_at is for people ("is this account still used?"): minute precision spares a write per login. */
const LAST_LOGIN_RESOLUTION_MS = 60_000;

export interface LoginContext {
  /** The client's IP address, as the listener saw it. */
  client: string;
  /** `smtp`, `imap` or `pop3`: in the audit line. */
  protocol: string;
}

export interface StoredAccount {
  name: string;
  password_hash: string;
}

export class PasswordLogins<A extends StoredAccount> {
  readonly guard: LoginGuard;
  readonly #verified = new Map<string, number>();
  readonly #touched = new Map<string, number>();

  constructor(
    private readonly kind: AccountKind,
    private readonly find: (name: string) => Promise<A | undefined>,
    private readonly touch: (name: string, at: string) => Promise<void>,
    private readonly audit: AuditLog,
    private readonly logger: Logger,
    guard: Partial<LoginGuardOptions> = {},
  ) {
    this.guard = new LoginGuard(guard);
  }

  async login(name: string, password: string, context: LoginContext): Promise<LoginResult<A>> {
    const attempt = await this.guard.begin(context.client, name);
    if ('lockedForMs' in attempt) {
      this.#audit('login.locked', name, context, undefined);
      return { ok: false, reason: 'locked', retryAfterMs: attempt.lockedForMs };
    }
    const account = await this.find(name).catch((err: unknown) => {
      attempt.succeeded(); // not the client's fault: give the slot back, count nothing
      throw err;
    });
    const ok = account ? await this.#check(account, password) : (await verifyAccountPassword(password, await decoyHash()), false);
    if (!ok) {
      const delayMs = attempt.failed();
      this.#audit('login.failed', account?.name, context, account ? 'wrong password' : 'unknown account');
      return { ok: false, reason: 'invalid', delayMs };
    }
    attempt.succeeded();
    this.#audit('login', account!.name, context, undefined);
    const now = Date.now();
    if ((this.#touched.get(account!.name) ?? 0) + LAST_LOGIN_RESOLUTION_MS < now) {
      this.#touched.set(account!.name, now);
      this.touch(account!.name, new Date(now).toISOString()).catch((err: unknown) => this.logger.warn({ err }, 'cannot record last_login_at'));
    }
    return { ok: true, account: account! };
  }

  /** Forgets remembered logins (a password changed or an account was removed: the stored hash no longer matches anyway). */
  forget(): void {
    this.#verified.clear();
  }

  async #check(account: A, password: string): Promise<boolean> {
    const key = crypto.createHash('sha256').update(`${account.name}\0${account.password_hash}\0${password}`).digest('base64');
    const until = this.#verified.get(key);
    if (until !== undefined && until > Date.now()) return true;
    const ok = await verifyAccountPassword(password, account.password_hash);
    if (ok && !account.password_hash.startsWith('sha256$')) {
      if (this.#verified.size >= VERIFIED_MAX) this.#verified.delete(this.#verified.keys().next().value!);
      this.#verified.set(key, Date.now() + VERIFIED_TTL_MS);
    }
    return ok;
  }

  /** Account (only when it exists: a typed password must not land in the log as a name), client and outcome; never the password. */
  #audit(action: string, account: string | undefined, context: LoginContext, reason: string | undefined): void {
    this.audit
      .record(`${context.protocol}:${context.client}`, `${this.kind}-account.${action}`, account, { protocol: context.protocol, client: context.client, ...(reason ? { reason } : {}) })
      .catch((err: unknown) => this.logger.warn({ err }, 'cannot write the audit log'));
  }
}
