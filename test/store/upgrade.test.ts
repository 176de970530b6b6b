// Proves an upgrade: a database made by an earlier Mailgate (migrations 0001–0014, test/fixtures/upgrade) migrates at start with every definition, secret and queued message intact.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { migrations } from '../../src/store/migrations/index.js';
import { tempDir } from '../support/cli.js';
import { openTestServices, type TestServices } from '../support/services.js';

const FIXTURE = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../fixtures/upgrade');
/** The API key the fixture's maker printed (a test value, like the master key beside it). */
const FIXTURE_API_KEY = 'mgk_vDcQDvTSI8boyWjZWI1FIh2U_1A_e1FGE5JwUE2Bvzs';

let services: TestServices;

beforeAll(async () => {
  const cwd = tempDir();
  fs.mkdirSync(path.join(cwd, 'data'));
  const file = path.join(cwd, 'data', 'mailgate.db');
  fs.copyFileSync(path.join(FIXTURE, 'mailgate-0014.db'), file);
  // SQLite on purpose, whatever database the rest of the suite runs on: the fixture is an SQLite file.
  services = await openTestServices({ cwd, masterKey: fs.readFileSync(path.join(FIXTURE, 'master.key'), 'utf8').trim(), configure: (config) => ({ ...config, database: { kind: 'sqlite', file } }) });
});
afterAll(async () => {
  await services?.close();
});

it('runs every newer migration once on a database made by migrations 0001–0014', async () => {
  const applied = await services.store.db.selectFrom('kysely_migration' as never).select('name' as never).orderBy('name' as never).execute();
  expect((applied as Array<{ name: string }>).map((r) => r.name)).toEqual(Object.keys(migrations).sort());
  expect(Object.keys(migrations).length).toBeGreaterThan(14);
});

it('keeps the credential with its tokens and client secret, still opening with the same master key', async () => {
  const view = await services.credentials.show('alarms');
  expect(view).toMatchObject({ name: 'alarms', status: 'active', email: 'alarms@example.test' });
  const token = await services.tokens.getAccessToken('alarms');
  expect(token.accessToken.reveal()).toBe('fixture-access-token');
  const row = await services.credentialRepo.get('alarms');
  expect(services.credentialRepo.clientAuthOf(row)?.material.reveal()).toBe('fixture-client-secret');
});

it('keeps servers (with the sealed password), the sender route, the watcher and its webhook secret', async () => {
  const legacy = services.serverRepo.resolve((await services.serverRepo.find('legacy'))!);
  expect(legacy.auth).toEqual({ type: 'password', password: 'fixture-smtp-password' });
  expect(await services.senders.show('alerts')).toMatchObject({ primary: 'm365', backups: ['legacy'], from: 'alarms@example.test' });
  const watcher = await services.watcherRepo.get('replies');
  expect((await services.watcherRepo.signingSecrets(watcher)).map((s) => s.reveal())).toEqual(['fixture-webhook-secret']);
});

it('keeps the API key, the relay account password and the queued message', async () => {
  expect(await services.apiKeys.verify(FIXTURE_API_KEY)).toMatchObject({ name: 'ops', scopes: ['send'] });
  expect(await services.apiKeys.verify(`${FIXTURE_API_KEY.slice(0, -1)}x`)).toBeUndefined();
  expect(await services.relayAccounts.login('scanner', 'fixture-relay-password', { client: '127.0.0.1', protocol: 'smtp' })).toMatchObject({ ok: true });
  const queued = await services.store.db.selectFrom('outbox').selectAll().execute();
  expect(queued).toHaveLength(1);
  expect(queued[0]).toMatchObject({ status: 'queued', sender: 'alerts', created_by: 'api:ops' });
  expect(JSON.parse(queued[0]!.message)).toMatchObject({ subject: 'Fixture: door open', text: 'Door 3 has been open for 10 minutes.', to: [{ address: 'ops@example.test' }] });
});
