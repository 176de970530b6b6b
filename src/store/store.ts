// Opens the database (SQLite by default, PostgreSQL by URL), runs migrations, and offers the few store-wide operations.
import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql, type Dialect } from 'kysely';
import { ErrorCode, MailgateError } from '../errors.js';
import type { DatabaseLocation } from '../config/load.js';
import type { Database } from './tables.js';
import { CHANGES_CHANNEL, ChangeLog, type ChangeSignal } from './changes.js';
import { migrate, type MigrationReport } from './migrate.js';
import { redactDatabaseUrl } from './databaseUrl.js';
import type { PostgresSettings } from './postgres.js';

export interface Store {
  readonly db: Kysely<Database>;
  readonly kind: DatabaseLocation['kind'];
  /** Where writes to definitions are logged for the other running instances (and `serve` beside the CLI). */
  readonly changes: ChangeLog;
  /** PostgreSQL: NOTIFY/LISTEN on `channel`, to wake the other instances (undefined on SQLite, which has one). */
  signal(channel: string): ChangeSignal | undefined;
  /** What opening the store did to its schema (`mailgate migrate` prints it). */
  readonly migration: MigrationReport;
  /** Throws STORE_UNAVAILABLE when the database does not answer (used by /readyz). */
  ping(): Promise<void>;
  getMeta(name: string): Promise<string | undefined>;
  setMeta(name: string, value: string): Promise<void>;
  close(): Promise<void>;
}

/** The database as it may be shown to a person or logged: the SQLite file, or the PostgreSQL URL without its password. */
export function databaseLabel(location: DatabaseLocation): string {
  return location.kind === 'sqlite' ? `sqlite:${location.file}` : redactDatabaseUrl(location.url);
}

/** Opens the store at `location` and brings its schema up to date. */
export async function openStore(location: DatabaseLocation): Promise<Store> {
  const { dialect, postgres } = await createDialect(location);
  const db = new Kysely<Database>({ dialect });
  let migration: MigrationReport;
  try {
    migration = await migrate(db, location.kind);
  } catch (err) {
    await db.destroy();
    throw err;
  }
  return {
    db,
    kind: location.kind,
    changes: new ChangeLog(db, postgres ? notifications(db, postgres.settings, postgres.listen, CHANGES_CHANNEL) : undefined),
    signal: (channel) => (postgres ? notifications(db, postgres.settings, postgres.listen, channel) : undefined),
    migration,
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

type Listen = typeof import('./postgres.js').listenForNotifications;

async function createDialect(location: DatabaseLocation): Promise<{ dialect: Dialect; postgres?: { settings: PostgresSettings; listen: Listen } }> {
  if (location.kind === 'postgres') {
    // pg loads only for a PostgreSQL URL: every `mailgate` command on the SQLite default starts without it.
    const { checkConnection, createPool, listenForNotifications, postgresSettings } = await import('./postgres.js');
    const settings = postgresSettings(location.url);
    const pool = createPool(settings);
    try {
      await checkConnection(pool, settings);
    } catch (err) {
      await pool.end().catch(() => {});
      throw err;
    }
    return { dialect: new PostgresDialect({ pool }), postgres: { settings, listen: listenForNotifications } };
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
  return { dialect: new SqliteDialect({ database: withStatementCache(database) }) };
}

/** PostgreSQL: a NOTIFY after each logged change wakes every other instance's feed through its LISTEN connection. */
function notifications(db: Kysely<Database>, settings: PostgresSettings, listen: Listen, channel: string): ChangeSignal {
  return {
    notify: async () => {
      await sql`select pg_notify(${channel}, '')`.execute(db);
    },
    listen: (events) => listen(settings, channel, events),
  };
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
