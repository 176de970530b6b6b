// Proves the store on SQLite and PostgreSQL: migrations that run once, the same values back (ids, counts, bytes), and a clear refusal of a schema from a newer build.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseLocation } from '../config/load.js';
import { createLogger } from '../log.js';
import { VERSION } from '../version.js';
import { startPostgresCluster, type PostgresCluster } from '../../test/setup/postgres.js';
import { freshPostgresDatabase } from '../../test/support/postgres.js';
import { ChangeFeed } from './changes.js';
import { migrations } from './migrations/index.js';
import { openStore, type Store } from './store.js';

function dbFile(): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mailgate-store-')), 'nested', 'mailgate.db');
}

async function freshLocation(kind: DatabaseLocation['kind']): Promise<DatabaseLocation> {
  return kind === 'sqlite' ? { kind, file: dbFile() } : { kind, url: await freshPostgresDatabase() };
}

const allMigrations = Object.keys(migrations).sort();

describe.each(['sqlite', 'postgres'] as const)('openStore (%s)', (kind) => {
  it('applies every migration on the first open, none on the next, and keeps meta values', async () => {
    const location = await freshLocation(kind);
    const store = await openStore(location);
    expect(store.migration).toEqual({ applied: allMigrations, current: allMigrations.at(-1) });
    await store.setMeta('greeting', 'hello');
    await store.setMeta('greeting', 'hello again');
    expect(await store.getMeta('greeting')).toBe('hello again');
    expect(await store.getMeta('schema_mailgate_version')).toBe(VERSION);
    await store.ping();
    await store.close();

    const again = await openStore(location);
    expect(again.migration.applied).toEqual([]);
    expect(await again.getMeta('greeting')).toBe('hello again');
    const applied = await again.db.selectFrom('kysely_migration' as never).select(sql<string>`name`.as('name')).orderBy(sql`name`).execute();
    expect(applied.map((r) => r.name)).toEqual(allMigrations);
    await again.close();
  });

  it('refuses a database migrated by a newer Mailgate, naming both versions and the fix', async () => {
    const location = await freshLocation(kind);
    const store = await openStore(location);
    await sql`insert into kysely_migration (name, timestamp) values ('9999_future', '2030-01-01T00:00:00.000Z')`.execute(store.db);
    await store.setMeta('schema_mailgate_version', '9.9.9');
    await store.close();
    const refusal = openStore(location);
    await expect(refusal).rejects.toMatchObject({ code: 'STORE_SCHEMA_TOO_NEW' });
    const message = ((await refusal.catch((err: unknown) => err)) as Error).message;
    expect(message).toContain('Mailgate 9.9.9 (schema 9999_future)');
    expect(message).toContain(`this is Mailgate ${VERSION} (schema ${allMigrations.at(-1)})`);
    expect(message).toContain('upgrade Mailgate to 9.9.9 or later');
  });

  it('numbers ids in the database, counts as numbers and gives bytes back unchanged', async () => {
    const store = await openStore(await freshLocation(kind));
    try {
      const at = new Date().toISOString();
      const first = await store.db.insertInto('audit_log').values({ at, actor: 'test', action: 'a', target: null, details: '{}' }).returning('id').executeTakeFirstOrThrow();
      const second = await store.db.insertInto('audit_log').values({ at, actor: 'test', action: 'b', target: null, details: '{}' }).returning('id').executeTakeFirstOrThrow();
      expect(typeof first.id).toBe('number');
      expect(second.id).toBe(first.id + 1);
      const counted = await store.db.selectFrom('audit_log').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
      expect(counted.n).toBe(2);
      const raw = await sql<{ n: number }>`select count(*) as n from audit_log where actor = ${'test'}`.execute(store.db);
      expect(raw.rows[0]!.n).toBe(2);

      await store.changes.record('servers', 'smtp-main');
      expect(await store.changes.latest()).toBeTypeOf('number');

      // 8-bit bytes that are not UTF-8 (a latin-1 body) must come back byte for byte.
      const bytes = Buffer.from([0x00, 0xe9, 0xff, 0x0d, 0x0a, 0x80]);
      await store.db
        .insertInto('outbox')
        .values({ id: 'msg-1', sender: 's', idempotency_key: null, message: '{}', size: bytes.length, status: 'queued', attempts: 0, server_index: 0, server_attempts: 0, next_attempt_at: at, lease_owner: null, lease_until: null, server_used: null, message_id: '<1@x>', last_error: null, response: null, rejected: null, history: '[]', created_at: at, updated_at: at, sent_at: null, raw: bytes, envelope: null } as never)
        .execute();
      const row = await store.db.selectFrom('outbox').select(['raw', 'size']).where('id', '=', 'msg-1').executeTakeFirstOrThrow();
      expect(Buffer.isBuffer(row.raw)).toBe(true);
      expect(row.raw!.equals(bytes)).toBe(true);
      expect(row.size).toBe(6);
    } finally {
      await store.close();
    }
  });
});

