// Admin accounts of the web UI: the first account (from MAILGATE_ADMIN_PASSWORD or a one-time setup link), sign-in, and password changes.
import crypto from 'node:crypto';
import { ErrorCode, MailgateError } from '../errors.js';
import type { Secret } from '../secrets/secret.js';
import type { Store } from '../store/store.js';
import { decoyHash, hashPassword, passwordProblem, verifyPassword } from '../accounts/passwords.js';

export interface AdminUser {
  id: number;
  username: string;
}

/** A setup link stays valid this long; every start without an admin prints a fresh one. */
export const SETUP_TOKEN_TTL_MS = 24 * 3_600_000;
const USERNAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$/;

const sha256 = (value: string) => crypto.createHash('sha256').update(value).digest('hex');

export type FirstAdminOutcome = { kind: 'exists' } | { kind: 'created'; username: string } | { kind: 'setup'; token: string; expiresAt: string };

export class AdminAccounts {
  constructor(private readonly store: Store) {}

  async count(): Promise<number> {
    const row = await this.store.db.selectFrom('admin_users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /**
   * At start: nothing to do when an admin exists; else create "admin" from MAILGATE_ADMIN_PASSWORD,
   * or issue a one-time setup token (only its hash is stored) for the caller to print as a link.
   */
  async ensureFirstAdmin(password: Secret | undefined): Promise<FirstAdminOutcome> {
    if ((await this.count()) > 0) return { kind: 'exists' };
    if (password !== undefined) {
      await this.create('admin', password.reveal());
      return { kind: 'created', username: 'admin' };
    }
    const token = crypto.randomBytes(24).toString('base64url');
    const now = Date.now();
    const expiresAt = new Date(now + SETUP_TOKEN_TTL_MS).toISOString();
    await this.store.db.deleteFrom('admin_setup_tokens').where('expires_at', '<', new Date(now).toISOString()).execute();
    await this.store.db.insertInto('admin_setup_tokens').values({ token_hash: sha256(token), created_at: new Date(now).toISOString(), expires_at: expiresAt }).execute();
    return { kind: 'setup', token, expiresAt };
  }

  /** Whether a setup token may still be used: valid, unexpired, and no admin exists yet. */
  async setupTokenValid(token: string): Promise<boolean> {
    if ((await this.count()) > 0) return false;
    const row = await this.store.db.selectFrom('admin_setup_tokens').select('expires_at').where('token_hash', '=', sha256(token)).executeTakeFirst();
    return row !== undefined && row.expires_at > new Date().toISOString();
  }

  /** Creates the first admin with a setup token, which is used up (with every other one) in the same transaction. */
  async completeSetup(token: string, username: string, password: string): Promise<AdminUser> {
    this.#check(username, password);
    const hash = await hashPassword(password);
    return this.store.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('admin_setup_tokens').select('expires_at').where('token_hash', '=', sha256(token)).executeTakeFirst();
      const admins = await trx.selectFrom('admin_users').select('id').limit(1).execute();
      if (!row || row.expires_at <= new Date().toISOString() || admins.length > 0) {
        throw new MailgateError(ErrorCode.UNAUTHENTICATED, 'this setup link is not valid any more (used, expired, or an admin exists already): restart Mailgate for a new link, or sign in');
      }
      await trx.deleteFrom('admin_setup_tokens').execute();
      const at = new Date().toISOString();
      const inserted = await trx.insertInto('admin_users').values({ username, password_hash: hash, created_at: at, updated_at: at, last_login_at: null }).returning('id').executeTakeFirstOrThrow();
      return { id: inserted.id, username };
    });
  }

  async create(username: string, password: string): Promise<AdminUser> {
    this.#check(username, password);
    const at = new Date().toISOString();
    const existing = await this.store.db.selectFrom('admin_users').select('id').where('username', '=', username).executeTakeFirst();
    if (existing) throw new MailgateError(ErrorCode.ALREADY_EXISTS, `admin ${username} exists already: use \`mailgate admin password ${username}\` to change the password`);
    const inserted = await this.store.db
      .insertInto('admin_users')
      .values({ username, password_hash: await hashPassword(password), created_at: at, updated_at: at, last_login_at: null })
      .returning('id')
      .executeTakeFirstOrThrow();
    return { id: inserted.id, username };
  }

  /** Sets a new password and signs the user out everywhere. */
  async setPassword(username: string, password: string): Promise<void> {
    this.#check(username, password);
    const user = await this.store.db.selectFrom('admin_users').select('id').where('username', '=', username).executeTakeFirst();
    if (!user) throw new MailgateError(ErrorCode.NOT_FOUND, `no admin named ${username}: \`mailgate admin list\` shows them`);
    await this.store.db.updateTable('admin_users').set({ password_hash: await hashPassword(password), updated_at: new Date().toISOString() }).where('id', '=', user.id).execute();
    await this.store.db.deleteFrom('admin_sessions').where('user_id', '=', user.id).execute();
  }

  async list(): Promise<Array<AdminUser & { createdAt: string; lastLoginAt: string | null }>> {
    const rows = await this.store.db.selectFrom('admin_users').select(['id', 'username', 'created_at', 'last_login_at']).orderBy('username').execute();
    return rows.map((r) => ({ id: r.id, username: r.username, createdAt: r.created_at, lastLoginAt: r.last_login_at }));
  }

  async exists(username: string): Promise<boolean> {
    return (await this.store.db.selectFrom('admin_users').select('id').where('username', '=', username).executeTakeFirst()) !== undefined;
  }

  /** The user when the password matches, else undefined; unknown users cost as much time as known ones. */
  async authenticate(username: string, password: string): Promise<AdminUser | undefined> {
    const row = await this.store.db.selectFrom('admin_users').select(['id', 'username', 'password_hash']).where('username', '=', username).executeTakeFirst();
    const ok = await verifyPassword(password, row?.password_hash ?? (await decoyHash()));
    if (!row || !ok) return undefined;
    await this.store.db.updateTable('admin_users').set({ last_login_at: new Date().toISOString() }).where('id', '=', row.id).execute();
    return { id: row.id, username: row.username };
  }

  #check(username: string, password: string): void {
    const problems: string[] = [];
    if (!USERNAME.test(username)) problems.push(`username: expected 1-100 letters, digits, ".", "_", "@" or "-", got ${JSON.stringify(username)}`);
    const weak = passwordProblem(password, username);
    if (weak) problems.push(`password: ${weak}`);
    if (problems.length > 0) throw new MailgateError(ErrorCode.INPUT_INVALID, problems.join('; '), { details: { problems } });
  }
}
