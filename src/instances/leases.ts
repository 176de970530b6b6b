// Leases in the database: a piece of work (a watcher, the alert loop) runs in the one instance that holds its lease, and another takes it over once the lease runs out.
import type { Store } from '../store/store.js';

export interface LeaseView {
  name: string;
  owner: string;
  expiresAt: string;
  acquiredAt: string;
}

/**
 * Every write is one statement, atomic on SQLite (one writer) and on PostgreSQL (a row lock on the lease's name), so
 * two instances racing for one lease never both get it. Times are ISO 8601 UTC strings compared as text, as
 * everywhere in the store: instances must keep their clocks in step (NTP), which a lease of tens of seconds tolerates.
 */
export class LeaseRepository {
  constructor(private readonly store: Store) {}

  /**
   * Takes the lease `name` for `owner` until `ttlMs` from now when it is free, expired or already `owner`'s (then it is
   * renewed). True when `owner` holds it afterwards.
   */
  async acquire(name: string, owner: string, ttlMs: number): Promise<boolean> {
    const now = new Date();
    const at = now.toISOString();
    const expiresAt = new Date(now.getTime() + ttlMs).toISOString();
    const row = await this.store.db
      .insertInto('leases')
      .values({ name, owner, expires_at: expiresAt, acquired_at: at })
      .onConflict((oc) =>
        oc
          .column('name')
          .doUpdateSet((eb) => ({
            owner: eb.ref('excluded.owner'),
            expires_at: eb.ref('excluded.expires_at'),
            acquired_at: eb.case().when('leases.owner', '=', owner).then(eb.ref('leases.acquired_at')).else(eb.ref('excluded.acquired_at')).end(),
          }))
          .where((eb) => eb.or([eb('leases.expires_at', '<', at), eb('leases.owner', '=', owner)])),
      )
      .returning('owner')
      .executeTakeFirst();
    return row?.owner === owner;
  }

  /** Extends the leases among `names` that `owner` still holds; returns those names (a lease lost meanwhile is missing). */
  async renew(owner: string, names: readonly string[], ttlMs: number): Promise<Set<string>> {
    if (names.length === 0) return new Set();
    const expiresAt = new Date(Date.now() + ttlMs).toISOString();
    const rows = await this.store.db.updateTable('leases').set({ expires_at: expiresAt }).where('owner', '=', owner).where('name', 'in', [...names]).returning('name').execute();
    return new Set(rows.map((r) => r.name));
  }

  /** Gives up `owner`'s leases among `names` (all of them when `names` is left out), so another instance may take them at once. */
  async release(owner: string, names?: readonly string[]): Promise<void> {
    if (names?.length === 0) return;
    let query = this.store.db.deleteFrom('leases').where('owner', '=', owner);
    if (names) query = query.where('name', 'in', [...names]);
    await query.execute();
  }

  /** Forgets every lease: at the start of the only instance a SQLite database may have, whose previous run crashed. */
  async releaseAll(): Promise<void> {
    await this.store.db.deleteFrom('leases').execute();
  }

  /** Every lease (held or run out but not yet taken over), by name; `prefix` keeps those whose name starts with it. */
  async list(prefix = ''): Promise<LeaseView[]> {
    const rows = await this.store.db.selectFrom('leases').selectAll().orderBy('name').execute();
    return rows.filter((r) => r.name.startsWith(prefix)).map((r) => ({ name: r.name, owner: r.owner, expiresAt: r.expires_at, acquiredAt: r.acquired_at }));
  }
}
