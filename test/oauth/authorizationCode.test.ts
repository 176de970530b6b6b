// Proves the authorization code flow end to end against the test bed's provider (its own login page): connect, wrong account, state and PKCE tampering.
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_TENANT_ID, type TestClient } from '../testbed/authServer.js';
import { connect, googleCredential, login, microsoftCredential } from '../support/credentials.js';
import { signInAtProvider } from '../testbed/providerLogin.js';
import { useTestbed } from '../testbed/useTestbed.js';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';

const bed = useTestbed({ mail: false });
let app: MailgateApp;
let client: TestClient;

const alice = () => login(bed.auth.users.alice);
const bob = () => login(bed.auth.users.bob);

beforeAll(async () => {
  app = await startMailgateApp();
  client = bed.auth.addClient({ clientId: 'mailgate-code-flow', clientSecret: 'code-flow-secret', redirectUris: [`${app.url}/oauth/callback`] });
});
afterAll(async () => app?.close());

const microsoft = (name: string) => microsoftCredential(bed.auth, client, name);
const google = (name: string) => googleCredential(bed.auth, client, name);

describe('authorization code flow (Microsoft layout)', () => {
  it('shows the redirect URI, sends PKCE S256, login_hint and select_account, and connects the right account', async () => {
    const created = await app.api('POST', '/api/v1/credentials', microsoft('ms-alice'));
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ name: 'ms-alice', status: 'pending', redirectUri: `${app.url}/oauth/callback`, hasClientSecret: true });
    expect(created.text).not.toContain(client.clientSecret);

    const { status, html, authorizationUrl } = await connect(app, 'ms-alice', alice());
    expect(authorizationUrl.pathname).toBe(`/${TEST_TENANT_ID}/oauth2/v2.0/authorize`);
    expect(authorizationUrl.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorizationUrl.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(authorizationUrl.searchParams.get('login_hint')).toBe(bed.auth.users.alice.email);
    expect(authorizationUrl.searchParams.get('prompt')).toBe('select_account');
    expect(authorizationUrl.searchParams.get('scope')).toContain('offline_access');
    expect(status).toBe(200);
    expect(html).toContain(`Signed in as <strong>${bed.auth.users.alice.email}</strong>`);

    const shown = await app.api('GET', '/api/v1/credentials/ms-alice');
    expect(shown.json).toMatchObject({ status: 'active', hasRefreshToken: true, identity: { email: bed.auth.users.alice.email } });
    expect(Date.parse(shown.json.expiresAt)).toBeGreaterThan(Date.now());
    expect(shown.json.events.map((e: { to: string }) => e.to)).toEqual(['pending', 'active']);
    expect(shown.text).not.toMatch(/"(accessToken|refreshToken|clientSecret)"/);
  });

  it('refuses the tokens when another account signs in, and says which one and what to do', async () => {
    await app.api('POST', '/api/v1/credentials', microsoft('ms-wrong'));
    const { status, html } = await connect(app, 'ms-wrong', bob());
    expect(status).toBe(403);
    expect(html).toContain('Wrong account');
    expect(html).toContain(bed.auth.users.bob.email);
    expect(html).toContain(bed.auth.users.alice.email);
    expect(html).toContain('private (incognito) window');
    const shown = await app.api('GET', '/api/v1/credentials/ms-wrong');
    expect(shown.json).toMatchObject({ status: 'pending', hasRefreshToken: false, lastError: expect.stringContaining('wrong account') });
  });

  it('accepts a state once only, and refuses an altered state without exchanging the code', async () => {
    await app.api('POST', '/api/v1/credentials', microsoft('ms-state'));
    const started = await app.api('POST', '/api/v1/credentials/ms-state/authorize');
    const back = await signInAtProvider(started.json.authorizationUrl, alice());
    const tampered = new URL(back);
    tampered.searchParams.set('state', `${back.searchParams.get('state')}x`);
    const refused = await fetch(tampered);
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain('not valid any more');
    expect((await app.api('GET', '/api/v1/credentials/ms-state')).json.status).toBe('pending');

    expect((await fetch(back)).status).toBe(200);
    const replay = await fetch(back);
    expect(replay.status).toBe(400);
    expect(await replay.text()).toContain('not valid any more');
  });

  it('refuses a code that was issued for another PKCE challenge (a stolen code with a valid state)', async () => {
    await app.api('POST', '/api/v1/credentials', microsoft('ms-pkce'));
    const started = await app.api('POST', '/api/v1/credentials/ms-pkce/authorize');
    const ours = new URL(started.json.authorizationUrl);
    // An attacker's own authorization request: same client, their verifier.
    const attacker = new URL(ours);
    attacker.searchParams.set('code_challenge', createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url'));
    attacker.searchParams.set('state', 'attacker-state');
    const stolen = await signInAtProvider(attacker, alice());
    const injected = new URL(`${app.url}/oauth/callback`);
    injected.searchParams.set('code', stolen.searchParams.get('code')!);
    injected.searchParams.set('state', ours.searchParams.get('state')!);
    if (stolen.searchParams.get('iss')) injected.searchParams.set('iss', stolen.searchParams.get('iss')!);
    const page = await fetch(injected);
    expect(page.status).toBe(400);
    expect(await page.text()).toContain('The provider refused to issue tokens');
    expect((await app.api('GET', '/api/v1/credentials/ms-pkce')).json).toMatchObject({ status: 'pending', hasRefreshToken: false });
  });

  it('shows a provider error on the callback with its meaning, not a stack trace', async () => {
    await app.api('POST', '/api/v1/credentials', microsoft('ms-denied'));
    const started = await app.api('POST', '/api/v1/credentials/ms-denied/authorize');
    const state = new URL(started.json.authorizationUrl).searchParams.get('state')!;
    const page = await fetch(`${app.url}/oauth/callback?error=access_denied&error_description=AADSTS65004%3A+User+declined&state=${state}`);
    const html = await page.text();
    expect(page.status).toBe(400);
    expect(html).toContain('Sign-in failed: access_denied');
    expect(html).toContain('an administrator must grant consent');
    expect(html).toContain('AADSTS65004');
    expect(html).not.toMatch(/at .*\.js:\d+/);
  });
});