describe('openStore (SQLite)', () => {
  it('creates the file (mode 0600) in WAL mode', async () => {
    const file = dbFile();
    (await openStore({ kind: 'sqlite', file })).close();
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const raw = new SQLite(file, { readonly: true });
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    // The DDL existing installations were migrated with: autoincrement ids and a blob for raw messages.
    const ddl = (name: string) => (raw.prepare('select sql from sqlite_master where name = ?').get(name) as { sql: string }).sql;
    expect(ddl('audit_log')).toContain('"id" integer primary key autoincrement');
    expect(ddl('changes')).toContain('"seq" integer primary key autoincrement');
    expect(ddl('outbox')).toContain('"raw" blob');
    raw.close();
  });

  it('says which file it cannot open and what to do', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailgate-store-'));
    fs.writeFileSync(path.join(dir, 'blocker'), '');
    await expect(openStore({ kind: 'sqlite', file: path.join(dir, 'blocker', 'mailgate.db') })).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE', message: expect.stringContaining('MAILGATE_DATA_DIR') });
  });
});

describe('openStore (PostgreSQL)', () => {
  it('migrates exactly once when several instances open one new database at the same moment', async () => {
    const url = await freshPostgresDatabase();
    // pool_size=1: the migration lock and the migrations share one connection, so even the smallest pool works.
    const stores = await Promise.all([`${url}?pool_size=1`, url, url].map((u) => openStore({ kind: 'postgres', url: u })));
    try {
      const applied = stores.flatMap((s) => s.migration.applied);
      expect(applied.sort()).toEqual(allMigrations);
      expect(stores.filter((s) => s.migration.applied.length > 0)).toHaveLength(1);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it('says a server without TLS cannot honour sslmode=require, and never shows the password', async () => {
    const url = new URL(await freshPostgresDatabase());
    const password = decodeURIComponent(url.password);
    url.searchParams.set('sslmode', 'require');
    const err = (await openStore({ kind: 'postgres', url: url.toString() }).catch((e: unknown) => e)) as Error & { code: string };
    expect(err.code).toBe('STORE_UNAVAILABLE');
    expect(err.message).toContain('does not offer TLS');
    expect(err.message).toContain('sslmode=require');
    expect(err.message).toContain(':***@127.0.0.1');
    expect(err.message).not.toContain(password);
  });

  it('names a wrong password as the problem without printing either password', async () => {
    const url = new URL(await freshPostgresDatabase());
    url.password = 'not-the-password';
    const err = (await openStore({ kind: 'postgres', url: url.toString() }).catch((e: unknown) => e)) as Error & { code: string };
    expect(err.code).toBe('STORE_UNAVAILABLE');
    expect(err.message).toMatch(/refused the login .*check the user and password/);
    expect(err.message).not.toContain('not-the-password');
  });

  it('refuses TLS settings it cannot honour before connecting', async () => {
    const base = 'postgres://u:secret@db.example/mailgate';
    await expect(openStore({ kind: 'postgres', url: `${base}?sslmode=prefer` })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('sslmode=prefer is not supported') });
    await expect(openStore({ kind: 'postgres', url: `${base}?sslmode=verify-ca` })).rejects.toMatchObject({ message: expect.stringContaining('verify-ca needs sslrootcert=FILE') });
    const missing = openStore({ kind: 'postgres', url: `${base}?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem` });
    await expect(missing).rejects.toMatchObject({ message: expect.stringContaining('cannot read sslrootcert=/nonexistent/ca.pem') });
    await expect(missing).rejects.toMatchObject({ message: expect.not.stringContaining('secret') });
  });

  it("wakes another instance's change feed through NOTIFY long before its poll, also after its LISTEN connection was cut", async () => {
    const url = await freshPostgresDatabase();
    const [writer, reader] = await Promise.all([openStore({ kind: 'postgres', url }), openStore({ kind: 'postgres', url })]);
    // A poll interval of ten minutes: only a notification can deliver the change in time.
    const feed = new ChangeFeed(reader.changes, createLogger('silent'), 600_000);
    const seen: { name: string; at: number }[] = [];
    feed.subscribe('servers', (name) => seen.push({ name, at: Date.now() }));
    try {
      await feed.start();
      await waitFor(async () => (await listeners(writer)) === 1);
      const t0 = Date.now();
      await writer.changes.record('servers', 'smtp-a');
      await waitFor(async () => seen.length === 1);
      expect(seen[0]!.name).toBe('smtp-a');
      // Far sooner than the ten-minute poll: only the notification can have brought it (the bound is loose on purpose:
      // a loaded CI machine may take a second or two, and this is not a speed test).
      expect(seen[0]!.at - t0).toBeLessThan(30_000);

      // The server drops the LISTEN connection (restart, failover): the feed reconnects and is woken again.
      await sql`select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and query ilike 'LISTEN%'`.execute(writer.db);
      await waitFor(async () => (await listeners(writer)) === 1, 10_000);
      const t1 = Date.now();
      await writer.changes.record('servers', 'smtp-b');
      await waitFor(async () => seen.length === 2);
      expect(seen[1]!.name).toBe('smtp-b');
      expect(seen[1]!.at - t1).toBeLessThan(30_000);
    } finally {
      await feed.stop();
      await Promise.all([writer.close(), reader.close()]);
    }
  });
});

describe('ChangeFeed on PostgreSQL', () => {
  it('tells an entry that committed after a newer one was read (writers side by side), and each entry once', async () => {
    const url = await freshPostgresDatabase();
    const [writer, reader] = await Promise.all([openStore({ kind: 'postgres', url }), openStore({ kind: 'postgres', url })]);
    const feed = new ChangeFeed(reader.changes, createLogger('silent'), 600_000);
    const seen: string[] = [];
    feed.subscribe('senders', (name) => seen.push(name));
    const slow = new pg.Client({ connectionString: url });
    await slow.connect();
    try {
      await feed.start();
      // A writer takes its number first and commits last.
      await slow.query('begin');
      await slow.query(`insert into changes (topic, name, origin, at) values ('senders', 'slow', 'another-process', now()::text)`);
      await writer.changes.record('senders', 'fast');
      await feed.poll();
      expect(seen).toEqual(['fast']);
      await slow.query('commit');
      await feed.poll();
      await feed.poll();
      expect(seen).toEqual(['fast', 'slow']);
    } finally {
      await slow.end();
      await feed.stop();
      await Promise.all([writer.close(), reader.close()]);
    }
  });
});

describe('openStore (PostgreSQL over TLS)', () => {
  // A server of its own with TLS on, its certificate made out to "localhost" only (not to 127.0.0.1).
  let cluster: PostgresCluster;
  beforeAll(async () => {
    cluster = await startPostgresCluster({ tls: { names: ['localhost'], withoutIp: true } });
  });
  afterAll(async () => cluster?.stop());

  const url = (host: string, params: Record<string, string>) => {
    const u = new URL(cluster.adminUrl);
    u.hostname = host;
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
    return u.toString();
  };
  const encrypted = async (store: Store) => (await sql<{ ssl: boolean }>`select ssl from pg_stat_ssl where pid = pg_backend_pid()`.execute(store.db)).rows[0]!.ssl;

  it('connects with sslmode=verify-full when the CA is given and the host is the certificate\'s name, encrypted', async () => {
    const store = await openStore({ kind: 'postgres', url: url('localhost', { sslmode: 'verify-full', sslrootcert: cluster.caFile! }) });
    try {
      expect(await encrypted(store)).toBe(true);
    } finally {
      await store.close();
    }
  });

  it('refuses a certificate whose name is not the host (verify-full), and one from an unknown CA, saying what to change', async () => {
    const wrongName = (await openStore({ kind: 'postgres', url: url('127.0.0.1', { sslmode: 'verify-full', sslrootcert: cluster.caFile! }) }).catch((e: unknown) => e)) as Error & { code: string };
    expect(wrongName.code).toBe('STORE_UNAVAILABLE');
    expect(wrongName.message).toMatch(/certificate was not accepted .*127\.0\.0\.1.*connect by the name the certificate carries/);
    const unknownCa = (await openStore({ kind: 'postgres', url: url('localhost', { sslmode: 'verify-full' }) }).catch((e: unknown) => e)) as Error & { code: string };
    expect(unknownCa.code).toBe('STORE_UNAVAILABLE');
    expect(unknownCa.message).toMatch(/certificate was not accepted .*give its CA with sslrootcert=FILE/);
  });

  it('verify-ca checks the CA but not the name; require encrypts without checking', async () => {
    const modes: Record<string, string>[] = [{ sslmode: 'verify-ca', sslrootcert: cluster.caFile! }, { sslmode: 'require' }];
    for (const params of modes) {
      const store = await openStore({ kind: 'postgres', url: url('127.0.0.1', params) });
      try {
        expect(await encrypted(store)).toBe(true);
      } finally {
        await store.close();
      }
    }
  });
});

async function listeners(store: Store): Promise<number> {
  const { rows } = await sql<{ n: number }>`select count(*) as n from pg_stat_activity where datname = current_database() and query ilike 'LISTEN%'`.execute(store.db);
  return rows[0]!.n;
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
