// Proves that a token request the provider refuses as such (invalid_scope, invalid_request such as AADSTS900144) becomes
// configuration_error, not needs_reauthorization: the message says what to change, an alert is raised, callers are not
// sent to sign in, and an explicit refresh after the fix brings the credential back. The provider is a small token
// endpoint on 127.0.0.1 answering as Entra ID does.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';

let app: MailgateApp;
let endpoint: http.Server;
let base: string;
const hits = new Map<string, number>();
/** Whether the app registration has been fixed: the endpoint then issues tokens. */
let fixed = false;

const REFUSALS: Record<string, object> = {
  '/scope/token': { error: 'invalid_scope', error_description: "AADSTS70011: The provided value for the input parameter 'scope' is not valid.", error_codes: [70011] },
  '/missing/token': { error: 'invalid_request', error_description: "AADSTS900144: The request body must contain the following parameter: 'scope'.", error_codes: [900144] },
};

beforeAll(async () => {
  endpoint = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      hits.set(path, (hits.get(path) ?? 0) + 1);
      const refusal = REFUSALS[path];
      if (refusal && !fixed) res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify(refusal));
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: `at-${path}-${Date.now()}`, token_type: 'Bearer', expires_in: 3600 }));
    });
  });
  await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}`;
  app = await startMailgateApp();
  for (const name of ['scope', 'missing']) {
    const created = await app.api('POST', '/api/v1/credentials', { name, provider: 'generic', grant: 'client_credentials', tokenUrl: `${base}/${name}/token`, clientId: 'misconfigured-app', clientSecret: 'app-secret', email: 'ops@example.com', scopes: ['mail'] });
    expect(created.status, created.text).toBe(201);
  }
});
afterAll(async () => {
  await app?.close();
  endpoint?.closeAllConnections();
  await new Promise<void>((resolve) => endpoint.close(() => resolve()));
});

describe('a token request the provider refuses as such', () => {
  it('marks the credential configuration_error with what to change, not "sign in again"', async () => {
    const first = await app.api('GET', '/api/v1/credentials/scope/access-token');
    expect(first.status).toBe(409);
    expect(first.json.error.code).toBe('TOKEN_REQUEST_REFUSED');
    expect(first.json.error.message).toContain('API permissions of the app registration');
    expect(first.json.error.message).toContain('mailgate credential refresh scope');
    expect(first.json.error.message).not.toMatch(/sign in again|\/connect/);
    const shown = await app.api('GET', '/api/v1/credentials/scope');
    expect(shown.json.status).toBe('configuration_error');

    const missing = await app.api('GET', '/api/v1/credentials/missing/access-token');
    expect(missing.json.error.message).toContain('AADSTS900144');
    expect(missing.json.error.message).toContain("check the credential's scopes");
    expect((await app.api('GET', '/api/v1/credentials/missing')).json.status).toBe('configuration_error');
  });

  it('answers callers at once without asking the provider again, and raises a configuration_error alert', async () => {
    const before = hits.get('/scope/token');
    const again = await app.api('GET', '/api/v1/credentials/scope/access-token');
    expect(again.status).toBe(409);
    expect(again.json.error.code).toBe('TOKEN_REQUEST_REFUSED');
    expect(again.json.error.message).toContain('signing in again will not change that');
    expect(hits.get('/scope/token')).toBe(before);

    await app.services.alerts.evaluate();
    const active = await app.api('GET', '/api/v1/alerts?status=active');
    const alert = (active.json.alerts as { kind: string; subject: string; message: string; link: string }[]).find((a) => a.subject === 'scope');
    expect(alert).toMatchObject({ kind: 'configuration_error', link: `${app.url}/credentials/scope` });
    expect(alert!.message).toContain('Signing in again will not fix this');
    expect(alert!.message).toContain('mailgate credential refresh scope');
  });

  it('comes back with an explicit refresh once the app registration is fixed, and the alert resolves', async () => {
    fixed = true;
    const refreshed = await app.api('POST', '/api/v1/credentials/scope/refresh');
    expect(refreshed.status, refreshed.text).toBe(200);
    expect((await app.api('GET', '/api/v1/credentials/scope')).json.status).toBe('active');
    expect((await app.api('GET', '/api/v1/credentials/scope/access-token')).status).toBe(200);
    await app.services.alerts.evaluate();
    const active = await app.api('GET', '/api/v1/alerts?status=active');
    expect((active.json.alerts as { subject: string }[]).some((a) => a.subject === 'scope')).toBe(false);
  });
});
