// Proves the credential commands as an operator runs them: add (secret from stdin or env, never an argument), authorize with a temporary callback listener, token access-token.
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { TEST_TENANT_ID, type TestClient } from '../testbed/authServer.js';
import { signInAtProvider } from '../testbed/providerLogin.js';
import { useTestbed } from '../testbed/useTestbed.js';
import { runCli, spawnCli, startServe, tempDir } from '../support/cli.js';
import { getFreePort } from '../testbed/ports.js';

const bed = useTestbed({ mail: false });
let cwd: string;
let env: Record<string, string>;
let client: TestClient;
let url: string;

beforeAll(async () => {
  cwd = tempDir();
  const port = await getFreePort();
  url = `http://127.0.0.1:${port}`;
  env = { MAILGATE_LISTEN: `127.0.0.1:${port}` };
  client = bed.auth.addClient({ clientId: 'mailgate-cli', clientSecret: 'cli-client-secret', redirectUris: [`${url}/oauth/callback`] });
});

const addArgs = (name: string) => [
  'credential', 'add', name,
  '--provider', 'microsoft',
  '--tenant', TEST_TENANT_ID,
  '--authority', bed.auth.microsoft.authority,
  '--issuer', bed.auth.issuer,
  '--client-id', client.clientId,
  '--email', bed.auth.users.alice.email,
  '--protocols', 'smtp,imap',
];

