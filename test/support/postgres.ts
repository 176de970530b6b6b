// A database of its own for each test on the run's private PostgreSQL (started by test/setup/global.ts), and the switch that runs service tests on it.
import crypto from 'node:crypto';
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

/** `MAILGATE_TEST_DATABASE=postgres npx vitest run …` runs service-level tests on PostgreSQL; SQLite otherwise. */
export function testDatabaseKind(): TestDatabaseKind {
  const value = process.env.MAILGATE_TEST_DATABASE ?? 'sqlite';
  if (value !== 'sqlite' && value !== 'postgres') throw new Error(`MAILGATE_TEST_DATABASE must be "sqlite" or "postgres", got ${JSON.stringify(value)}`);
  return value;
}
