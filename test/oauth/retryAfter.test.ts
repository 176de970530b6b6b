// Proves that a token endpoint's Retry-After is honoured: a throttled credential is not asked again before the time the
// provider named (by the scheduler or by callers), and never later than the backoff's ceiling. The provider is a small
// HTTP token endpoint on 127.0.0.1 that answers 429 the way Entra ID and Google do when throttling.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';

let app: MailgateApp;
let endpoint: http.Server;
let base: string;
/** Token requests received per path. */
const hits = new Map<string, number>();

beforeAll(async () => {
  endpoint = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      hits.set(path, (hits.get(path) ?? 0) + 1);
      const retryAfter = path === '/seconds/token' ? '30' : path === '/date/token' ? new Date(Date.now() + 120_000).toUTCString() : path === '/day/token' ? '86400' : undefined;
      res.writeHead(429, { 'content-type': 'application/json', ...(retryAfter ? { 'retry-after': retryAfter } : {}) });
      res.end(JSON.stringify({ error: 'temporarily_unavailable', error_description: 'too many requests' }));
    });
  });
  await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}`;
  app = await startMailgateApp();
  for (const name of ['seconds', 'date', 'day', 'none']) {
    const created = await app.api('POST', '/api/v1/credentials', { name, provider: 'generic', grant: 'client_credentials', tokenUrl: `${base}/${name}/token`, clientId: 'throttled-app', clientSecret: 'throttled-secret', email: 'ops@example.com', scopes: ['mail'] });
    expect(created.status, created.text).toBe(201);
  }
});
afterAll(async () => {
  await app?.close();
  endpoint?.closeAllConnections();
  await new Promise<void>((resolve) => endpoint.close(() => resolve()));
});

const nextAttemptIn = async (name: string) => Date.parse((await app.services.credentialRepo.get(name)).next_attempt_at!) - Date.now();

describe('Retry-After from the token endpoint', () => {
  it('plans the next attempt no sooner than a 429 asked (30 s), and answers callers meanwhile without asking again', async () => {
    const first = await app.api('GET', '/api/v1/credentials/seconds/access-token');
    expect(first.status).toBe(502);
    expect(first.json.error.code).toBe('TOKEN_REFRESH_FAILED');
    expect(hits.get('/seconds/token')).toBe(1);
    const wait = await nextAttemptIn('seconds');
    expect(wait).toBeGreaterThan(28_000);
    expect(wait).toBeLessThanOrEqual(30_000);

    // Callers within the 30 s: an answer that says when, and no second request to the throttled endpoint.
    const again = await app.api('GET', '/api/v1/credentials/seconds/access-token');
    expect(again.status).toBe(502);
    expect(again.json.error.message).toMatch(/asked Mailgate to wait \(Retry-After\) until \d{4}-\d\d-\d\dT/);
    expect((await app.api('POST', '/api/v1/credentials/seconds/refresh')).status).toBe(502);
    expect(hits.get('/seconds/token')).toBe(1);
    // The scheduler does not pick it up before then either.
    expect(await app.services.credentialRepo.dueForRefresh(new Date(Date.now() + 3_600_000).toISOString(), new Date().toISOString(), new Date().toISOString())).not.toContainEqual(expect.objectContaining({ name: 'seconds' }));
  });

  it('reads Retry-After as an HTTP-date too', async () => {
    expect((await app.api('GET', '/api/v1/credentials/date/access-token')).status).toBe(502);
    const wait = await nextAttemptIn('date');
    expect(wait).toBeGreaterThan(115_000);
    expect(wait).toBeLessThanOrEqual(120_000);
  });

  it('waits no longer than the backoff ceiling (15 minutes) however long the provider asks', async () => {
    expect((await app.api('GET', '/api/v1/credentials/day/access-token')).status).toBe(502);
    const wait = await nextAttemptIn('day');
    expect(wait).toBeGreaterThan(14 * 60_000);
    expect(wait).toBeLessThanOrEqual(15 * 60_000);
  });

  it('keeps the ordinary backoff (seconds) when a 429 names no time, and lets a caller try again', async () => {
    expect((await app.api('GET', '/api/v1/credentials/none/access-token')).status).toBe(502);
    expect(await nextAttemptIn('none')).toBeLessThanOrEqual(5_000);
    expect((await app.api('GET', '/api/v1/credentials/none/access-token')).status).toBe(502);
    expect(hits.get('/none/token')).toBe(2);
  });
});
