// Proves the token manager against the test bed's provider: rotation persisted, Google-style refresh, every failure class, one refresh for 50 callers, restarts.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestClient } from '../testbed/authServer.js';
import { approveDeviceAtProvider, postTokenRequest } from '../testbed/providerLogin.js';
import { useTestbed } from '../testbed/useTestbed.js';
import { addConnected, googleCredential, login, microsoftCredential } from '../support/credentials.js';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';
import { runDeviceFlow } from '../../src/oauth/deviceFlow.js';

const bed = useTestbed({ mail: false });
let app: MailgateApp;
let client: TestClient;
/** Every secret seen in this file: none may appear in a log line or a non-token API response. */
const secrets = new Set<string>();

beforeAll(async () => {
  app = await startMailgateApp();
  client = bed.auth.addClient({ clientId: 'mailgate-tokens', clientSecret: 'tokens-client-secret', redirectUris: [`${app.url}/oauth/callback`] });
  secrets.add(client.clientSecret);
});
afterAll(async () => app?.close());

const alice = () => login(bed.auth.users.alice);
const repo = () => app.services.credentialRepo;
const storedRefreshToken = async (name: string) => repo().refreshTokenOf(await repo().get(name))?.reveal();
const storedAccessToken = async (name: string) => repo().accessTokenOf(await repo().get(name))?.reveal();
/** Pretends the access token, one of `lifetimeMs` (an hour unless said), is about to expire (or has), without waiting for it. */
const expireIn = (name: string, ms: number, lifetimeMs = 3_600_000) =>
  app.services.store.db
    .updateTable('credentials')
    .set({ expires_at: new Date(Date.now() + ms).toISOString(), last_refreshed_at: new Date(Date.now() + ms - lifetimeMs).toISOString() })
    .where('name', '=', name)
    .execute();
const tokenPosts = () => (bed.auth.logs().match(/POST \S+token \(as \/token\)/g) ?? []).length;

async function remember(name: string) {
  for (const s of [await storedRefreshToken(name), await storedAccessToken(name)]) if (s) secrets.add(s);
}

