// Proves that an alert for a state change made in this process is raised at once, not at the next evaluation tick (set
// here to ten minutes), and resolved at once when the credential recovers. The provider is a token endpoint on 127.0.0.1.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';

let app: MailgateApp;
let endpoint: http.Server;
let refusing = true;

beforeAll(async () => {
  endpoint = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (refusing) res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid_scope', error_description: 'scope not allowed for this app' }));
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: `at-${Date.now()}`, token_type: 'Bearer', expires_in: 3600 }));
    });
  });
  await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}`;
  app = await startMailgateApp({ configure: (config) => ({ ...config, alerts: { ...config.alerts, evaluateMs: 10 * 60_000 } }) });
  const created = await app.api('POST', '/api/v1/credentials', { name: 'erp', provider: 'generic', grant: 'client_credentials', tokenUrl: `${base}/token`, clientId: 'erp-app', clientSecret: 'erp-secret', email: 'ops@example.com', scopes: ['mail'] });
  expect(created.status, created.text).toBe(201);
  app.services.alerts.start();
  // The first pass runs a second after start; after it the next tick is ten minutes away.
  await new Promise((r) => setTimeout(r, 1500));
});
afterAll(async () => {
  await app?.services.alerts.stop();
  await app?.close();
  endpoint?.closeAllConnections();
  await new Promise<void>((resolve) => endpoint.close(() => resolve()));
});

async function waitFor(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}

const activeAlert = async () => (await app.services.alerts.list('active')).find((a) => a.subject === 'erp');

describe('alerts for a change made in this process', () => {
  it('are raised within seconds of the failed token request, not at the next tick', async () => {
    expect(await activeAlert()).toBeUndefined();
    const refused = await app.api('GET', '/api/v1/credentials/erp/access-token');
    expect(refused.status).toBe(409);
    expect(await waitFor(async () => (await activeAlert()) !== undefined, 3000)).toBe(true);
    expect(await activeAlert()).toMatchObject({ kind: 'configuration_error' });
  });

  it('are resolved within seconds of the credential recovering', async () => {
    refusing = false;
    expect((await app.api('POST', '/api/v1/credentials/erp/refresh')).status).toBe(200);
    expect(await waitFor(async () => (await activeAlert()) === undefined, 3000)).toBe(true);
    expect((await app.services.alerts.list('resolved')).some((a) => a.subject === 'erp')).toBe(true);
  });
});
