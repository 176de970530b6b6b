// Proves the OAuth callback's review findings over real HTTP: the page cannot be framed or sniffed, only callbacks for a
// sign-in Mailgate started are audited, and the authorization code, state and setup token never reach the request log.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';

let app: MailgateApp;

beforeAll(async () => {
  app = await startMailgateApp();
  const created = await app.api('POST', '/api/v1/credentials', { name: 'gmail-ops', provider: 'google', clientId: 'id.apps.googleusercontent.com', clientSecret: 'a-client-secret', email: 'ops@example.com' });
  expect(created.status).toBe(201);
});
afterAll(async () => app?.close());

async function callbackAudits(): Promise<{ target: string | null; details: Record<string, unknown> }[]> {
  const audit = await app.api('GET', '/api/v1/audit?limit=1000');
  return (audit.json.entries as { action: string; target: string | null; details: Record<string, unknown> }[]).filter((e) => e.action === 'oauth.callback');
}

describe('the OAuth callback', () => {
  it('answers with a page that may not be framed, sniffed, cached or referred', async () => {
    const res = await fetch(`${app.url}/oauth/callback?state=unknown`);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
  });

  it('writes no audit row for callbacks with an unknown state, and one for a callback of a sign-in Mailgate started', async () => {
    for (const query of ['state=x', 'state=x&code=abc', 'error=access_denied&state=forged', '']) {
      expect((await fetch(`${app.url}/oauth/callback?${query}`)).status).toBe(400);
    }
    expect(await callbackAudits()).toHaveLength(0);

    const started = await app.api('POST', '/api/v1/credentials/gmail-ops/authorize');
    expect(started.status).toBe(200);
    const state = new URL(started.json.authorizationUrl as string).searchParams.get('state');
    const declined = await fetch(`${app.url}/oauth/callback?error=access_denied&state=${state}`);
    expect(declined.status).toBe(400);
    expect(await callbackAudits()).toEqual([expect.objectContaining({ target: 'gmail-ops', details: { ok: false, code: 'OAUTH_PROVIDER_ERROR' } })]);
  });

  it('keeps the authorization code, the state and the setup token out of the request log', async () => {
    await fetch(`${app.url}/oauth/callback?code=4%2F0AQSTgQ-authorization-code-value&state=state-value-abc123&scope=openid`);
    await fetch(`${app.url}/setup?token=setup-token-value-xyz`);
    await fetch(`${app.url}/oauth/callback?%63ode=encoded-name-code-value&STATE=upper-state-value`);
    const logs = app.logs();
    for (const secret of ['authorization-code-value', 'state-value-abc123', 'setup-token-value-xyz', 'encoded-name-code-value', 'upper-state-value']) expect(logs).not.toContain(secret);
    // The request is still logged, with the parameter names and the harmless ones.
    expect(logs).toContain('"url":"/oauth/callback?code=[redacted]&state=[redacted]&scope=openid"');
    expect(logs).toContain('"url":"/setup?token=[redacted]"');
  });
});