describe('mailgate credential', () => {
  it('adds a credential with the secret on standard input, shows the redirect URI, and never prints the secret', async () => {
    const added = await runCli(addArgs('m365'), { cwd, env, input: `${client.clientSecret}\n` });
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    expect(added.stdout).toContain('added credential m365 (microsoft, authorization_code)');
    expect(added.stdout).toContain(`redirect URI (paste into the provider's app registration, platform "Web"): ${url}/oauth/callback`);
    const audit = new SQLite(path.join(cwd, 'data', 'mailgate.db'), { readonly: true });
    const entry = audit.prepare("select actor, action, target, details from audit_log where action = 'credential.add'").get() as { actor: string; target: string; details: string };
    audit.close();
    expect(entry).toMatchObject({ actor: expect.stringMatching(/^cli:/), target: 'm365' });
    expect(JSON.parse(entry.details).fields).toContain('clientSecret');
    expect(entry.details).not.toContain(client.clientSecret);
    const shown = await runCli(['credential', 'show', 'm365', '--json'], { cwd, env });
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({ name: 'm365', status: 'pending', hasClientSecret: true, redirectUri: `${url}/oauth/callback` });
    expect(shown.stdout + added.stdout).not.toContain(client.clientSecret);
  });

  it('connects through `credential authorize` with its own temporary callback listener, then prints an access token', async () => {
    const authorize = spawnCli(['credential', 'authorize', 'm365'], { cwd, env });
    const [authorizationUrl] = await authorize.waitFor(/^http:\/\/127\.0\.0\.1:\d+\/\S+\/oauth2\/v2\.0\/authorize\?\S+$/m);
    await authorize.waitFor(/Waiting for the provider to redirect/);
    const back = await signInAtProvider(authorizationUrl, { login: bed.auth.users.alice.email, password: bed.auth.users.alice.password });
    const page = await fetch(back);
    expect(page.status).toBe(200);
    const result = await authorize.done();
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`connected m365 as ${bed.auth.users.alice.email}`);

    const token = await runCli(['token', 'access-token', 'm365'], { cwd, env });
    expect(token.code).toBe(0);
    const accessToken = token.stdout.trim();
    expect(accessToken).toMatch(/^\S{20,}$/);
    const introspection = await fetch(bed.auth.introspection.introspectionUrl, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${bed.auth.introspection.introspectionClientId}:${bed.auth.introspection.introspectionClientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: accessToken }),
    });
    expect(await introspection.json()).toMatchObject({ active: true, email: bed.auth.users.alice.email });

    const list = await runCli(['credential', 'list'], { cwd, env });
    expect(list.stdout).toMatch(/m365\s+microsoft\s+authorization_code\s+alice@example\.test\s+active/);
  });

  it('reads the secret from --client-secret-env, and refreshes on demand', async () => {
    const added = await runCli([...addArgs('m365-env'), '--client-secret-env', 'MG_TEST_SECRET'], { cwd, env: { ...env, MG_TEST_SECRET: client.clientSecret } });
    expect(added.code).toBe(0);
    const refresh = await runCli(['credential', 'refresh', 'm365'], { cwd, env });
    expect(refresh.code).toBe(0);
    expect(refresh.stdout).toMatch(/^refreshed m365: access token expires \d{4}-/);
  });

  it('completes `credential authorize` through a running `mailgate serve`, which receives the callback', async () => {
    const serve = await startServe({ cwd, port: Number(new URL(url).port), env });
    try {
      const authorize = spawnCli(['credential', 'authorize', 'm365-env'], { cwd, env });
      const [authorizationUrl] = await authorize.waitFor(/^http:\/\/127\.0\.0\.1:\d+\/\S+\/oauth2\/v2\.0\/authorize\?\S+$/m);
      await authorize.waitFor(/Waiting for the running Mailgate/);
      const back = await signInAtProvider(authorizationUrl, { login: bed.auth.users.alice.email, password: bed.auth.users.alice.password });
      expect((await fetch(back)).status).toBe(200);
      const result = await authorize.done();
      expect(result.code).toBe(0);
      expect(result.stdout).toContain(`connected m365-env as ${bed.auth.users.alice.email}`);
    } finally {
      expect(await serve.stop()).toBe(0);
    }
  });

  it('names the missing field in one line with exit code 2, and stores nothing', async () => {
    const bad = await runCli(['credential', 'add', 'no-tenant', '--provider', 'microsoft', '--client-id', 'x', '--email', 'a@example.com'], { cwd, env });
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toContain('tenant: required for Microsoft');
    const missing = await runCli(['credential', 'show', 'no-tenant'], { cwd, env });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('no credential named "no-tenant"');
  });

  it('says what to do when a credential has not been connected', async () => {
    expect((await runCli([...addArgs('m365-idle'), '--client-secret-env', 'MG_TEST_SECRET'], { cwd, env: { ...env, MG_TEST_SECRET: client.clientSecret } })).code).toBe(0);
    const token = await runCli(['token', 'access-token', 'm365-idle'], { cwd, env });
    expect(token.code).toBe(1);
    expect(token.stderr).toContain('credential m365-idle is not connected yet');
  });

  it('update replaces a client secret the provider stopped accepting, from an environment variable, and the next refresh works', async () => {
    const appOnly = bed.auth.addClient({ clientId: 'mailgate-cli-app-only', clientSecret: 'first-app-secret-value' });
    const args = ['credential', 'add', 'app-only', '--provider', 'microsoft', '--tenant', TEST_TENANT_ID, '--authority', bed.auth.microsoft.authority, '--issuer', bed.auth.issuer, '--client-id', appOnly.clientId, '--email', bed.auth.users.alice.email, '--grant', 'client_credentials', '--client-secret-env', 'FIRST'];
    expect((await runCli(args, { cwd, env: { ...env, FIRST: 'first-app-secret-value' } })).code).toBe(0);
    expect((await runCli(['credential', 'refresh', 'app-only'], { cwd, env })).code).toBe(0);

    // The secret is rotated at the provider (the old one expired): refreshing is refused until the credential has the new one.
    bed.auth.setClientSecret(appOnly.clientId, 'second-app-secret-value');
    expect((await runCli(['credential', 'refresh', 'app-only'], { cwd, env })).code).not.toBe(0);
    expect(JSON.parse((await runCli(['credential', 'show', 'app-only', '--json'], { cwd, env })).stdout)).toMatchObject({ status: 'client_secret_invalid' });

    const nothing = await runCli(['credential', 'update', 'app-only'], { cwd, env });
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toContain('nothing to change');

    const updated = await runCli(['credential', 'update', 'app-only', '--client-secret-env', 'SECOND', '--client-secret-expires-at', '2028-11-30'], { cwd, env: { ...env, SECOND: 'second-app-secret-value' } });
    expect(updated.stderr).toBe('');
    expect(updated.stdout).toContain('updated credential app-only: clientSecret, clientSecretExpiresAt');
    expect(updated.stdout + updated.stderr).not.toContain('second-app-secret-value');
    const refreshed = await runCli(['credential', 'refresh', 'app-only'], { cwd, env });
    expect(refreshed.code, refreshed.stderr).toBe(0);
    expect(JSON.parse((await runCli(['credential', 'show', 'app-only', '--json'], { cwd, env })).stdout)).toMatchObject({ status: 'active', clientSecretExpiresAt: '2028-11-30T00:00:00.000Z' });
  }, 90_000);
});
