// Proves `mailgate export` / `import`: an installation moved from SQLite to a real PostgreSQL and back keeps its credentials working without a new sign-in, and a wrong key, a damaged file or a database with data in it is refused with nothing written.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateMasterKey } from '../../src/secrets/keyring.js';
import { addConnected, login, microsoftCredential } from '../support/credentials.js';
import { runCli, tempDir } from '../support/cli.js';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';
import { freshPostgresDatabase } from '../support/postgres.js';
import { useTestbed } from '../testbed/useTestbed.js';

const bed = useTestbed();
let app: MailgateApp | undefined;
let source: { cwd: string; env: Record<string, string> };

/** The access token is active at the provider (RFC 7662 introspection by the test bed's authorization server). */
async function isActive(accessToken: string): Promise<boolean> {
  const { introspectionUrl, introspectionClientId, introspectionClientSecret } = bed.auth.introspection;
  const res = await fetch(introspectionUrl, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${introspectionClientId}:${introspectionClientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: accessToken }),
  });
  return ((await res.json()) as { active: boolean }).active;
}

/** A forced refresh (the stored refresh token must work and rotate), then a token the provider accepts. */
async function refreshesAndServes(where: { cwd: string; env: Record<string, string> }): Promise<void> {
  const refreshed = await runCli(['credential', 'refresh', 'alarms'], where);
  expect(refreshed.code, refreshed.stderr).toBe(0);
  const token = await runCli(['token', 'access-token', 'alarms'], where);
  expect(token.code, token.stderr).toBe(0);
  expect(await isActive(token.stdout.trim())).toBe(true);
}

beforeAll(async () => {
  const prior = process.env.MAILGATE_TEST_DATABASE;
  process.env.MAILGATE_TEST_DATABASE = 'sqlite';
  try {
    app = await startMailgateApp();
  } finally {
    if (prior === undefined) delete process.env.MAILGATE_TEST_DATABASE;
    else process.env.MAILGATE_TEST_DATABASE = prior;
  }
  const client = bed.auth.addClient({ clientId: 'mailgate-transfer', clientSecret: 'transfer-client-secret', redirectUris: [`${app.url}/oauth/callback`] });
  await addConnected(app, microsoftCredential(bed.auth, client, 'alarms'), login(bed.auth.users.alice));
  expect((await app.api('POST', '/api/v1/servers', { name: 'm365-smtp', protocol: 'smtp', host: '127.0.0.1', port: bed.mail.ports.submission, security: 'starttls', tlsCa: bed.mail.caPem, username: bed.auth.users.alice.email, auth: { type: 'oauth2', credential: 'alarms' } })).status).toBe(201);
  expect((await app.api('POST', '/api/v1/senders', { name: 'alerts', primary: 'm365-smtp', from: bed.auth.users.alice.email })).status).toBe(201);
  expect((await app.api('POST', '/api/v1/messages', { sender: 'alerts', to: 'duty@example.test', subject: 'queued before the move', text: 'x' })).status).toBe(202);
  source = { cwd: app.services.cwd, env: { MAILGATE_MASTER_KEY: app.services.masterKey } };
  await app.close();
  app = undefined;
});
afterAll(async () => {
  await app?.close();
});

describe('mailgate export and import', () => {
  it('moves an installation from SQLite to PostgreSQL and back: same credentials, servers, senders and outbox, and the grant keeps working without a new sign-in', async () => {
    const file = path.join(source.cwd, 'mailgate.export');
    const exported = await runCli(['export', file], source);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toContain(`exported the sqlite database to ${file}: 1 credential, 1 server, 1 sender, 0 watchers, 1 outbox message`);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const text = fs.readFileSync(file, 'utf8');
    expect(text).not.toContain('transfer-client-secret'); // sealed, as in the database
    expect(text.split('\n').filter(Boolean).at(-1)).toMatch(/^\{"end":true/);

    const pg = { cwd: tempDir(), env: { ...source.env, MAILGATE_DATABASE_URL: await freshPostgresDatabase() } };
    const imported = await runCli(['import', file, '--json'], pg);
    expect(imported.code, imported.stderr).toBe(0);
    expect(JSON.parse(imported.stdout)).toMatchObject({ database: 'postgres', rows: { credentials: 1, servers: 1, senders: 1, outbox: 1 } });
    const listed = await runCli(['credential', 'list', '--json'], pg);
    expect(JSON.parse(listed.stdout)).toMatchObject([{ name: 'alarms', status: 'active', email: bed.auth.users.alice.email }]);
    await refreshesAndServes(pg);

    // Back to a new SQLite installation, with the refresh token PostgreSQL rotated meanwhile.
    const back = path.join(pg.cwd, 'from-postgres.export');
    expect((await runCli(['export', back], pg)).code).toBe(0);
    const sqlite = { cwd: tempDir(), env: source.env };
    const again = await runCli(['import', back], sqlite);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('into the sqlite database: 1 credential, 1 server, 1 sender, 0 watchers, 1 outbox message');
    await refreshesAndServes(sqlite);
  }, 120_000);

  it('refuses a wrong master key, a cut-short file and a database with data in it, naming the fix, and writes nothing', async () => {
    const file = path.join(source.cwd, 'refusals.export');
    expect((await runCli(['export', file], source)).code).toBe(0);
    expect((await runCli(['export', file], source)).stderr).toContain('exists already: choose another name, or add --force');

    const target = { cwd: tempDir(), env: { ...source.env, MAILGATE_DATABASE_URL: await freshPostgresDatabase() } };
    const wrongKey = await runCli(['import', file], { ...target, env: { ...target.env, MAILGATE_MASTER_KEY: generateMasterKey() } });
    expect(wrongKey.code).toBe(2);
    expect(wrongKey.stderr).toMatch(/^mailgate: wrong master key: the export's secrets are sealed with key k[0-9a-f]+, but MAILGATE_MASTER_KEY holds k[0-9a-f]+ \(use the key of the installation that exported it\)\n$/);

    const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
    const cut = path.join(source.cwd, 'cut.export');
    fs.writeFileSync(cut, `${lines.slice(0, -3).join('\n')}\n`);
    const damaged = await runCli(['import', cut], target);
    expect(damaged.code).toBe(2);
    expect(damaged.stderr).toContain('cut short (export again)');
    fs.writeFileSync(path.join(source.cwd, 'notes.txt'), 'not an export\n');
    const notAnExport = await runCli(['import', path.join(source.cwd, 'notes.txt')], target);
    expect(notAnExport.stderr).toContain('not a Mailgate export');

    // Nothing of those reached the database: it is still empty, so a plain import works…
    const ok = await runCli(['import', file], target);
    expect(ok.code, ok.stderr).toBe(0);
    // …and a second one finds it full.
    const full = await runCli(['import', file], target);
    expect(full.code).toBe(2);
    expect(full.stderr).toMatch(/^mailgate: the database is not empty \(credentials: 1, .*servers: 1, senders: 1, outbox: 1, audit log: \d+\): import into an empty database, or add --force to replace everything in it\n$/);
    const replaced = await runCli(['import', file, '--force'], target);
    expect(replaced.code, replaced.stderr).toBe(0);
    expect(JSON.parse((await runCli(['credential', 'list', '--json'], target)).stdout)).toHaveLength(1);
  }, 120_000);
});
