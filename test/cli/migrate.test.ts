// Proves `mailgate migrate` on SQLite and PostgreSQL, and that serve refuses a database a newer Mailgate migrated with exit 2 and one line naming both versions.
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { migrations } from '../../src/store/migrations/index.js';
import { VERSION } from '../../src/version.js';
import { runCli, tempDir } from '../support/cli.js';
import { getFreePort } from '../testbed/ports.js';
import { freshPostgresDatabase } from '../support/postgres.js';

const names = Object.keys(migrations).sort();

describe('mailgate migrate', () => {
  it('applies every migration to a new SQLite database, then says there is nothing to do', async () => {
    const cwd = tempDir();
    const first = await runCli(['migrate'], { cwd });
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`applied ${names.length} migrations, the schema is now at ${names.at(-1)}`);
    expect(first.stdout).toContain(`  ${names[0]}\n`);
    const again = await runCli(['migrate', '--json'], { cwd });
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ applied: [], current: names.at(-1), database: expect.stringMatching(/^sqlite:.*mailgate\.db$/) });
  });

  it('migrates a PostgreSQL database, showing its URL without the password', async () => {
    const url = await freshPostgresDatabase();
    const password = decodeURIComponent(new URL(url).password);
    const result = await runCli(['migrate', '--json'], { cwd: tempDir(), env: { MAILGATE_DATABASE_URL: url } });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as { database: string; applied: string[] };
    expect(report.applied).toEqual(names);
    expect(report.database).toContain(':***@127.0.0.1');
    expect(result.stdout).not.toContain(password);
  });

  it('serve refuses a PostgreSQL database a newer Mailgate migrated: exit 2, one line naming both versions and the fix', async () => {
    const url = await freshPostgresDatabase();
    const cwd = tempDir();
    expect((await runCli(['migrate'], { cwd, env: { MAILGATE_DATABASE_URL: url } })).code).toBe(0);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(`insert into kysely_migration (name, timestamp) values ('0099_from_the_future', now()::text)`);
      await client.query(`update meta set value = '7.0.0' where name = 'schema_mailgate_version'`);
    } finally {
      await client.end();
    }
    const serve = await runCli(['serve'], { cwd, env: { MAILGATE_DATABASE_URL: url, MAILGATE_LISTEN: `127.0.0.1:${await getFreePort()}` } });
    expect(serve.code).toBe(2);
    const lines = serve.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toBe(
      `mailgate: the database was migrated by Mailgate 7.0.0 (schema 0099_from_the_future); this is Mailgate ${VERSION} (schema ${names.at(-1)}), which does not know 0099_from_the_future: upgrade Mailgate to 7.0.0 or later, or point MAILGATE_DATABASE_URL at another database`,
    );
  });

  it('names a PostgreSQL server that does not answer, and exits 2', async () => {
    const result = await runCli(['migrate'], { cwd: tempDir(), env: { MAILGATE_DATABASE_URL: 'postgres://mailgate:hunter2-secret@127.0.0.1:1/mailgate' } });
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('mailgate: cannot connect to PostgreSQL at postgres://mailgate:***@127.0.0.1:1/mailgate: nothing accepts connections at that host and port: start PostgreSQL, or correct the host and port\n');
  });
});
