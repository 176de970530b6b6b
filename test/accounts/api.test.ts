// Proves the relay and proxy accounts API over real HTTP: a generated password is answered once and works, reads never
// carry a password or hash, every refusal names the field and the fix without echoing a secret, senders and servers in
// use cannot be removed, the audit log has field names only, and /readyz turns 503 while a listener failed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RelayListenerConfig } from '../../src/config/load.js';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';

let app: MailgateApp;

const relayListener: RelayListenerConfig = {
  listen: { host: '127.0.0.1', port: 2525 },
  tls: 'starttls',
  certFile: undefined,
  keyFile: undefined,
  allowInsecureAuth: false,
  maxConnections: 100,
  maxConnectionsPerClient: 20,
  requireAuth: true,
  allowUnauthenticatedFrom: [],
  sender: undefined,
};

beforeAll(async () => {
  app = await startMailgateApp({
    configure: (config) => ({
      ...config,
      relay: { ...config.relay, listeners: [relayListener] },
      proxy: { ...config.proxy, imap: { ...relayListener, listen: { host: '127.0.0.1', port: 1143 } }, pop3: { ...relayListener, tls: 'implicit', listen: { host: '127.0.0.1', port: 1995 } } },
    }),
  });
  // Servers and a sender to bind accounts to (nothing connects to them here).
  for (const server of [
    { name: 'm365-smtp', protocol: 'smtp', host: 'smtp.office365.com', port: 587, security: 'starttls', username: 'alerts@contoso.example', auth: { type: 'oauth2', credential: 'm365' } },
    { name: 'm365-imap', protocol: 'imap', host: 'outlook.office365.com', port: 993, security: 'tls', username: 'alerts@contoso.example', auth: { type: 'oauth2', credential: 'm365' } },
    { name: 'm365-pop3', protocol: 'pop3', host: 'outlook.office365.com', port: 995, security: 'tls', username: 'alerts@contoso.example', auth: { type: 'oauth2', credential: 'm365' } },
    { name: 'legacy-imap', protocol: 'imap', host: 'imap.example.com', port: 993, security: 'tls', username: 'x@example.com', auth: { type: 'password', password: 'a-password-here' } },
  ]) {
    const added = await app.api('POST', '/api/v1/servers', server);
    expect(added.status, added.text).toBe(201);
  }
  const sender = await app.api('POST', '/api/v1/senders', { name: 'alarms', primary: 'm365-smtp', from: 'Alarms <alarms@contoso.example>' });
  expect(sender.status, sender.text).toBe(201);
});
afterAll(async () => app?.close());