describe('authorization code flow (Google layout)', () => {
  it('sends access_type=offline and prompt=consent, and refuses and revokes a wrong account\'s grant', async () => {
    await app.api('POST', '/api/v1/credentials', google('google-alice'));
    const ok = await connect(app, 'google-alice', alice());
    expect(ok.authorizationUrl.pathname).toBe('/o/oauth2/v2/auth');
    expect(ok.authorizationUrl.searchParams.get('access_type')).toBe('offline');
    expect(ok.authorizationUrl.searchParams.get('prompt')).toBe('consent');
    expect(ok.status).toBe(200);
    expect((await app.api('GET', '/api/v1/credentials/google-alice')).json).toMatchObject({ status: 'active', hasRefreshToken: true });

    await app.api('POST', '/api/v1/credentials', google('google-wrong'));
    const wrong = await connect(app, 'google-wrong', bob());
    expect(wrong.status).toBe(403);
    expect(bed.auth.logs()).toMatch(/POST \/google\/revoke -> 200/);
  });
});

describe('audit log', () => {
  it('records who changed what through the API and each sign-in, with field names but never values', async () => {
    const entries = (await app.api('GET', '/api/v1/audit?limit=500')).json.entries as { actor: string; action: string; target: string; details: { fields?: string[]; ok?: boolean } }[];
    expect(entries).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ actor: 'apikey:test-admin', action: 'POST /api/v1/credentials', target: 'ms-alice', details: expect.objectContaining({ fields: expect.arrayContaining(['clientId', 'clientSecret', 'email']) }) }),
        expect.objectContaining({ actor: 'apikey:test-admin', action: 'POST /api/v1/credentials/:name/authorize', target: 'ms-alice' }),
        expect.objectContaining({ actor: `browser:${bed.auth.users.alice.email}`, action: 'oauth.callback', target: 'ms-alice', details: { ok: true } }),
        expect.objectContaining({ action: 'oauth.callback', target: 'ms-wrong', details: { ok: false, code: 'OAUTH_WRONG_ACCOUNT' } }),
      ]),
    );
    expect(JSON.stringify(entries)).not.toContain(client.clientSecret);
  });
});

