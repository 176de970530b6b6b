// SQL written once per shape for the hottest statements (a claim, a lease, a token write): Kysely's building and compiling of such a statement costs more than the database's execution of it.
import { CompiledQuery, type Kysely, type QueryResult } from 'kysely';
import type { DatabaseLocation } from '../config/load.js';

type StoreKind = DatabaseLocation['kind'];

/** A parameter of a written statement. */
export type SqlValue = string | number | null | Buffer;

const written = new Map<string, string>();

/**
 * The SQL for `key`, built once with `?` placeholders; PostgreSQL gets them numbered ($1, $2, …). Keys and column
 * names come from Mailgate's own code and row objects, never from input.
 */
export function statement(kind: StoreKind, key: string, build: () => string): string {
  const cacheKey = `${kind}:${key}`;
  let sql = written.get(cacheKey);
  if (sql === undefined) {
    sql = build();
    if (kind === 'postgres') {
      let n = 0;
      sql = sql.replace(/\?/g, () => `$${++n}`);
    }
    written.set(cacheKey, sql);
  }
  return sql;
}

/** A double-quoted identifier (both databases). */
export const quoted = (name: string): string => `"${name}"`;

/** The assignments of an `update … set` of `columns`, one `?` each, in their order. */
export const assignments = (columns: readonly string[]): string => columns.map((c) => `${quoted(c)} = ?`).join(', ');

/** Runs a written statement on `db` (the store or a transaction). */
export function runStatement<Row>(db: Pick<Kysely<never>, 'executeQuery'>, sql: string, parameters: readonly SqlValue[]): Promise<QueryResult<Row>> {
  return db.executeQuery<Row>(CompiledQuery.raw(sql, [...parameters]));
}
