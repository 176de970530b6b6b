// The audit log: who did what to which object, and when. Records field names, never field values (they may be secrets).
import os from 'node:os';
import type { Store } from '../store/store.js';

export interface AuditEntry {
  id: number;
  at: string;
  actor: string;
  action: string;
  target: string | null;
  details: Record<string, unknown>;
}

export class AuditLog {
  constructor(private readonly store: Store) {}

  async record(actor: string, action: string, target: string | undefined, details: Record<string, unknown> = {}): Promise<void> {
    await this.store.db
      .insertInto('audit_log')
      .values({ at: new Date().toISOString(), actor: actor.slice(0, 200), action: action.slice(0, 200), target: target?.slice(0, 300) ?? null, details: JSON.stringify(details) })
      .execute();
  }

  /** Newest first; `before` (an entry id) pages back to older entries. */
  async list(limit: number, filter: { target?: string; before?: number } = {}): Promise<AuditEntry[]> {
    let query = this.store.db.selectFrom('audit_log').selectAll();
    if (filter.target) query = query.where('target', '=', filter.target);
    if (filter.before !== undefined) query = query.where('id', '<', filter.before);
    const rows = await query.orderBy('id', 'desc').limit(limit).execute();
    return rows.map((r) => ({ id: r.id, at: r.at, actor: r.actor, action: r.action, target: r.target, details: JSON.parse(r.details) as Record<string, unknown> }));
  }
}

/** Who runs a CLI command: the operating-system user, as `cli:<name>`. */
export function cliActor(): string {
  try {
    return `cli:${os.userInfo().username}`;
  } catch {
    return 'cli';
  }
}

/** The names of the fields a request changed; values are left out on purpose. */
export function fieldsOf(body: unknown): string[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return [];
  return Object.keys(body).sort();
}
