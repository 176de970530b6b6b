// Proves outbound mail against the test bed (Dovecot submission validating tokens for real): XOAUTH2 and password sends read back over IMAP, refresh on auth failure, backup servers, refusals, bad input.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestClient } from '../testbed/authServer.js';
import { getFreePort } from '../testbed/ports.js';
import { useTestbed } from '../testbed/useTestbed.js';
import { addConnected, login, microsoftCredential } from '../support/credentials.js';
import { eventually, readInbox } from '../support/mailbox.js';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';
import { Secret } from '../../src/secrets/secret.js';
import { parsePrometheus, sampleValue } from '../support/prometheus.js';

const bed = useTestbed();
let app: MailgateApp;
let client: TestClient;
let sendKey: string;
const alice = () => bed.auth.users.alice;
const bob = () => bed.auth.users.bob;

beforeAll(async () => {
  app = await startMailgateApp({
    outboxWorker: true,
    configure: (config) => ({ ...config, outbox: { ...config.outbox, retryBaseMs: 100, retryMaxMs: 500, maxMessageBytes: 1024 * 1024 } }),
  });
  client = bed.auth.addClient({ clientId: 'mailgate-outbox', clientSecret: 'outbox-secret', redirectUris: [`${app.url}/oauth/callback`] });
  await addConnected(app, microsoftCredential(bed.auth, client, 'alice-m365'), login(alice()));
  const submission = { protocol: 'smtp', host: '127.0.0.1', port: bed.mail.ports.submission, security: 'starttls', tlsCa: bed.mail.caPem };
  expect((await app.api('POST', '/api/v1/servers', { ...submission, name: 'dovecot-oauth', username: alice().email, auth: { type: 'oauth2', credential: 'alice-m365' } })).status).toBe(201);
  expect((await app.api('POST', '/api/v1/servers', { ...submission, name: 'dovecot-password', username: bed.mail.passwordUser.email, auth: { type: 'password', password: bed.mail.passwordUser.password } })).status).toBe(201);
  expect((await app.api('POST', '/api/v1/servers', { ...submission, name: 'nowhere', port: await getFreePort(), username: alice().email, auth: { type: 'oauth2', credential: 'alice-m365' } })).status).toBe(201);
  expect((await app.api('POST', '/api/v1/senders', { name: 'alerts', primary: 'dovecot-oauth', from: `Alarm Centre <${alice().email}>`, replyTo: 'Duty Officer <duty@example.test>' })).status).toBe(201);
  expect((await app.api('POST', '/api/v1/senders', { name: 'carol', primary: 'dovecot-password', from: bed.mail.passwordUser.email })).status).toBe(201);
  expect((await app.api('POST', '/api/v1/senders', { name: 'with-backup', primary: 'nowhere', backups: ['dovecot-oauth'], from: alice().email })).status).toBe(201);
  sendKey = (await app.services.apiKeys.create('alarm-system', ['send'])).key.reveal();
});
afterAll(async () => app?.close());

const submit = (body: Record<string, unknown>) => app.api('POST', '/api/v1/messages', body, sendKey);
const settled = (id: string) => eventually(() => app.api('GET', `/api/v1/messages/${id}`, undefined, sendKey).then((r) => r.json), (m) => m.status === 'sent' || m.status === 'failed', 20_000, `message ${id} to settle`);
const inboxWith = (user: { email: string; password: string }, subject: string) => eventually(() => readInbox(bed, user), (all) => all.some((m) => m.subject === subject), 15_000, `"${subject}" in ${user.email}'s INBOX`).then((all) => all.find((m) => m.subject === subject)!);

