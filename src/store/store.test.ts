// Proves the SQLite store: WAL mode, migrations that run once, and a clear refusal of a schema from a newer build.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { openStore } from './store.js';
import { migrations } from './migrations/index.js';

function dbFile(): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mailgate-store-')), 'nested', 'mailgate.db');
}

describe('openStore (SQLite)', () => {
  it('creates the file (mode 0600) in WAL mode and applies every migration once', async () => {
    const file = dbFile();
    const store = await openStore({ kind: 'sqlite', file });
    await store.setMeta('greeting', 'hello');
    await store.setMeta('greeting', 'hello again');
    expect(await store.getMeta('greeting')).toBe('hello again');
    await store.ping();
    await store.close();
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);

    const again = await openStore({ kind: 'sqlite', file });
    expect(await again.getMeta('greeting')).toBe('hello again');
    await again.close();

    const raw = new SQLite(file, { readonly: true });
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    const applied = raw.prepare('select name from kysely_migration order by name').all() as { name: string }[];
    expect(applied.map((r) => r.name)).toEqual(Object.keys(migrations).sort());
    expect(applied.length).toBeGreaterThanOrEqual(9);
    raw.close();
  });

  it('refuses a database migrated by a newer Mailgate, naming the unknown migration', async () => {
    const file = dbFile();
    (await openStore({ kind: 'sqlite', file })).close();
    const raw = new SQLite(file);
    raw.prepare("insert into kysely_migration (name, timestamp) values ('9999_future', '2030-01-01T00:00:00.000Z')").run();
    raw.close();
    await expect(openStore({ kind: 'sqlite', file })).rejects.toMatchObject({ code: 'STORE_SCHEMA_TOO_NEW', message: expect.stringContaining('9999_future') });
  });

  it('says which file it cannot open and what to do', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailgate-store-'));
    fs.writeFileSync(path.join(dir, 'blocker'), '');
    await expect(openStore({ kind: 'sqlite', file: path.join(dir, 'blocker', 'mailgate.db') })).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE', message: expect.stringContaining('MAILGATE_DATA_DIR') });
  });
});
