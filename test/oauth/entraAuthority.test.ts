// Proves Entra ID tenants given by domain or as "organizations" on an authority other than login.microsoftonline.com
// (national clouds, proxies): the tenant's discovery document at that authority decides the issuer, an ID token is
// accepted when its `iss` is `{authority}/{tid}/v2.0` for its own `tid`, and one naming another tenant is refused by
// claim (not retried as a network failure). The peer is oidc-provider shaped as Entra ID, on loopback.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, login } from '../support/credentials.js';
import { startEntraAuthority, type EntraAuthority } from '../support/entraAuthority.js';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';
import { TEST_USERS } from '../testbed/authServer.js';

const TENANT = '3f6c1e2a-5b7d-4e8f-9a0b-1c2d3e4f5a6b';
/** Another tenant: the one a wrong domain's discovery names, or the tid a token from elsewhere carries. */
const OTHER_TENANT = 'b1e2d3c4-0000-4000-8000-00000000beef';
const alice = TEST_USERS.alice;

let peer: EntraAuthority;
let app: MailgateApp;

beforeAll(async () => {
  peer = await startEntraAuthority({ tenantId: TENANT, domains: ['contoso.example'], misnamedDomains: { 'elsewhere.example': OTHER_TENANT } });
  app = await startMailgateApp();
  peer.addClient({ clientId: 'sovereign-app', clientSecret: 'sovereign-secret', redirectUri: `${app.url}/oauth/callback` });
});
afterAll(async () => {
  await app?.close();
  await peer?.stop();
});

const credential = (name: string, tenant: string) => ({
  name,
  provider: 'microsoft',
  tenant,
  authority: peer.authority,
  clientId: 'sovereign-app',
  clientSecret: 'sovereign-secret',
  email: alice.email,
  protocols: ['smtp', 'imap'],
});

async function add(name: string, tenant: string): Promise<void> {
  const created = await app.api('POST', '/api/v1/credentials', credential(name, tenant));
  expect(created.status, created.text).toBe(201);
}

