// Brings a database's schema up to date: refuses one a newer Mailgate migrated, and on PostgreSQL lets one instance at a time do it.
import { Migrator, sql, type Kysely, type MigrationProvider } from 'kysely';
import { ErrorCode, MailgateError } from '../errors.js';
import { VERSION } from '../version.js';
import type { DatabaseLocation } from '../config/load.js';
import { migrations } from './migrations/index.js';
import type { Database } from './tables.js';

export interface MigrationReport {
  /** Migrations this open applied, in order (empty when the schema was current). */
  applied: string[];
  /** The newest migration the database has now. */
  current: string;
}

/** Which Mailgate applied the database's newest migration: named when an older build finds the schema too new. */
const VERSION_META = 'schema_mailgate_version';

/** pg_advisory_lock key for migrations ("mailgate" in ASCII): instances starting at once wait here for the first. */
const MIGRATION_LOCK = 7881707423573459045n;

const migrationProvider: MigrationProvider = { getMigrations: async () => ({ ...migrations }) };

export async function migrate(db: Kysely<Database>, kind: DatabaseLocation['kind']): Promise<MigrationReport> {
  if (kind !== 'postgres') return migrateNow(db);
  // A session lock on one connection, and the migrations on that same connection: a pool of one is enough, and a
  // second instance waits until the first has committed, then finds nothing left to do.
  return db.connection().execute(async (connection) => {
    await sql`select pg_advisory_lock(${sql.lit(MIGRATION_LOCK)})`.execute(connection);
    try {
      return await migrateNow(connection);
    } finally {
      await sql`select pg_advisory_unlock(${sql.lit(MIGRATION_LOCK)})`.execute(connection).catch(() => {});
    }
  });
}

async function migrateNow(db: Kysely<Database>): Promise<MigrationReport> {
  const known = Object.keys(migrations).sort();
  const applied = await appliedMigrationNames(db);
  const newer = applied.filter((name) => !known.includes(name)).sort();
  if (newer.length > 0) throw await schemaTooNew(db, newer, known);

  const { error, results } = await new Migrator({ db, provider: migrationProvider }).migrateToLatest();
  if (error) throw new MailgateError(ErrorCode.STORE_UNAVAILABLE, `database migration failed: ${(error as Error).message}`, { cause: error });
  const done = (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
  if (done.length > 0) {
    const at = new Date().toISOString();
    await db
      .insertInto('meta')
      .values({ name: VERSION_META, value: VERSION, updated_at: at })
      .onConflict((oc) => oc.column('name').doUpdateSet({ value: VERSION, updated_at: at }))
      .execute();
  }
  return { applied: done, current: known[known.length - 1]! };
}

async function schemaTooNew(db: Kysely<Database>, newer: string[], known: string[]): Promise<MailgateError> {
  const by = await db
    .selectFrom('meta')
    .select('value')
    .where('name', '=', VERSION_META)
    .executeTakeFirst()
    .catch(() => undefined);
  const newest = newer[newer.length - 1]!;
  const theirs = by ? `Mailgate ${by.value} (schema ${newest})` : `a newer Mailgate (schema ${newest})`;
  return new MailgateError(
    ErrorCode.STORE_SCHEMA_TOO_NEW,
    `the database was migrated by ${theirs}; this is Mailgate ${VERSION} (schema ${known[known.length - 1]}), which does not know ${newer.join(', ')}: upgrade Mailgate${by ? ` to ${by.value} or later` : ''}, or point MAILGATE_DATABASE_URL at another database`,
  );
}

async function appliedMigrationNames(db: Kysely<Database>): Promise<string[]> {
  const tables = await db.introspection.getTables({ withInternalKyselyTables: true });
  if (!tables.some((t) => t.name === 'kysely_migration')) return [];
  const rows = await sql<{ name: string }>`select name from kysely_migration`.execute(db);
  return rows.rows.map((r) => r.name);
}