describe('relay accounts API', () => {
  let generated = '';

  it('creates an account with a generated password answered once, with what to type into the program, and the password logs in', async () => {
    const created = await app.api('POST', '/api/v1/relay-accounts', { name: 'scanner', sender: 'alarms', allowFrom: ['Scanner@Contoso.example', '@branch.contoso.example'], generatePassword: true });
    expect(created.status, created.text).toBe(201);
    generated = created.json.password;
    expect(generated).toMatch(/^[A-HJ-NP-Za-km-z2-9]{24}$/);
    expect(created.json).toMatchObject({ name: 'scanner', sender: 'alarms', allowFrom: ['scanner@contoso.example', '@branch.contoso.example'], passwordKind: 'generated', lastLoginAt: null });
    expect(created.json.settings).toEqual([{ listener: 'relay.listeners[0]', protocol: 'smtp', server: '127.0.0.1', port: 2525, security: 'STARTTLS', user: 'scanner', notes: [expect.stringContaining('self-signed')] }]);
    expect(created.text).not.toMatch(/sha256\$|scrypt\$|password_hash|passwordHash/);

    const ok = await app.services.relayAccounts.login('scanner', generated, { client: '127.0.0.1', protocol: 'smtp' });
    expect(ok.ok).toBe(true);
    const wrong = await app.services.relayAccounts.login('scanner', `${generated}x`, { client: '127.0.0.2', protocol: 'smtp' });
    expect(wrong).toMatchObject({ ok: false, reason: 'invalid' });
  });

  it('never shows a password or hash on reads: list and show', async () => {
    const list = await app.api('GET', '/api/v1/relay-accounts');
    expect(list.status).toBe(200);
    expect(list.json.relayAccounts).toEqual([expect.objectContaining({ name: 'scanner', sender: 'alarms', passwordKind: 'generated' })]);
    const show = await app.api('GET', '/api/v1/relay-accounts/scanner');
    expect(show.status).toBe(200);
    expect(show.json.settings[0]).toMatchObject({ server: '127.0.0.1', port: 2525, user: 'scanner' });
    for (const text of [list.text, show.text]) {
      expect(text).not.toContain(generated);
      expect(text).not.toMatch(/"password"|sha256\$|scrypt\$/);
    }
  });

  it('refuses bad input naming each field and the fix, and never echoes the password it was given', async () => {
    const secret = 'short-pw';
    const bad = await app.api('POST', '/api/v1/relay-accounts', { name: 'bad name', sender: 'nobody', allowFrom: ['not an address'], password: secret });
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe('INPUT_INVALID');
    expect(bad.json.error.message).toContain('name: expected 1-100 letters');

    const unknownSender = await app.api('POST', '/api/v1/relay-accounts', { name: 'ok-name', sender: 'nobody', allowFrom: ['not an address'], password: 'a-long-enough-password' });
    expect(unknownSender.status).toBe(400);
    expect(unknownSender.json.error.message).toContain('sender: no sender named "nobody" (add one with `mailgate sender add` or POST /api/v1/senders)');
    expect(unknownSender.json.error.message).toContain('allowFrom[0]: expected an address (alice@example.com) or a domain (@example.com)');

    const weak = await app.api('POST', '/api/v1/relay-accounts', { name: 'weak', sender: 'alarms', password: secret });
    expect(weak.status).toBe(400);
    expect(weak.json.error.message).toBe('password: use at least 12 characters, or --generate-password');
    expect(weak.text).not.toContain(secret);

    const both = await app.api('POST', '/api/v1/relay-accounts', { name: 'both', sender: 'alarms', password: 'a-long-enough-password', generatePassword: true });
    expect(both.json.error.message).toBe('password: give either a password or generatePassword: true, not both');
    const none = await app.api('POST', '/api/v1/relay-accounts', { name: 'none', sender: 'alarms' });
    expect(none.json.error.message).toBe('password: expected a password (at least 12 characters) or generatePassword: true');
    const extra = await app.api('POST', '/api/v1/relay-accounts', { name: 'extra', sender: 'alarms', generatePassword: true, passwordHash: 'x' });
    expect(extra.json.error.message).toBe('body: unknown field "passwordHash"');
    const notObject = await app.api('POST', '/api/v1/relay-accounts', ['scanner']);
    expect(notObject.status).toBe(400);
    expect(notObject.json.error.message).toMatch(/^body: expected a JSON object with name, sender/);

    const dup = await app.api('POST', '/api/v1/relay-accounts', { name: 'scanner', sender: 'alarms', generatePassword: true });
    expect(dup.status).toBe(409);
    expect(dup.json.error.message).toContain('a relay account named "scanner" exists already');
    const missing = await app.api('GET', '/api/v1/relay-accounts/nobody');
    expect(missing.status).toBe(404);
    expect(missing.json.error.message).toBe('no relay account named "nobody"');
    expect((await app.api('GET', '/api/v1/relay-accounts')).json.relayAccounts).toHaveLength(1);
    expect(app.logs()).not.toContain(secret);
  });

  it('PATCH sets a chosen password (scrypt; the old one stops working) or a new generated one, answered once', async () => {
    const chosen = 'correct horse battery staple';
    const patched = await app.api('PATCH', '/api/v1/relay-accounts/scanner', { password: chosen });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.json.passwordKind).toBe('chosen');
    expect(patched.json.password).toBeUndefined();
    expect(patched.text).not.toContain(chosen);
    expect((await app.services.relayAccounts.login('scanner', chosen, { client: '127.0.0.1', protocol: 'smtp' })).ok).toBe(true);
    expect((await app.services.relayAccounts.login('scanner', generated, { client: '127.0.0.1', protocol: 'smtp' })).ok).toBe(false);
    const stored = await app.services.relayAccounts.get('scanner');
    expect(stored.password_hash).toMatch(/^scrypt\$/);

    const regenerated = await app.api('PATCH', '/api/v1/relay-accounts/scanner', { generatePassword: true, allowFrom: [] });
    expect(regenerated.status).toBe(200);
    expect(regenerated.json.password).toMatch(/^[A-HJ-NP-Za-km-z2-9]{24}$/);
    expect(regenerated.json.allowFrom).toEqual([]);
    expect((await app.services.relayAccounts.login('scanner', regenerated.json.password, { client: '127.0.0.1', protocol: 'smtp' })).ok).toBe(true);
  });

  it('refuses to remove a sender a relay account uses (409 naming it), then allows it once the account is gone', async () => {
    const refused = await app.api('DELETE', '/api/v1/senders/alarms');
    expect(refused.status).toBe(409);
    expect(refused.json.error).toEqual({ code: 'STATE_CONFLICT', message: expect.stringContaining('sender alarms is still used by relay account scanner: give it another sender') });
    expect((await app.api('DELETE', '/api/v1/relay-accounts/scanner')).status).toBe(204);
    expect((await app.api('DELETE', '/api/v1/relay-accounts/scanner')).status).toBe(404);
    expect((await app.api('DELETE', '/api/v1/senders/alarms')).status).toBe(204);
  });

  it('audits changes with field names only, never the password', async () => {
    // The API's audit line is written once the response has gone out: ask until the DELETE is there.
    await expect
      .poll(async () => (await app.api('GET', '/api/v1/audit?target=scanner')).json.entries.map((e: { action: string }) => e.action), { timeout: 3000 })
      .toEqual(expect.arrayContaining(['POST /api/v1/relay-accounts', 'PATCH /api/v1/relay-accounts/:name', 'DELETE /api/v1/relay-accounts/:name']));
    const audit = await app.api('GET', '/api/v1/audit?target=scanner');
    // Logins are audited by the accounts service: account, client, outcome; never the password.
    expect(audit.json.entries).toEqual(expect.arrayContaining([expect.objectContaining({ action: 'relay-account.login.failed', details: { protocol: 'smtp', client: '127.0.0.2', reason: 'wrong password' } })]));
    expect(audit.json.entries).toEqual(expect.arrayContaining([expect.objectContaining({ action: 'POST /api/v1/relay-accounts', details: { fields: ['allowFrom', 'generatePassword', 'name', 'sender'], status: 201 } })]));
    expect(audit.text).not.toContain(generated);
    expect(audit.text).not.toContain('correct horse battery staple');
  });

  it('answers 401 without a key and 403 with a key that lacks admin', async () => {
    const send = (await app.services.apiKeys.create('sender-app', ['send'])).key.reveal();
    expect((await app.api('GET', '/api/v1/relay-accounts', undefined, 'mgk_wrong')).status).toBe(401);
    expect((await app.api('GET', '/api/v1/relay-accounts', undefined, send)).status).toBe(403);
    expect((await app.api('POST', '/api/v1/proxy-accounts', { name: 'x', server: 'm365-imap', generatePassword: true }, send)).status).toBe(403);
  });
});