describe('refresh', () => {
  it('stores a rotated refresh token (Microsoft layout) before handing out the new access token; the old one is dead', async () => {
    await addConnected(app, microsoftCredential(bed.auth, client, 'rotate'), alice());
    await remember('rotate');
    const before = (await storedRefreshToken('rotate'))!;
    const refreshed = await app.api('POST', '/api/v1/credentials/rotate/refresh');
    expect(refreshed.status).toBe(200);
    expect(refreshed.json.status).toBe('active');
    const after = (await storedRefreshToken('rotate'))!;
    await remember('rotate');
    expect(after).not.toBe(before);
    const reused = await postTokenRequest(bed.auth.microsoft.tokenUrl, client, { grant_type: 'refresh_token', refresh_token: before });
    expect(reused.status).toBe(400);
    expect(reused.body).toMatchObject({ error: 'invalid_grant', error_codes: expect.any(Array) });
  });

  it('keeps the stored refresh token when the response carries none (Google layout), and refreshes again with it', async () => {
    await addConnected(app, googleCredential(bed.auth, client, 'google'), alice());
    await remember('google');
    const before = await storedRefreshToken('google');
    const firstAccess = await storedAccessToken('google');
    expect((await app.api('POST', '/api/v1/credentials/google/refresh')).status).toBe(200);
    expect(await storedRefreshToken('google')).toBe(before);
    expect(await storedAccessToken('google')).not.toBe(firstAccess);
    expect((await app.api('POST', '/api/v1/credentials/google/refresh')).status).toBe(200);
    await remember('google');
  });

  it('makes 50 concurrent callers of an expired token share exactly one refresh', async () => {
    await addConnected(app, microsoftCredential(bed.auth, client, 'storm'), alice());
    await expireIn('storm', -1000);
    const postsBefore = tokenPosts();
    const countBefore = app.services.tokens.refreshCount;
    const tokens = await Promise.all(Array.from({ length: 50 }, () => app.services.tokens.getAccessToken('storm')));
    expect(new Set(tokens.map((t) => t.accessToken.reveal())).size).toBe(1);
    expect(app.services.tokens.refreshCount - countBefore).toBe(1);
    expect(tokenPosts() - postsBefore).toBe(1);
    expect(Date.parse(tokens[0]!.expiresAt!)).toBeGreaterThan(Date.now());
    await remember('storm');
  });

  it('reuses a token shorter-lived than the refresh margin for half its lifetime instead of refreshing on every request', async () => {
    // The test bed's tokens live 60 s, the margin is 5 minutes: without the lifetime rule every request refreshed.
    await addConnected(app, microsoftCredential(bed.auth, client, 'short'), alice());
    const countBefore = app.services.tokens.refreshCount;
    const first = await app.services.tokens.getAccessToken('short');
    expect(app.services.tokens.refreshCount - countBefore).toBe(0);
    // 40 s of its 60 s gone: inside half its lifetime of expiry, so due (past the one second a token stays in memory).
    await expireIn('short', 20_000, 60_000);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const second = await app.services.tokens.getAccessToken('short');
    expect(app.services.tokens.refreshCount - countBefore).toBe(1);
    expect(second.accessToken.reveal()).not.toBe(first.accessToken.reveal());
    await remember('short');
  });

  it('turns a revoked grant into needs_reauthorization with the reason and the fixing link, recorded as an event', async () => {
    await addConnected(app, microsoftCredential(bed.auth, client, 'revoked'), alice());
    expect(bed.auth.revokeGrants(bed.auth.users.alice.email, { clientId: client.clientId })).toBeGreaterThan(0);
    const refused = await app.api('POST', '/api/v1/credentials/revoked/refresh');
    expect(refused.status).toBe(409);
    expect(refused.json.error.code).toBe('CREDENTIAL_NEEDS_REAUTHORIZATION');
    expect(refused.json.error.message).toContain(`${app.url}/credentials/revoked/connect`);
    const shown = await app.api('GET', '/api/v1/credentials/revoked');
    expect(shown.json.status).toBe('needs_reauthorization');
    expect(shown.json.statusReason).toMatch(/sign in again/);
    expect(shown.json.events.at(-1)).toMatchObject({ from: 'active', to: 'needs_reauthorization' });
    const token = await app.api('GET', '/api/v1/credentials/revoked/access-token');
    expect(token.status).toBe(409);
    // Other credentials of the same user were revoked too; reconnect the ones later tests use.
  });

  it('keeps serving the current token while the provider is down (refresh_failing), then recovers', async () => {
    await addConnected(app, microsoftCredential(bed.auth, client, 'outage'), alice());
    const current = await storedAccessToken('outage');
    await expireIn('outage', 60_000); // inside the 5-minute margin, not yet expired
    await bed.auth.suspend();
    try {
      const served = await app.api('GET', '/api/v1/credentials/outage/access-token');
      expect(served.status).toBe(200);
      expect(served.json.accessToken).toBe(current);
      const during = await app.api('GET', '/api/v1/credentials/outage');
      expect(during.json.status).toBe('refresh_failing');
      expect(during.json.lastError).toMatch(/cannot reach the token endpoint \(ECONNREFUSED\)/);
      const row = await repo().get('outage');
      expect(row.failure_count).toBe(1);
      expect(Date.parse(row.next_attempt_at!)).toBeGreaterThan(Date.now());
      await expireIn('outage', -1000);
      const expired = await app.api('GET', '/api/v1/credentials/outage/access-token');
      expect(expired.status).toBe(502);
      expect(expired.json.error.code).toBe('TOKEN_REFRESH_FAILED');
    } finally {
      await bed.auth.resume();
    }
    const recovered = await app.api('POST', '/api/v1/credentials/outage/refresh');
    expect(recovered.status).toBe(200);
    expect((await repo().get('outage')).status).toBe('active');
    expect((await repo().get('outage')).failure_count).toBe(0);
    await remember('outage');
  });

  it('says client_secret_invalid when the secret was rotated at the provider (AADSTS7000215), and recovers when the new one is pasted', async () => {
    const own = bed.auth.addClient({ clientId: 'mailgate-rotating-secret', clientSecret: 'first-secret-value', redirectUris: [`${app.url}/oauth/callback`] });
    secrets.add(own.clientSecret);
    await addConnected(app, microsoftCredential(bed.auth, own, 'secret'), alice());
    bed.auth.setClientSecret(own.clientId, 'second-secret-value');
    secrets.add('second-secret-value');
    const refused = await app.api('POST', '/api/v1/credentials/secret/refresh');
    expect(refused.status).toBe(409);
    expect(refused.json.error.code).toBe('CREDENTIAL_CLIENT_SECRET_INVALID');
    const shown = await app.api('GET', '/api/v1/credentials/secret');
    expect(shown.json.status).toBe('client_secret_invalid');
    expect(shown.json.statusReason).toContain('AADSTS7000215');
    expect(shown.json.statusReason).toContain('create a new secret');

    const patched = await app.api('PATCH', '/api/v1/credentials/secret', { clientSecret: 'second-secret-value' });
    expect(patched.status).toBe(200);
    expect(patched.text).not.toContain('second-secret-value');
    expect((await app.api('POST', '/api/v1/credentials/secret/refresh')).status).toBe(200);
    await remember('secret');
  });

  it('refreshes credentials ahead of expiry from the scheduler, and leaves fresh ones alone (a short-lived token until half its lifetime)', async () => {
    await addConnected(app, microsoftCredential(bed.auth, client, 'scheduled'), alice());
    await addConnected(app, microsoftCredential(bed.auth, client, 'fresh'), alice());
    // The test bed's own 60 s tokens: inside the 10-minute look-ahead from the start, due only in their last 30 s.
    await addConnected(app, microsoftCredential(bed.auth, client, 'short-young'), alice());
    await addConnected(app, microsoftCredential(bed.auth, client, 'short-old'), alice());
    await expireIn('scheduled', 2 * 60_000);
    await expireIn('fresh', 50 * 60_000);
    await expireIn('short-old', 20_000, 60_000); // 40 s of its 60 s gone
    const before = new Map<string, string | undefined>();
    for (const name of ['scheduled', 'fresh', 'short-young', 'short-old']) before.set(name, await storedAccessToken(name));
    const { RefreshScheduler } = await import('../../src/tokens/refreshScheduler.js');
    const scheduler = new RefreshScheduler(repo(), app.services.tokens, app.services.logger, { intervalMs: 60_000, aheadMs: 10 * 60_000, keepAliveMs: 7 * 86_400_000 });
    await scheduler.runOnce();
    expect(await storedAccessToken('scheduled')).not.toBe(before.get('scheduled'));
    expect(await storedAccessToken('fresh')).toBe(before.get('fresh'));
    expect(await storedAccessToken('short-young')).toBe(before.get('short-young'));
    expect(await storedAccessToken('short-old')).not.toBe(before.get('short-old'));
    for (const name of ['scheduled', 'short-young', 'short-old']) await remember(name);
  });
});

