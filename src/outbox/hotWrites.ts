// The outbox's hot writes (a message accepted, an attempt's outcome), each through the store's group commit.
import { writeInGroup } from '../store/groupCommit.js';
import { assignments, quoted, statement, type SqlValue } from '../store/statements.js';
import type { Store } from '../store/store.js';

/** Inserts one outbox row (its columns as given); resolves once committed. */
export async function insertOutboxRow(store: Store, row: Record<string, SqlValue>): Promise<void> {
  const columns = Object.keys(row);
  const sql = statement(store.kind, `outbox insert:${columns.join(',')}`, () => `insert into "outbox" (${columns.map(quoted).join(', ')}) values (${columns.map(() => '?').join(', ')})`);
  await writeInGroup(store, sql, columns.map((c) => row[c] ?? null));
}

/**
 * Updates outbox row `id` only while it is being sent under `leaseOwner`'s lease (status `sending`, same owner);
 * resolves, once committed, with whether it did.
 */
export async function updateLeasedOutboxRow(store: Store, id: string, leaseOwner: string | null, set: Record<string, SqlValue>): Promise<boolean> {
  const columns = Object.keys(set);
  const owner = leaseOwner === null ? 'is null' : '= ?';
  const sql = statement(store.kind, `outbox leased:${owner}:${columns.join(',')}`, () => `update "outbox" set ${assignments(columns)} where "id" = ? and "status" = 'sending' and "lease_owner" ${owner}`);
  const parameters = [...columns.map((c) => set[c] ?? null), id, ...(leaseOwner === null ? [] : [leaseOwner])];
  return (await writeInGroup(store, sql, parameters)) > 0;
}