describe('proxy accounts API', () => {
  it('binds an account to an IMAP or POP3 server with the matching listener in its settings, and refuses other servers naming why', async () => {
    const imap = await app.api('POST', '/api/v1/proxy-accounts', { name: 'erp', server: 'm365-imap', generatePassword: true });
    expect(imap.status, imap.text).toBe(201);
    expect(imap.json).toMatchObject({ name: 'erp', server: 'm365-imap', passwordKind: 'generated', password: expect.stringMatching(/^[A-HJ-NP-Za-km-z2-9]{24}$/) });
    expect(imap.json.settings).toEqual([expect.objectContaining({ listener: 'proxy.imap', protocol: 'imap', port: 1143, security: 'STARTTLS', user: 'erp' })]);
    const pop3 = await app.api('POST', '/api/v1/proxy-accounts', { name: 'tickets', server: 'm365-pop3', password: 'a chosen pass phrase' });
    expect(pop3.status, pop3.text).toBe(201);
    expect(pop3.json.password).toBeUndefined();
    expect(pop3.json.settings).toEqual([expect.objectContaining({ listener: 'proxy.pop3', protocol: 'pop3', port: 1995, security: 'SSL/TLS' })]);

    const smtp = await app.api('POST', '/api/v1/proxy-accounts', { name: 'x1', server: 'm365-smtp', generatePassword: true });
    expect(smtp.json.error.message).toBe('server: m365-smtp is an SMTP server; a proxy account needs an IMAP or POP3 server');
    const legacy = await app.api('POST', '/api/v1/proxy-accounts', { name: 'x2', server: 'legacy-imap', generatePassword: true });
    expect(legacy.json.error.message).toContain('server: legacy-imap logs in with a password; the proxy logs in upstream with XOAUTH2');
    const unknown = await app.api('POST', '/api/v1/proxy-accounts', { name: 'x3', server: 'nope', generatePassword: true });
    expect(unknown.json.error.message).toBe('server: no server named "nope" (add one with `mailgate server add` or POST /api/v1/servers)');

    const list = await app.api('GET', '/api/v1/proxy-accounts');
    expect(list.json.proxyAccounts.map((a: { name: string }) => a.name)).toEqual(['erp', 'tickets']);
    expect(list.text).not.toContain(imap.json.password);
    expect(list.text).not.toMatch(/"password"|sha256\$|scrypt\$/);

    const moved = await app.api('PATCH', '/api/v1/proxy-accounts/tickets', { server: 'm365-imap' });
    expect(moved.status).toBe(200);
    expect(moved.json.settings[0].listener).toBe('proxy.imap');
  });

  it('refuses to remove a server a proxy account uses (409 naming the accounts)', async () => {
    const refused = await app.api('DELETE', '/api/v1/servers/m365-imap');
    expect(refused.status).toBe(409);
    expect(refused.json.error.message).toBe('server m365-imap is still used by proxy accounts erp, tickets: point them to another server or remove them first');
    expect((await app.api('DELETE', '/api/v1/proxy-accounts/erp')).status).toBe(204);
    expect((await app.api('DELETE', '/api/v1/proxy-accounts/tickets')).status).toBe(204);
    expect((await app.api('DELETE', '/api/v1/servers/m365-imap')).status).toBe(204);
  });
});

describe('/readyz and the listeners', () => {
  it('answers 503 naming the failed listener while one failed, and ready again once it listens', async () => {
    const ready = await fetch(`${app.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { storage: 'ok', listeners: 'ok' } });

    const handle = app.services.listeners.register({ id: 'relay.listeners[0]', kind: 'smtp-relay', listen: '127.0.0.1:2525', tls: 'starttls' });
    handle.setState('failed', { error: 'port 2525 is in use by another program' });
    const failed = await fetch(`${app.url}/readyz`);
    expect(failed.status).toBe(503);
    expect(await failed.json()).toEqual({ status: 'not_ready', checks: { storage: 'ok', listeners: 'failed: relay.listeners[0]' } });

    handle.setState('listening');
    expect((await fetch(`${app.url}/readyz`)).status).toBe(200);
    handle.setState('stopped');
    await app.services.listeners.flush();
  });
});