describe('outbox', () => {
  it('accepts a message (202), sends it with XOAUTH2, and it arrives with the right headers, body and attachment', async () => {
    const subject = `alarm ${Date.now()}`;
    const accepted = await submit({
      sender: 'alerts',
      to: [`Bob <${bob().email}>`],
      cc: alice().email,
      subject,
      text: 'Zone 3 smoke detector triggered.',
      html: '<p>Zone 3 <b>smoke</b> detector triggered.</p>',
      attachments: [{ filename: 'report.txt', content: Buffer.from('sensor log').toString('base64'), contentType: 'text/plain' }],
      headers: { 'X-Alarm-Id': 'A-42' },
    });
    expect(accepted.status).toBe(202);
    expect(accepted.json).toMatchObject({ id: expect.any(String), status: 'queued', messageId: expect.stringMatching(/^<mg\.[0-9a-z]+@example\.test>$/) });
    const done = await settled(accepted.json.id);
    expect(done).toMatchObject({ status: 'sent', attempts: 1, server: 'dovecot-oauth', lastError: null });
    expect(done.response).toMatch(/^250 /);

    const received = await inboxWith(bob(), subject);
    expect(received.from?.value[0]).toMatchObject({ address: alice().email, name: 'Alarm Centre' });
    expect(received.replyTo?.value[0]).toMatchObject({ address: 'duty@example.test', name: 'Duty Officer' });
    expect(received.messageId).toBe(accepted.json.messageId);
    expect(received.headers.get('x-alarm-id')).toBe('A-42');
    expect(received.text?.trim()).toBe('Zone 3 smoke detector triggered.');
    expect(received.html).toContain('<b>smoke</b>');
    expect(received.attachments.map((a) => [a.filename, a.content.toString()])).toEqual([['report.txt', 'sensor log']]);
  });

  it('sends with password authentication too', async () => {
    const subject = `password ${Date.now()}`;
    const accepted = await submit({ sender: 'carol', to: bob().email, subject, text: 'via carol' });
    expect((await settled(accepted.json.id)).status).toBe('sent');
    expect((await inboxWith(bob(), subject)).from?.value[0]?.address).toBe(bed.mail.passwordUser.email);
  });

  it('refreshes an expired access token before sending', async () => {
    const before = (await app.services.credentialRepo.get('alice-m365')).last_refreshed_at;
    await app.services.store.db.updateTable('credentials').set({ expires_at: new Date(Date.now() - 1000).toISOString() }).where('name', '=', 'alice-m365').execute();
    app.services.tokens.forget('alice-m365');
    const accepted = await submit({ sender: 'alerts', to: bob().email, subject: `expired ${Date.now()}`, text: 'x' });
    expect((await settled(accepted.json.id)).status).toBe('sent');
    expect((await app.services.credentialRepo.get('alice-m365')).last_refreshed_at! > before!).toBe(true);
  });

  it('forces one refresh and one retry when the server refuses a token that looked valid', async () => {
    // A stored token the provider never issued, with a far expiry: only the SMTP login can tell it is bad.
    await app.services.credentialRepo.saveTokens('alice-m365', { accessToken: new Secret('forged-but-unexpired'), refreshToken: undefined, tokenType: 'bearer', expiresAt: new Date(Date.now() + 3_600_000).toISOString(), grantedScopes: undefined }, { reason: 'test', previousStatus: 'active' });
    app.services.tokens.forget('alice-m365');
    app.services.transports.forget('dovecot-oauth');
    const refreshes = app.services.tokens.refreshCount;
    const accepted = await submit({ sender: 'alerts', to: bob().email, subject: `renewed ${Date.now()}`, text: 'x' });
    const done = await settled(accepted.json.id);
    expect(done).toMatchObject({ status: 'sent', attempts: 1, server: 'dovecot-oauth' });
    expect(app.services.tokens.refreshCount - refreshes).toBe(1);
  });

  it('delivers through the backup when the primary is down, and says which server it used', async () => {
    const accepted = await submit({ sender: 'with-backup', to: bob().email, subject: `backup ${Date.now()}`, text: 'x' });
    const done = await settled(accepted.json.id);
    expect(done.status).toBe('sent');
    expect(done.server).toBe('dovecot-oauth');
    expect(done.history.map((h: { server: string; outcome: string }) => `${h.server}:${h.outcome}`)).toEqual(['nowhere:retry', 'nowhere:retry', 'nowhere:next_server', 'dovecot-oauth:sent']);
    expect(done.history[0].error).toMatch(/ECONNREFUSED|cannot reach/);
  });

  it('fails a message whose recipient the server refuses with 5xx, keeping the reply', async () => {
    bed.mail.sink.rejectRecipients.add('nobody@example.test');
    const accepted = await submit({ sender: 'alerts', to: 'nobody@example.test', subject: 'refused', text: 'x' });
    const done = await settled(accepted.json.id);
    expect(done.status).toBe('failed');
    expect(done.attempts).toBe(1);
    expect(done.response ?? done.lastError).toMatch(/55\d/);
  });

  it('returns the existing message for a repeated idempotency key', async () => {
    const body = { sender: 'alerts', to: bob().email, subject: `once ${Date.now()}`, text: 'x', idempotencyKey: `alarm-${Date.now()}` };
    const first = await submit(body);
    const second = await submit(body);
    expect(first.status).toBe(202);
    expect(second.status).toBe(200);
    expect(second.json.id).toBe(first.json.id);
  });

  it('refuses bad input with 400 naming the field, and queues nothing', async () => {
    const before = (await app.api('GET', '/api/v1/messages?limit=500')).json.messages.length;
    const cases: [Record<string, unknown>, string][] = [
      [{ sender: 'alerts', to: bob().email, subject: 'hi\r\nBcc: victim@example.test', text: 'x' }, 'subject: contains a line break'],
      [{ sender: 'alerts', to: 'Bob <bob@example.test>\r\nBcc: x@y.z', subject: 's', text: 'x' }, 'to: contains a line break'],
      [{ sender: 'alerts', to: ['not an address'], subject: 's', text: 'x' }, 'to[0]: expected an e-mail address'],
      [{ sender: 'alerts', to: bob().email, subject: 's', text: 'x', headers: { 'X-Evil': 'a\nb' } }, 'headers.X-Evil: contains a line break'],
      [{ sender: 'nope', to: bob().email, subject: 's', text: 'x' }, 'sender: no sender named "nope"'],
      [{ sender: 'alerts', to: bob().email, subject: 's', attachments: [{ filename: 'big.bin', content: Buffer.alloc(1_200_000).toString('base64') }] }, 'message: 1.1 MB is over the 1 MB limit'],
      [{ sender: 'alerts', to: bob().email, subject: 's' }, 'text: expected text, html or attachments'],
    ];
    for (const [body, expected] of cases) {
      const res = await submit(body);
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(res.json.error.code).toBe('INPUT_INVALID');
      expect(res.json.error.message).toContain(expected);
    }
    expect((await app.api('GET', '/api/v1/messages?limit=500')).json.messages.length).toBe(before);
  });

  it('tests a server through the API: every step ok with XOAUTH2 and a test message, or the failing step explained', async () => {
    const ok = await app.api('POST', '/api/v1/servers/dovecot-oauth/test', { sendTo: bob().email });
    expect(ok.status).toBe(200);
    expect(ok.json.ok).toBe(true);
    expect(ok.json.steps.map((s: { name: string }) => s.name)).toEqual(expect.arrayContaining(['connect', 'tls', 'ehlo', 'token', 'auth', 'send']));
    expect(ok.text).not.toContain((await app.services.tokens.getAccessToken('alice-m365')).accessToken.reveal());
    const down = await app.api('POST', '/api/v1/servers/nowhere/test');
    expect(down.json.ok).toBe(false);
    expect(down.json.steps[0]).toMatchObject({ name: 'connect', ok: false, explanation: { meaning: expect.any(String), fix: expect.any(String) } });
  });

  it('exposes Prometheus metrics whose numbers move when mail is sent, to a key with the metrics scope only', async () => {
    const key = (await app.services.apiKeys.create('prometheus', ['metrics'])).key.reveal();
    const scrape = async () => {
      const res = await fetch(`${app.url}/metrics`, { headers: { authorization: `Bearer ${key}` } });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/plain');
      return parsePrometheus(await res.text());
    };
    expect((await fetch(`${app.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${app.url}/metrics`, { headers: { authorization: `Bearer ${sendKey}` } })).status).toBe(403);

    const before = await scrape();
    const sentBefore = sampleValue(before, 'mailgate_sends_total', { server: 'dovecot-oauth', outcome: 'sent' }) ?? 0;
    expect(sentBefore).toBeGreaterThan(0);
    expect(sampleValue(before, 'mailgate_credentials', { status: 'active' })).toBe(1);
    expect(sampleValue(before, 'mailgate_token_refreshes_total', { outcome: 'success' })).toBeGreaterThan(0);
    expect(sampleValue(before, 'mailgate_access_token_expiry_seconds', { credential: 'alice-m365' })).toBeGreaterThan(0);
    expect(sampleValue(before, 'mailgate_outbox_messages', { status: 'failed' })).toBeGreaterThan(0);

    const accepted = await submit({ sender: 'alerts', to: bob().email, subject: `metrics ${Date.now()}`, text: 'x' });
    expect((await settled(accepted.json.id)).status).toBe('sent');
    const after = await scrape();
    expect(sampleValue(after, 'mailgate_sends_total', { server: 'dovecot-oauth', outcome: 'sent' })).toBe(sentBefore + 1);
    expect(sampleValue(after, 'mailgate_http_request_duration_seconds_count', { method: 'POST', route: '/api/v1/messages', status: '202' })).toBeGreaterThan(
      sampleValue(before, 'mailgate_http_request_duration_seconds_count', { method: 'POST', route: '/api/v1/messages', status: '202' }) ?? 0,
    );
  });

  it('warns at configuration time about a port and security that do not match', async () => {
    const created = await app.api('POST', '/api/v1/servers', { name: 'odd', protocol: 'smtp', host: 'smtp.office365.com', port: 587, security: 'tls', username: alice().email, auth: { type: 'oauth2', credential: 'alice-m365' } });
    expect(created.status).toBe(201);
    expect(created.json.warnings.map((w: { code: string }) => w.code)).toContain('SECURITY_PORT_MISMATCH');
    const gmail = await app.api('POST', '/api/v1/servers', { name: 'gmail', protocol: 'smtp', host: 'smtp.gmail.com', port: 465, security: 'tls', username: alice().email, auth: { type: 'oauth2', credential: 'alice-m365' } });
    expect(gmail.json.warnings.map((w: { code: string }) => w.code)).toContain('PROVIDER_HOST_MISMATCH');
    expect(JSON.stringify((await app.api('GET', '/api/v1/servers/dovecot-password')).json)).not.toContain(bed.mail.passwordUser.password);
  });

  it('never writes a secret to the log on the send path (tokens, client secret, server password)', async () => {
    const row = await app.services.credentialRepo.get('alice-m365');
    const secrets = [client.clientSecret, bed.mail.passwordUser.password, app.services.credentialRepo.accessTokenOf(row)!.reveal(), app.services.credentialRepo.refreshTokenOf(row)!.reveal(), sendKey];
    const logs = app.logs();
    expect(logs).toContain('message sent');
    for (const secret of secrets) expect(logs).not.toContain(secret);
  });
});
