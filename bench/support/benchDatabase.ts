// Bench helper: a fresh Mailgate database for one bench round (a SQLite file in a temp folder, or a new database on the bench's PostgreSQL cluster) and in-process services on it.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { loadConfig, type Config } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { unlockKeyring } from '../../src/secrets/masterKey.js';
import { createServices, type Services } from '../../src/services.js';
import { openStore } from '../../src/store/store.js';
import { tempDir } from '../../test/support/cli.js';

export type Kind = 'sqlite' | 'postgres';

export interface BenchDatabase {
  kind: Kind;
  /** A folder of the round's own (SQLite: holds ./data/mailgate.db; PostgreSQL: holds nothing but a serve's mailgate.yaml). */
  cwd: string;
  /** MAILGATE_DATABASE_URL for a serve process (a sqlite: URL for SQLite, so every process names the same file). */
  url: string;
  /** Removes the database (DROP DATABASE … WITH (FORCE) / the temp folder). */
  drop(): Promise<void>;
}

/** A new, empty database: `adminUrl` is the PostgreSQL cluster's maintenance database (needed for `postgres`). */
export async function freshDatabase(kind: Kind, adminUrl: string | undefined): Promise<BenchDatabase> {
  const cwd = tempDir('mailgate-bench-');
  if (kind === 'sqlite') {
    return { kind, cwd, url: `sqlite:${path.join(cwd, 'data', 'mailgate.db')}`, drop: async () => fs.rmSync(cwd, { recursive: true, force: true }) };
  }
  if (!adminUrl) throw new Error('a PostgreSQL round needs the cluster');
  const name = `bench_${crypto.randomBytes(5).toString('hex')}`;
  await adminQuery(adminUrl, `CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    kind,
    cwd,
    url: url.toString(),
    async drop() {
      await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
      fs.rmSync(cwd, { recursive: true, force: true });
    },
  };
}

async function adminQuery(adminUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

export interface OpenedServices extends Services {
  close(): Promise<void>;
}

/** Mailgate's services in this process on `database` (migrated on open), with `masterKey`, as `serve` would build them. */
export async function openServices(database: BenchDatabase, masterKey: string, configure: (c: Config) => Config = (c) => c): Promise<OpenedServices> {
  const config = configure(loadConfig({ env: { MAILGATE_MASTER_KEY: masterKey, MAILGATE_DATABASE_URL: database.url }, cwd: database.cwd }));
  const store = await openStore(config.database);
  const { keyring } = await unlockKeyring(config.masterKey, store);
  const services = createServices(config, createLogger('warn'), store, keyring);
  return Object.assign(services, { close: () => store.close() });
}

/** Reads the outbox's counters straight from the database (a read-only peek beside the serve processes). */
export interface OutboxPeek {
  counts(): Promise<{ sent: number; failed: number; pending: number }>;
  /** Last sent_at of the messages created at or after `since` (ISO), and how many there are. */
  lastSent(since: string): Promise<{ last: string | null; n: number }>;
  close(): Promise<void>;
  /** The peek's own reads so far: each is one sequential scan of the outbox (subtract them from PostgreSQL's counters). */
  scans: { count: number; rows: number };
}

export async function peekOutbox(database: BenchDatabase): Promise<OutboxPeek> {
  const COUNTS = `select sum(case when status = 'sent' then 1 else 0 end) as sent, sum(case when status = 'failed' then 1 else 0 end) as failed, sum(case when status in ('queued', 'sending') then 1 else 0 end) as pending from outbox`;
  const LAST = 'select max(sent_at) as last, count(*) as n from outbox where created_at >= $1';
  type Counts = { sent: number | string | null; failed: number | string | null; pending: number | string | null };
  const scans = { count: 0, rows: 0 };
  const numbers = (r: Counts) => {
    const c = { sent: Number(r.sent ?? 0), failed: Number(r.failed ?? 0), pending: Number(r.pending ?? 0) };
    scans.count += 1;
    scans.rows += c.sent + c.failed + c.pending;
    return c;
  };
  if (database.kind === 'sqlite') {
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(database.url.slice('sqlite:'.length), { readonly: true });
    const counts = db.prepare(COUNTS);
    const last = db.prepare(LAST.replace('$1', '?'));
    return {
      scans,
      counts: async () => numbers(counts.get() as Counts),
      lastSent: async (since) => last.get(since) as { last: string | null; n: number },
      close: async () => {
        db.close();
      },
    };
  }
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  return {
    scans,
    counts: async () => numbers((await client.query<Counts>(COUNTS)).rows[0]!),
    lastSent: async (since) => {
      const row = (await client.query<{ last: string | null; n: string }>(LAST, [since])).rows[0]!;
      scans.count += 1;
      scans.rows += Number(row.n); // at least; the table holds the warm-up too (added by the caller)
      return { last: row.last, n: Number(row.n) };
    },
    close: () => client.end(),
  };
}

export interface PostgresActivity {
  commits: number;
  /** Per table: sequential scans, rows they read, index scans, rows fetched through indexes, rows inserted and updated. */
  tables: { table: string; seqScans: number; seqRows: number; idxScans: number; idxRows: number; inserted: number; updated: number }[];
}

/** PostgreSQL's own counters for a database (read after its clients have disconnected, so every backend has reported). */
export async function postgresActivity(database: BenchDatabase): Promise<PostgresActivity> {
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    const db = await client.query<{ xact_commit: string }>('select xact_commit from pg_stat_database where datname = current_database()');
    const rows = await client.query<Record<string, string | null>>(
      'select relname, seq_scan, seq_tup_read, idx_scan, idx_tup_fetch, n_tup_ins, n_tup_upd from pg_stat_user_tables order by coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) + n_tup_ins + n_tup_upd desc',
    );
    const n = (v: string | null | undefined) => Number(v ?? 0);
    return {
      commits: n(db.rows[0]?.xact_commit),
      tables: rows.rows.map((r) => ({ table: String(r.relname), seqScans: n(r.seq_scan), seqRows: n(r.seq_tup_read), idxScans: n(r.idx_scan), idxRows: n(r.idx_tup_fetch), inserted: n(r.n_tup_ins), updated: n(r.n_tup_upd) })),
    };
  } finally {
    await client.end();
  }
}