describe('other grants', () => {
  it('issues app-only tokens with client credentials and the .default scope', async () => {
    const created = await app.api('POST', '/api/v1/credentials', { ...microsoftCredential(bed.auth, client, 'app-only'), grant: 'client_credentials' });
    expect(created.status).toBe(201);
    expect(created.json.scopes).toEqual(['https://outlook.office365.com/.default']);
    const token = await app.api('GET', '/api/v1/credentials/app-only/access-token');
    expect(token.status).toBe(200);
    expect(token.json).toMatchObject({ accessToken: expect.any(String), tokenType: expect.stringMatching(/^bearer$/i) });
    secrets.add(token.json.accessToken);
    expect((await app.api('GET', '/api/v1/credentials/app-only')).json.status).toBe('active');
  });

  it('connects with the device code flow: shows a code, polls, and checks who signed in', async () => {
    const created = await app.api('POST', '/api/v1/credentials', { ...microsoftCredential(bed.auth, client, 'device'), grant: 'device_code' });
    expect(created.status).toBe(201);
    const outcome = await runDeviceFlow(repo(), app.services.logger, 'device', (prompt) => {
      expect(prompt.userCode).toMatch(/\S+/);
      void approveDeviceAtProvider(prompt.verificationUriComplete!, alice());
    });
    expect(outcome).toMatchObject({ ok: true, signedInAs: bed.auth.users.alice.email });
    expect((await app.api('GET', '/api/v1/credentials/device')).json).toMatchObject({ status: 'active', hasRefreshToken: true });
    await remember('device');
  });
});

