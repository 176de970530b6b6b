// Web UI sessions: an unguessable cookie value (only its hash is stored), a per-session CSRF token, idle and absolute expiry, and one-shot flash messages.
import crypto from 'node:crypto';
import type { Store } from '../store/store.js';
import type { AdminUser } from './adminAccounts.js';

/** A session ends after this long without a request… */
export const SESSION_IDLE_MS = 8 * 3_600_000;
/** …and in any case this long after sign-in. */
export const SESSION_MAX_MS = 7 * 24 * 3_600_000;
/** last_seen_at is written at most this often, not on every request. */
const TOUCH_EVERY_MS = 60_000;

export interface Flash {
  kind: 'success' | 'error' | 'info';
  title: string;
  message?: string;
}

export interface Session {
  /** The stored key (sha256 of the cookie value): what every update uses. */
  idHash: string;
  user: AdminUser;
  csrfToken: string;
  expiresAt: string;
}

const sha256 = (value: string) => crypto.createHash('sha256').update(value).digest('hex');

export class SessionStore {
  constructor(private readonly store: Store) {}

  /** A new session for `user`; returns the cookie value, which is never stored. */
  async create(user: AdminUser): Promise<{ cookieValue: string; session: Session }> {
    const cookieValue = crypto.randomBytes(32).toString('base64url');
    const now = Date.now();
    const session: Session = { idHash: sha256(cookieValue), user, csrfToken: crypto.randomBytes(32).toString('base64url'), expiresAt: new Date(now + SESSION_IDLE_MS).toISOString() };
    await this.store.db.deleteFrom('admin_sessions').where('expires_at', '<', new Date(now).toISOString()).execute();
    await this.store.db
      .insertInto('admin_sessions')
      .values({ id_hash: session.idHash, user_id: user.id, csrf_token: session.csrfToken, flash: null, created_at: new Date(now).toISOString(), last_seen_at: new Date(now).toISOString(), expires_at: session.expiresAt })
      .execute();
    return { cookieValue, session };
  }

  /** The live session behind a cookie value, its idle expiry pushed forward; undefined when unknown or expired. */
  async find(cookieValue: string | undefined): Promise<Session | undefined> {
    if (!cookieValue || cookieValue.length > 100) return undefined;
    const idHash = sha256(cookieValue);
    const row = await this.store.db
      .selectFrom('admin_sessions')
      .innerJoin('admin_users', 'admin_users.id', 'admin_sessions.user_id')
      .select(['admin_sessions.user_id', 'admin_users.username', 'admin_sessions.csrf_token', 'admin_sessions.created_at', 'admin_sessions.last_seen_at', 'admin_sessions.expires_at'])
      .where('admin_sessions.id_hash', '=', idHash)
      .executeTakeFirst();
    const now = Date.now();
    if (!row || Date.parse(row.expires_at) <= now || Date.parse(row.created_at) + SESSION_MAX_MS <= now) return undefined;
    let expiresAt = row.expires_at;
    if (now - Date.parse(row.last_seen_at) > TOUCH_EVERY_MS) {
      expiresAt = new Date(Math.min(now + SESSION_IDLE_MS, Date.parse(row.created_at) + SESSION_MAX_MS)).toISOString();
      await this.store.db.updateTable('admin_sessions').set({ last_seen_at: new Date(now).toISOString(), expires_at: expiresAt }).where('id_hash', '=', idHash).execute();
    }
    return { idHash, user: { id: row.user_id, username: row.username }, csrfToken: row.csrf_token, expiresAt };
  }

  async destroy(session: Session): Promise<void> {
    await this.store.db.deleteFrom('admin_sessions').where('id_hash', '=', session.idHash).execute();
  }

  async setFlash(session: Session, flash: Flash): Promise<void> {
    await this.store.db.updateTable('admin_sessions').set({ flash: JSON.stringify(flash) }).where('id_hash', '=', session.idHash).execute();
  }

  /** The pending flash message, removed as it is read. */
  async takeFlash(session: Session): Promise<Flash | undefined> {
    const row = await this.store.db.selectFrom('admin_sessions').select('flash').where('id_hash', '=', session.idHash).executeTakeFirst();
    if (!row?.flash) return undefined;
    await this.store.db.updateTable('admin_sessions').set({ flash: null }).where('id_hash', '=', session.idHash).execute();
    return JSON.parse(row.flash) as Flash;
  }
}

/** Constant-time comparison of a presented CSRF token with the session's. */
export function csrfMatches(session: Session, presented: unknown): boolean {
  if (typeof presented !== 'string') return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(session.csrfToken);
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

/** A random, URL-safe token (192 bits): one-time form bindings, setup links. */
export function randomToken(): string {
  return crypto.randomBytes(24).toString('base64url');
}
