// A database of its own for each test on the run's private PostgreSQL (started by test/setup/global.ts), and the switch that runs service tests on it.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { inject } from 'vitest';
import type { DatabaseLocation } from '../../src/config/load.js';

/** Creates an empty database and returns its URL (same user and password as the admin URL). */
export async function freshPostgresDatabase(): Promise<string> {
  const adminUrl = inject('postgresAdminUrl');
  const name = `mg_${crypto.randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

export type TestDatabaseKind = DatabaseLocation['kind'];

/** MAILGATE_TEST_DATABASE=postgres (set by vitest.config.ts's `postgres` project) runs service-level tests on PostgreSQL; SQLite otherwise. */
export function testDatabaseKind(): TestDatabaseKind {
  const value = process.env.MAILGATE_TEST_DATABASE ?? 'sqlite';
  if (value !== 'sqlite' && value !== 'postgres') throw new Error(`MAILGATE_TEST_DATABASE must be "sqlite" or "postgres", got ${JSON.stringify(value)}`);
  return value;
}

/**
 * The PostgreSQL database of the installation in `cwd`: made on first use, its URL kept in the folder
 * (`postgres-url`, which test/support/cli.ts reads too), so reopening the same `cwd` (a restart) finds the same data.
 */
export async function installationPostgresUrl(cwd: string): Promise<string> {
  const file = path.join(cwd, 'postgres-url');
  if (fs.existsSync(file)) return fs.readFileSync(file, 'utf8').trim();
  const url = await freshPostgresDatabase();
  fs.writeFileSync(file, url, { mode: 0o600 });
  return url;
}

/** The database of the installation in `cwd`: SQLite as configured, or with MAILGATE_TEST_DATABASE=postgres its PostgreSQL database. */
export async function testDatabase(cwd: string, configured: DatabaseLocation): Promise<DatabaseLocation> {
  if (testDatabaseKind() === 'sqlite') return configured;
  return { kind: 'postgres', url: await installationPostgresUrl(cwd) };
}
