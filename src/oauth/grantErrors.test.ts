// Proves that token errors are classified by code (Microsoft's error_codes first, then OAuth's error, then HTTP status), against a scripted token endpoint on loopback.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getFreePort } from '../../test/testbed/ports.js';
import { classifyGrantError } from './grantErrors.js';

/** A network-level fake token endpoint: each test scripts the reply (no real provider can be made to send these). */
let reply: { status: number; body: string; headers?: Record<string, string> } = { status: 500, body: '' };
let server: http.Server;
let config: oidc.Configuration;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
    res.end(reply.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  config = new oidc.Configuration({ issuer: base, token_endpoint: `${base}/token` }, 'client', undefined, oidc.ClientSecretBasic('secret'));
  oidc.allowInsecureRequests(config);
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

async function failureFor(status: number, body: unknown, headers?: Record<string, string>) {
  reply = { status, body: typeof body === 'string' ? body : JSON.stringify(body), ...(headers ? { headers } : {}) };
  try {
    await oidc.refreshTokenGrant(config, 'some-refresh-token');
  } catch (err) {
    return classifyGrantError(err);
  }
  throw new Error('expected the grant to fail');
}

describe('classifyGrantError', () => {
  it('decides Microsoft errors by the numeric error_codes, not by the text', async () => {
    const mfa = await failureFor(400, { error: 'invalid_grant', error_description: 'AADSTS7000215: looks like a client secret problem', error_codes: [50076] });
    expect(mfa).toMatchObject({ kind: 'reauthorize', microsoftCodes: [50076] });
    expect(mfa.message).toContain('multi-factor');
    expect(await failureFor(400, { error: 'invalid_grant', error_codes: [50173] })).toMatchObject({ kind: 'reauthorize', message: expect.stringContaining('password change') });
    expect(await failureFor(401, { error: 'invalid_client', error_codes: [7000222] })).toMatchObject({ kind: 'client_secret', message: expect.stringContaining('expired') });
  });

  it('reads the body of a 401 that carries a WWW-Authenticate challenge', async () => {
    const failure = await failureFor(401, { error: 'invalid_client', error_description: 'client authentication failed', error_codes: [7000215] }, { 'www-authenticate': 'Basic realm="x"' });
    expect(failure).toMatchObject({ kind: 'client_secret', status: 401, microsoftCodes: [7000215] });
  });

  it('falls back to the OAuth error: invalid_grant re-authorizes, invalid_scope is refused with the provider\'s words', async () => {
    expect(await failureFor(400, { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' })).toMatchObject({ kind: 'reauthorize', message: expect.stringContaining('Token has been expired or revoked.') });
    expect(await failureFor(400, { error: 'invalid_scope' })).toMatchObject({ kind: 'refused', error: 'invalid_scope' });
  });

  it('treats 5xx, 429 and unreachable endpoints as passing failures', async () => {
    expect(await failureFor(503, '<html>Service Unavailable</html>', { 'content-type': 'text/html' })).toMatchObject({ kind: 'transient', status: 503 });
    expect(await failureFor(429, { error: 'temporarily_unavailable' })).toMatchObject({ kind: 'transient' });
    const port = await getFreePort(); // free, and nobody listens on it
    const closed = new oidc.Configuration({ issuer: `http://127.0.0.1:${port}`, token_endpoint: `http://127.0.0.1:${port}/token` }, 'client', undefined, oidc.None());
    oidc.allowInsecureRequests(closed);
    const unreachable = await oidc.refreshTokenGrant(closed, 'x').then(
      () => undefined,
      (err: unknown) => classifyGrantError(err),
    );
    expect(unreachable).toMatchObject({ kind: 'transient', message: expect.stringContaining('ECONNREFUSED') });
  });
});
