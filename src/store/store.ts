// Opens the database (SQLite by default, PostgreSQL by URL), runs migrations, and offers the few store-wide operations.
import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect, sql, type Dialect, type MigrationProvider } from 'kysely';
import { ErrorCode, MailgateError } from '../errors.js';
import type { DatabaseLocation } from '../config/load.js';
import { migrations } from './migrations/index.js';
import type { Database } from './tables.js';
import { ChangeLog } from './changes.js';

export interface Store {
  readonly db: Kysely<Database>;
  readonly kind: DatabaseLocation['kind'];
  /** Where writes to definitions are logged for the other running instances (and `serve` beside the CLI). */
  readonly changes: ChangeLog;
  /** Throws STORE_UNAVAILABLE when the database does not answer (used by /readyz). */
  ping(): Promise<void>;
  getMeta(name: string): Promise<string | undefined>;
  setMeta(name: string, value: string): Promise<void>;
  close(): Promise<void>;
}

const migrationProvider: MigrationProvider = { getMigrations: async () => ({ ...migrations }) };

/** Opens the store at `location` and brings its schema up to date. */
export async function openStore(location: DatabaseLocation): Promise<Store> {
  const db = new Kysely<Database>({ dialect: await createDialect(location) });
  try {
    await migrate(db);
  } catch (err) {
    await db.destroy();
    throw err;
  }
  return {
    db,
    kind: location.kind,
    changes: new ChangeLog(db),
    async ping() {
      try {
        await sql`select 1`.execute(db);
      } catch (cause) {
        throw new MailgateError(ErrorCode.STORE_UNAVAILABLE, 'the database does not answer', { cause });
      }
    },
    async getMeta(name) {
      const row = await db.selectFrom('meta').select('value').where('name', '=', name).executeTakeFirst();
      return row?.value;
    },
    async setMeta(name, value) {
      const updatedAt = new Date().toISOString();
      await db
        .insertInto('meta')
        .values({ name, value, updated_at: updatedAt })
        .onConflict((oc) => oc.column('name').doUpdateSet({ value, updated_at: updatedAt }))
        .execute();
    },
    async close() {
      await db.destroy();
    },
  };
}

async function createDialect(location: DatabaseLocation): Promise<Dialect> {
  if (location.kind === 'postgres') {
    // PostgreSQL support (several instances sharing one database) is its own issue; the interface is ready for it.
    throw new MailgateError(ErrorCode.STORE_UNAVAILABLE, 'PostgreSQL storage is not available in this build yet: use "sqlite:PATH" for MAILGATE_DATABASE_URL');
  }
  let database: SQLite.Database;
  try {
    fs.mkdirSync(path.dirname(location.file), { recursive: true, mode: 0o700 });
    const isNew = !fs.existsSync(location.file);
    database = new SQLite(location.file);
    // The file holds only sealed secrets, but its metadata (names, addresses) is nobody else's business either.
    if (isNew) fs.chmodSync(location.file, 0o600);
    // WAL: readers never block the writer; NORMAL is durable across process crashes in WAL mode.
    database.pragma('journal_mode = WAL');
    database.pragma('synchronous = NORMAL');
    database.pragma('foreign_keys = ON');
    // A second process (e.g. `mailgate credential add` beside `serve`) waits for the lock instead of failing.
    database.pragma('busy_timeout = 5000');
  } catch (cause) {
    throw new MailgateError(ErrorCode.STORE_UNAVAILABLE, `cannot open the SQLite database ${location.file}: ${(cause as Error).message} (check that the directory exists and is writable, or set MAILGATE_DATA_DIR)`, { cause });
  }
  return new SqliteDialect({ database: withStatementCache(database) });
}

/**
 * Kysely prepares every query anew; better-sqlite3 statements are reusable, and preparing costs more than running
 * the small queries Mailgate makes. Reusing them by SQL text took about a tenth off each token refresh (bench/).
 */
function withStatementCache(database: SQLite.Database, limit = 500) {
  const cache = new Map<string, SQLite.Statement>();
  return {
    close: () => database.close(),
    prepare(sql: string) {
      let statement = cache.get(sql);
      if (statement) {
        // Map order is insertion order: re-inserting keeps the most recently used statements at the end.
        cache.delete(sql);
      } else {
        statement = database.prepare(sql);
        if (cache.size >= limit) cache.delete(cache.keys().next().value!);
      }
      cache.set(sql, statement);
      return statement;
    },
  };
}

async function migrate(db: Kysely<Database>): Promise<void> {
  const migrator = new Migrator({ db, provider: migrationProvider });
  const known = new Set(Object.keys(migrations));
  const newer = (await appliedMigrationNames(db)).filter((name) => !known.has(name));
  if (newer.length > 0) {
    throw new MailgateError(
      ErrorCode.STORE_SCHEMA_TOO_NEW,
      `the database was migrated by a newer Mailgate (migration ${newer.join(', ')} is unknown to this build): upgrade Mailgate or point MAILGATE_DATABASE_URL at another database`,
    );
  }
  const { error } = await migrator.migrateToLatest();
  if (error) throw new MailgateError(ErrorCode.STORE_UNAVAILABLE, `database migration failed: ${(error as Error).message}`, { cause: error });
}

async function appliedMigrationNames(db: Kysely<Database>): Promise<string[]> {
  const tables = await db.introspection.getTables({ withInternalKyselyTables: true });
  if (!tables.some((t) => t.name === 'kysely_migration')) return [];
  const rows = await sql<{ name: string }>`select name from kysely_migration`.execute(db);
  return rows.rows.map((r) => r.name);
}