describe('app-only credentials with keys instead of secrets', () => {
  it('gets tokens for a Google service account with domain-wide delegation (signed JWT, sub = the mailbox), a new one each time', async () => {
    const account = await bed.auth.addServiceAccount();
    const created = await app.api('POST', '/api/v1/credentials', {
      name: 'workspace',
      provider: 'google',
      tokenUrl: bed.auth.google.tokenUrl,
      email: bed.auth.users.alice.email,
      serviceAccountKey: account.keyJson,
    });
    expect(created.status, created.text).toBe(201);
    expect(created.json).toMatchObject({ grant: 'client_credentials', clientAuth: 'service_account', clientId: account.clientId, scopes: ['https://mail.google.com/'] });
    expect(created.text).not.toContain('PRIVATE KEY');
    const token = await app.api('GET', '/api/v1/credentials/workspace/access-token');
    expect(token.status, token.text).toBe(200);
    secrets.add(token.json.accessToken);
    const introspected = await fetch(bed.auth.introspection.introspectionUrl, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${bed.auth.introspection.introspectionClientId}:${bed.auth.introspection.introspectionClientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: token.json.accessToken }),
    });
    expect(await introspected.json()).toMatchObject({ active: true, email: bed.auth.users.alice.email });
    expect((await app.api('GET', '/api/v1/credentials/workspace')).json).toMatchObject({ status: 'active', hasRefreshToken: false });

    const unknown = await app.api('POST', '/api/v1/credentials', { name: 'workspace-bad', provider: 'google', tokenUrl: bed.auth.google.tokenUrl, email: 'nobody@example.test', serviceAccountKey: account.keyJson });
    expect(unknown.status).toBe(201);
    const refused = await app.api('GET', '/api/v1/credentials/workspace-bad/access-token');
    expect(refused.status).toBe(409);
    expect(refused.json.error.code).toBe('CREDENTIAL_CLIENT_SECRET_INVALID');
    expect(refused.json.error.message).toContain('domain-wide delegation');
  });

  it('gets app-only tokens with an Entra ID certificate (private_key_jwt with x5t) and names AADSTS700027 for a wrong one', async () => {
    const cert = await bed.auth.addCertificateClient({ clientId: 'mailgate-certificate' });
    const input = { ...microsoftCredential(bed.auth, client, 'cert'), clientId: cert.clientId, clientSecret: undefined, clientCertificate: cert.pem, grant: 'client_credentials' };
    const created = await app.api('POST', '/api/v1/credentials', input);
    expect(created.status, created.text).toBe(201);
    expect(created.json.clientAuth).toBe('certificate');
    const token = await app.api('GET', '/api/v1/credentials/cert/access-token');
    expect(token.status, token.text).toBe(200);
    secrets.add(token.json.accessToken);

    const other = await bed.auth.addCertificateClient({ clientId: 'mailgate-other-certificate' });
    const wrong = await app.api('POST', '/api/v1/credentials', { ...input, name: 'cert-wrong', clientCertificate: other.pem });
    expect(wrong.status).toBe(201);
    const refused = await app.api('GET', '/api/v1/credentials/cert-wrong/access-token');
    expect(refused.status).toBe(409);
    expect(refused.json.error.message).toContain('AADSTS700027');

    const garbage = await app.api('POST', '/api/v1/credentials', { ...input, name: 'cert-garbage', clientCertificate: 'not a pem' });
    expect(garbage.status).toBe(400);
    expect(garbage.json.error.message).toMatch(/^clientCertificate: /);
  });
});

describe('durability and secrecy', () => {
  it('loses nothing across a restart between refreshes', async () => {
    await addConnected(app, microsoftCredential(bed.auth, client, 'restart'), alice());
    const refreshToken = await storedRefreshToken('restart');
    await app.close();
    app = await startMailgateApp({ reopen: app });
    expect(await storedRefreshToken('restart')).toBe(refreshToken);
    expect((await app.api('POST', '/api/v1/credentials/restart/refresh')).status).toBe(200);
    expect((await app.api('GET', '/api/v1/credentials/restart')).json.status).toBe('active');
    await remember('restart');
  });

  it('hands a token only to API keys scoped for its credential', async () => {
    const scoped = (await app.services.apiKeys.create('reader', ['token:restart'])).key.reveal();
    expect((await app.api('GET', '/api/v1/credentials/restart/access-token', undefined, scoped)).status).toBe(200);
    const other = await app.api('GET', '/api/v1/credentials/google/access-token', undefined, scoped);
    expect(other.status).toBe(403);
    expect(other.json.error.code).toBe('FORBIDDEN');
    expect((await app.api('GET', '/api/v1/credentials', undefined, scoped)).status).toBe(403);
    expect((await app.api('GET', '/api/v1/credentials', undefined, 'mgk_not-a-real-key')).status).toBe(401);
  });

  it('never writes a secret to the log, an API read, or the database file in plain text', async () => {
    expect(secrets.size).toBeGreaterThan(10);
    const logs = app.logs();
    expect(logs.length).toBeGreaterThan(1000);
    const reads = [(await app.api('GET', '/api/v1/credentials')).text];
    for (const name of ['rotate', 'google', 'storm', 'revoked', 'outage', 'secret', 'restart', 'device']) reads.push((await app.api('GET', `/api/v1/credentials/${name}`)).text);
    // What the database holds: SQLite's files as bytes; on PostgreSQL (MAILGATE_TEST_DATABASE=postgres) every row of
    // the tables that carry tokens and secrets, as text.
    let files: string[];
    if (app.services.store.kind === 'sqlite') {
      const dataDir = path.join(app.services.cwd, 'data');
      files = fs.readdirSync(dataDir).filter((f) => f.startsWith('mailgate.db')).map((f) => fs.readFileSync(path.join(dataDir, f)).toString('latin1'));
    } else {
      const db = app.services.store.db;
      files = [JSON.stringify(await db.selectFrom('credentials').selectAll().execute()), JSON.stringify(await db.selectFrom('credential_events').selectAll().execute()), JSON.stringify(await db.selectFrom('meta').selectAll().execute())];
    }
    expect(files.length).toBeGreaterThan(0);
    expect(files.join('')).toContain('rotate'); // the rows (or file) really are there
    for (const secret of secrets) {
      expect(logs).not.toContain(secret);
      for (const read of reads) expect(read).not.toContain(secret);
      for (const file of files) expect(file).not.toContain(secret);
    }
  });
});