describe('an Entra ID tenant on another authority', () => {
  it('connects with a tenant given as a domain: the ID token iss is {authority}/{tid}/v2.0, read from discovery at that authority', async () => {
    await add('by-domain', 'contoso.example');
    const { status, html } = await connect(app, 'by-domain', login(alice));
    expect(status, html).toBe(200);
    const shown = await app.api('GET', '/api/v1/credentials/by-domain');
    expect(shown.json).toMatchObject({ status: 'active', hasRefreshToken: true, identity: { email: alice.email } });
    // discovery was asked of the credential's authority, never of login.microsoftonline.com
    expect(peer.logs()).toContain('GET /contoso.example/v2.0/.well-known/openid-configuration -> 200');

    // a refresh brings a new ID token (iss and tid checked again) and keeps the credential active
    const refreshed = await app.api('POST', '/api/v1/credentials/by-domain/refresh');
    expect(refreshed.status, refreshed.text).toBe(200);
    expect(refreshed.json.status).toBe('active');
  });

  it('connects with "organizations": the issuer template {tenantid} is filled with the token\'s own tid', async () => {
    await add('multi', 'organizations');
    const { status, html } = await connect(app, 'multi', login(alice));
    expect(status, html).toBe(200);
    expect((await app.api('GET', '/api/v1/credentials/multi')).json.status).toBe('active');
    expect(peer.logs()).toContain('GET /organizations/v2.0/.well-known/openid-configuration -> 200');
    const refreshed = await app.api('POST', '/api/v1/credentials/multi/refresh');
    expect(refreshed.status, refreshed.text).toBe(200);
  });

  it('refuses a sign-in whose ID token iss names another tenant than discovery, saying which claim, what was expected and what came', async () => {
    await add('wrong-tenant', 'elsewhere.example');
    const { status, html } = await connect(app, 'wrong-tenant', login(alice));
    expect(status).toBe(400);
    const text = html.replace(/&quot;|&#34;/g, '"');
    expect(text).toContain('issuer (iss)');
    expect(text).toContain(`"${peer.authority}/${TENANT}/v2.0"`);
    expect(text).toContain(`expected "${peer.authority}/${OTHER_TENANT}/v2.0"`);
    expect(text).toContain('set --tenant');
    const shown = await app.api('GET', '/api/v1/credentials/wrong-tenant');
    // not connected, and not a passing failure either: nothing is retried
    expect(shown.json).toMatchObject({ status: 'pending', hasRefreshToken: false });
    expect(shown.json.lastError).toContain('issuer (iss)');
    expect(shown.json.lastError).not.toMatch(/eyJ[\w-]+\./); // no token in the message
  });

  it('refuses a sign-in whose authorization response names another issuer (RFC 9207 iss parameter) before redeeming its code', async () => {
    await add('wrong-tenant-iss', 'elsewhere.example');
    const tokenRequests = () => peer.logs().split('\n').filter((l) => l.startsWith(`POST /${TENANT}/oauth2/v2.0/token`)).length;
    const before = tokenRequests();
    peer.sendIssParameter(true);
    try {
      const { status, html, back } = await connect(app, 'wrong-tenant-iss', login(alice));
      expect(back.searchParams.get('iss')).toBe(`${peer.authority}/${TENANT}/v2.0`);
      expect(status).toBe(400);
      const text = html.replace(/&quot;|&#34;/g, '"').replace(/&#39;/g, "'");
      expect(text).toContain(`the sign-in response's issuer (iss parameter) is "${peer.authority}/${TENANT}/v2.0", expected "${peer.authority}/${OTHER_TENANT}/v2.0"`);
      expect(text).not.toContain(back.searchParams.get('code')!);
    } finally {
      peer.sendIssParameter(false);
    }
    expect(tokenRequests()).toBe(before); // the code was never redeemed
  });

  it('marks a credential configuration_error, not refresh_failing, when a refreshed ID token names another tenant, and does not ask again', async () => {
    peer.setTokenTenant(alice.email, OTHER_TENANT);
    try {
      const refused = await app.api('POST', '/api/v1/credentials/multi/refresh');
      expect(refused.status).toBe(409);
      expect(refused.json.error.code).toBe('TOKEN_REQUEST_REFUSED');
      const message: string = refused.json.error.message;
      expect(message).toContain(`issuer (iss) is "${peer.authority}/${TENANT}/v2.0", expected "${peer.authority}/${OTHER_TENANT}/v2.0"`);
      expect(message).toContain(`tid, is "${OTHER_TENANT}"`);
      expect(message).not.toMatch(/eyJ[\w-]+\./);
      const shown = await app.api('GET', '/api/v1/credentials/multi');
      expect(shown.json.status).toBe('configuration_error');
      expect(shown.json.statusReason).toContain('issuer (iss)');

      const tokenRequests = () => peer.logs().split('\n').filter((l) => l.startsWith('POST /organizations/oauth2/v2.0/token')).length;
      const before = tokenRequests();
      const again = await app.api('GET', '/api/v1/credentials/multi/access-token');
      expect(again.status).toBe(409);
      expect(again.json.error.code).toBe('TOKEN_REQUEST_REFUSED');
      expect(tokenRequests()).toBe(before);
      expect(app.logs()).not.toMatch(/"kind":"transient"[^\n]*"credential":"multi"|"credential":"multi"[^\n]*"kind":"transient"/);
    } finally {
      peer.setTokenTenant(alice.email, TENANT);
    }
  });

  it('names the missing tid claim when a token cannot be checked against the {tenantid} template; signing in again once it is fixed connects', async () => {
    // The refused refresh above consumed the rotated refresh token at this peer (which, unlike Entra ID, revokes a grant
    // whose refresh token is used twice), so this case starts from its own sign-in.
    await add('multi-no-tid', 'organizations');
    expect((await connect(app, 'multi-no-tid', login(alice))).status).toBe(200);
    peer.setTokenTenant(alice.email, undefined);
    try {
      const refused = await app.api('POST', '/api/v1/credentials/multi-no-tid/refresh');
      expect(refused.status).toBe(409);
      expect(refused.json.error.code).toBe('TOKEN_REQUEST_REFUSED');
      expect(refused.json.error.message).toContain('no tenant ID (tid) claim');
      expect(refused.json.error.message).toContain(`"${peer.authority}/{tenantid}/v2.0"`);
      expect((await app.api('GET', '/api/v1/credentials/multi-no-tid')).json.status).toBe('configuration_error');
    } finally {
      peer.setTokenTenant(alice.email, TENANT);
    }
    const { status, html } = await connect(app, 'multi-no-tid', login(alice));
    expect(status, html).toBe(200);
    expect((await app.api('GET', '/api/v1/credentials/multi-no-tid')).json.status).toBe('active');
  });

  it('refuses to start a sign-in for a tenant the authority does not know (AADSTS90002), pointing at the tenant and the cloud', async () => {
    await add('nowhere', 'nowhere.example');
    const started = await app.api('POST', '/api/v1/credentials/nowhere/authorize');
    expect(started.status).toBe(409);
    expect(started.json.error.code).toBe('TOKEN_REQUEST_REFUSED');
    expect(started.json.error.message).toBe(`Entra ID at ${peer.authority} does not know the tenant "nowhere.example" (AADSTS90002): check --tenant (the Directory (tenant) ID, a verified domain, or "organizations"); a tenant in a national cloud needs --cloud usgov or --cloud china`);
  });

  it('takes cloud in the API: usgov stores the US Government authority and its Exchange Online scopes; an unknown cloud is named', async () => {
    const created = await app.api('POST', '/api/v1/credentials', { name: 'gcc-high', provider: 'microsoft', cloud: 'usgov', tenant: TENANT, clientId: 'gov-app', clientSecret: 'gov-secret', email: alice.email, protocols: ['smtp', 'imap'] });
    expect(created.status, created.text).toBe(201);
    expect(created.json).toMatchObject({
      authority: 'https://login.microsoftonline.us',
      tokenUrl: `https://login.microsoftonline.us/${TENANT}/oauth2/v2.0/token`,
      scopes: expect.arrayContaining(['https://outlook.office365.us/SMTP.Send', 'https://outlook.office365.us/IMAP.AccessAsUser.All']),
    });
    const unknown = await app.api('POST', '/api/v1/credentials', { name: 'mars', provider: 'microsoft', cloud: 'mars', tenant: TENANT, clientId: 'x', clientSecret: 'y', email: alice.email });
    expect(unknown.status).toBe(400);
    expect(unknown.json.error.message).toContain('cloud: unknown cloud "mars": expected global, usgov');
  });
});
