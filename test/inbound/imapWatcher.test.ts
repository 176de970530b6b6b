// Proves the IMAP watcher against the test bed's Dovecot (XOAUTH2 checked by introspection): signed webhooks, retry then one acknowledgement, restarts, IDLE latency, token expiry mid-session, reply acks, hostile mail.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/load.js';
import type { TestClient } from '../testbed/authServer.js';
import { obtainTokens } from '../testbed/providerLogin.js';
import { useTestbed } from '../testbed/useTestbed.js';
import { addConnected, login, microsoftCredential } from '../support/credentials.js';
import { eventually } from '../support/mailbox.js';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhookReceiver.js';

const bed = useTestbed();
const SECRET = 'whsec-test-0123456789abcdef';
let app: MailgateApp;
let client: TestClient;
let hook: WebhookReceiver;
const alice = () => bed.auth.users.alice;

const configure = (config: Config): Config => ({
  ...config,
  inbound: { ...config.inbound, retryBaseMs: 200, retryMaxMs: 1000, maxAttempts: 3 },
});

beforeAll(async () => {
  hook = await startWebhookReceiver(SECRET);
  app = await startMailgateApp({ outboxWorker: true, watchers: true, configure });
  client = bed.auth.addClient({ clientId: 'mailgate-inbound', clientSecret: 'inbound-secret', redirectUris: [`${app.url}/oauth/callback`], accessTokenTtl: 4 });
  await addConnected(app, microsoftCredential(bed.auth, client, 'alice-m365'), login(alice()));
  const imap = { protocol: 'imap', host: '127.0.0.1', port: bed.mail.ports.imap, security: 'starttls', tlsCa: bed.mail.caPem, username: alice().email, auth: { type: 'oauth2', credential: 'alice-m365' } };
  expect((await app.api('POST', '/api/v1/servers', { ...imap, name: 'alice-imap' })).status).toBe(201);
});
afterAll(async () => {
  await app?.close();
  await hook?.close();
});

let counter = 0;
function mail(subject: string, extra = ''): string {
  counter += 1;
  const headers = [`From: Carol Sender <carol@example.test>`, `To: ${alice().email}`, `Subject: ${subject}`, `Message-ID: <in-${Date.now()}-${counter}@example.test>`, `Date: ${new Date().toUTCString()}`, ...(extra ? [extra] : []), 'Content-Type: text/plain; charset=utf-8'];
  return `${headers.join('\r\n')}\r\n\r\nBody of ${subject}\r\n`;
}

async function flagsOf(messageId: string): Promise<string[]> {
  const tokens = await obtainTokens(bed.auth, { user: alice() });
  const imap = new ImapFlow({ host: '127.0.0.1', port: bed.mail.ports.imap, secure: false, tls: { ca: bed.mail.caPem }, auth: { user: alice().email, accessToken: tokens.access_token }, logger: false });
  await imap.connect();
  try {
    await imap.mailboxOpen('INBOX');
    const uids = (await imap.search({ header: { 'message-id': messageId } }, { uid: true })) || [];
    if (uids.length === 0) return ['(absent)'];
    const msg = await imap.fetchOne(String(uids[0]), { flags: true }, { uid: true });
    return msg ? [...(msg.flags ?? [])] : ['(absent)'];
  } finally {
    await imap.logout();
  }
}

const watcher = (name: string, extra: Record<string, unknown> = {}) => ({ name, server: 'alice-imap', webhook: { url: hook.url, secret: SECRET }, ...extra });
const bodiesFor = (subject: string) => hook.received.filter((r) => r.body?.message?.subject === subject);

describe('IMAP watcher', () => {
  it('delivers a new message to the webhook, signed, with its content, and marks it seen only after the 2xx', async () => {
    expect((await app.api('POST', '/api/v1/watchers', watcher('alice-inbox'))).status).toBe(201);
    await eventually(() => app.api('GET', '/api/v1/watchers/alice-inbox').then((r) => r.json.status.state), (s) => s === 'idle', 15_000, 'watcher idle');

    const subject = `first ${Date.now()}`;
    const raw = mail(subject);
    await bed.mail.deliver(raw, alice().email);
    const [got] = await eventually(async () => bodiesFor(subject), (l) => l.length === 1, 10_000, 'the webhook');
    expect(got!.signatureValid).toBe(true);
    expect(got!.headers['x-mailgate-event']).toBe('message');
    expect(got!.body).toMatchObject({
      event: 'message',
      watcher: 'alice-inbox',
      mailbox: { server: 'alice-imap', folder: 'INBOX', uid: expect.any(Number) },
      message: { subject, from: [{ name: 'Carol Sender', address: 'carol@example.test' }], to: [{ address: alice().email }], text: `Body of ${subject}\n`, size: expect.any(Number) },
    });
    expect(got!.body.deliveryId).toBe(got!.headers['x-mailgate-delivery']);
    await eventually(() => flagsOf(got!.body.message.messageId), (f) => f.includes('\\Seen'), 5000, 'the \\Seen flag');
    const status = (await app.api('GET', '/api/v1/watchers/alice-inbox')).json.status;
    expect(status).toMatchObject({ state: 'idle', delivered: 1, parked: 0, lastError: null });
  });

  it('delivers within 2 seconds through IDLE', async () => {
    const subject = `idle ${Date.now()}`;
    const sentAt = Date.now();
    await bed.mail.deliver(mail(subject), alice().email);
    const [got] = await eventually(async () => bodiesFor(subject), (l) => l.length === 1, 5000, 'the webhook');
    expect(got!.at - sentAt).toBeLessThan(2000);
  });

  it('retries a webhook that answered 500, and acknowledges exactly once when it answers 200', async () => {
    hook.respond(500);
    const subject = `retry ${Date.now()}`;
    await bed.mail.deliver(mail(subject), alice().email);
    const calls = await eventually(async () => bodiesFor(subject), (l) => l.length === 2, 10_000, 'the retry');
    expect(calls.map((c) => c.status)).toEqual([500, 200]);
    expect(calls[0]!.body.deliveryId).toBe(calls[1]!.body.deliveryId);
    expect(await flagsOf(calls[0]!.body.message.messageId)).toContain('\\Seen');
    await new Promise((r) => setTimeout(r, 1500));
    expect(bodiesFor(subject)).toHaveLength(2);
    const deliveries = (await app.api('GET', '/api/v1/watchers/alice-inbox/deliveries')).json.deliveries;
    expect(deliveries.find((d: { subject: string }) => d.subject === subject)).toMatchObject({ status: 'delivered', attempts: 2 });
  });

  it('parks a message whose webhook keeps failing, leaves it unseen upstream, and retries it on request', async () => {
    hook.respond(503, 503, 503);
    const subject = `parked ${Date.now()}`;
    await bed.mail.deliver(mail(subject), alice().email);
    await eventually(async () => bodiesFor(subject), (l) => l.length === 3, 10_000, 'three attempts');
    const parked = await eventually(
      () => app.api('GET', '/api/v1/watchers/alice-inbox/deliveries?status=parked').then((r) => r.json.deliveries.find((d: { subject: string }) => d.subject === subject)),
      (d) => d !== undefined,
      5000,
      'the parked delivery',
    );
    expect(parked.lastError).toMatch(/503.*after 3 attempts/);
    expect(await flagsOf(bodiesFor(subject)[0]!.body.message.messageId)).not.toContain('\\Seen');
    await app.services.alerts.evaluate();
    expect((await app.api('GET', '/api/v1/alerts?status=active')).json.alerts).toEqual([expect.objectContaining({ kind: 'message_parked', subject: 'alice-inbox' })]);
    expect((await app.api('POST', `/api/v1/watchers/alice-inbox/deliveries/${parked.id}/retry`)).status).toBe(202);
    await eventually(async () => bodiesFor(subject), (l) => l.length === 4 && l[3]!.status === 200, 10_000, 'the retried delivery');
    await eventually(() => flagsOf(bodiesFor(subject)[0]!.body.message.messageId), (f) => f.includes('\\Seen'), 5000, 'the \\Seen flag');
    await app.services.alerts.evaluate();
    expect((await app.api('GET', '/api/v1/alerts?status=resolved')).json.alerts).toEqual([expect.objectContaining({ kind: 'message_parked', status: 'resolved' })]);
  });

  it('raises watcher_failing while a watcher cannot open its folder, and resolves it when the watcher is fixed', async () => {
    expect((await app.api('POST', '/api/v1/watchers', watcher('broken', { folder: 'No/Such/Folder' }))).status).toBe(201);
    const failing = await eventually(() => app.api('GET', '/api/v1/watchers/broken').then((r) => r.json.status), (s) => s.state === 'backoff', 15_000, 'the watcher in backoff');
    expect(failing.lastError).toMatch(/folder|NONEXISTENT|Mailbox doesn't exist/i);
    await app.services.alerts.evaluate();
    expect((await app.api('GET', '/api/v1/alerts?status=active')).json.alerts).toEqual([expect.objectContaining({ kind: 'watcher_failing', subject: 'broken', message: expect.stringContaining('cannot read its mailbox') })]);
    expect((await app.api('PATCH', '/api/v1/watchers/broken', { folder: 'INBOX' })).status).toBe(200);
    await eventually(() => app.api('GET', '/api/v1/watchers/broken').then((r) => r.json.status.state), (s) => s === 'idle', 15_000, 'the fixed watcher idle');
    await app.services.alerts.evaluate();
    expect((await app.api('GET', '/api/v1/alerts?status=active')).json.alerts).toEqual([]);
    expect((await app.api('DELETE', '/api/v1/watchers/broken')).status).toBe(204);
  });

  it('turns a reply to a message sent through the outbox into an ack event naming it', async () => {
    expect((await app.api('POST', '/api/v1/servers', { name: 'submission', protocol: 'smtp', host: '127.0.0.1', port: bed.mail.ports.submission, security: 'starttls', tlsCa: bed.mail.caPem, username: alice().email, auth: { type: 'oauth2', credential: 'alice-m365' } })).status).toBe(201);
    expect((await app.api('POST', '/api/v1/senders', { name: 'alarms', primary: 'submission', from: alice().email })).status).toBe(201);
    const sent = await app.api('POST', '/api/v1/messages', { sender: 'alarms', to: 'duty@example.test', subject: 'ALARM zone 3', text: 'Reply ACK to acknowledge.', idempotencyKey: 'alarm-zone-3-42' });
    expect(sent.status).toBe(202);
    const reply = mail('Re: ALARM zone 3', `In-Reply-To: ${sent.json.messageId}\r\nReferences: ${sent.json.messageId}`).replace('Body of Re: ALARM zone 3', 'ACK, on my way\r\n\r\n> Reply ACK to acknowledge.');
    await bed.mail.deliver(reply, alice().email);
    const [got] = await eventually(async () => bodiesFor('Re: ALARM zone 3'), (l) => l.length === 1, 10_000, 'the ack');
    expect(got!.headers['x-mailgate-event']).toBe('ack');
    expect(got!.body).toMatchObject({ event: 'ack', ack: { originalId: sent.json.id, originalMessageId: sent.json.messageId, idempotencyKey: 'alarm-zone-3-42', replier: { address: 'carol@example.test' }, firstLine: 'ACK, on my way' } });
  });

  it('survives hostile messages (broken MIME, huge headers, bad charset, a 50 MB attachment) and keeps delivering', async () => {
    const subjects = [`broken ${Date.now()}`, `headers ${Date.now()}`, `charset ${Date.now()}`, `big ${Date.now()}`, `after ${Date.now()}`];
    const broken = `From: x@example.test\r\nTo: ${alice().email}\r\nSubject: ${subjects[0]}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="never-closed"\r\n\r\n--never-closed\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n--never-`;
    const hugeHeaders = mail(subjects[1]!, Array.from({ length: 2000 }, (_, i) => `X-Junk-${i}: ${'j'.repeat(200)}`).join('\r\n'));
    const badCharset = `From: y@example.test\r\nTo: ${alice().email}\r\nSubject: ${subjects[2]}\r\nContent-Type: text/plain; charset=x-no-such-charset\r\n\r\n\xff\xfe caf\xe9\r\n`;
    const big = `From: z@example.test\r\nTo: ${alice().email}\r\nSubject: ${subjects[3]}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="blob.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.alloc(50 * 1024 * 1024, 7).toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n--b--\r\n`;
    for (const raw of [broken, hugeHeaders, badCharset, big, mail(subjects[4]!)]) await bed.mail.deliver(Buffer.from(raw, 'latin1'), alice().email);
    await eventually(async () => subjects.map((s) => bodiesFor(s).length), (n) => n.every((c) => c === 1), 30_000, 'all five deliveries');
    expect(bodiesFor(subjects[3]!)[0]!.body.message.attachments).toEqual([expect.objectContaining({ filename: 'blob.bin', size: 50 * 1024 * 1024, omitted: 'too_large' })]);
    expect(bodiesFor(subjects[2]!)[0]!.body.message.text).toContain('caf');
    expect(Object.keys(bodiesFor(subjects[1]!)[0]!.body.message.headers).length).toBeGreaterThan(1000);
    expect((await app.api('GET', '/api/v1/watchers/alice-inbox')).json.status.state).toBe('idle');
  }, 60_000);

  it('recovers when the session ends after its token expired: reconnects with a refreshed token', async () => {
    // The client's tokens live 4 s; wait them out, then end the IMAP session from the server side.
    await new Promise((r) => setTimeout(r, 4500));
    const before = (await app.services.credentialRepo.get('alice-m365')).last_refreshed_at;
    await promisify(execFile)('doveadm', ['-c', path.join(bed.mail.dir, 'etc', 'dovecot.conf'), 'kick', alice().email]);
    const subject = `after kick ${Date.now()}`;
    await bed.mail.deliver(mail(subject), alice().email);
    await eventually(async () => bodiesFor(subject), (l) => l.length === 1, 20_000, 'the delivery after reconnect');
    expect((await app.services.credentialRepo.get('alice-m365')).last_refreshed_at! > before!).toBe(true);
  }, 40_000);

  it('notices a UIDVALIDITY change (folder recreated), reports it, and delivers the new folder\'s messages', async () => {
    const tokens = await obtainTokens(bed.auth, { user: alice() });
    const imap = new ImapFlow({ host: '127.0.0.1', port: bed.mail.ports.imap, secure: false, tls: { ca: bed.mail.caPem }, auth: { user: alice().email, accessToken: tokens.access_token }, logger: false });
    await imap.connect();
    let before: { lastUid: number; uidValidity: string };
    try {
      await imap.mailboxCreate('Alarms');
      await imap.append('Alarms', mail(`alarms one ${Date.now()}`));
      expect((await app.api('POST', '/api/v1/watchers', watcher('alarms', { folder: 'Alarms', after: 'delete' }))).status).toBe(201);
      await eventually(async () => hook.received.filter((r) => r.body?.watcher === 'alarms').length, (n) => n === 1, 10_000, 'the first message of Alarms');
      before = (await app.api('GET', '/api/v1/watchers/alarms')).json.status;
      expect(before.lastUid).toBeGreaterThan(0);
      // The watcher deletes after the 2xx: let that finish before pulling the folder from under its session.
      await eventually(async () => ((await imap.status('Alarms', { messages: true })) || { messages: -1 }).messages, (n) => n === 0, 10_000, 'the delivered message deleted upstream');

      // Delete and recreate the folder: its UIDs start over under a new UIDVALIDITY.
      await imap.mailboxDelete('Alarms');
      await imap.mailboxCreate('Alarms');
      await imap.append('Alarms', mail(`alarms two ${Date.now()}`));
    } finally {
      await imap.logout();
    }
    await promisify(execFile)('doveadm', ['-c', path.join(bed.mail.dir, 'etc', 'dovecot.conf'), 'kick', alice().email]);
    await eventually(async () => hook.received.filter((r) => r.body?.watcher === 'alarms').length, (n) => n === 2, 20_000, 'the message of the recreated folder');
    const after = (await app.api('GET', '/api/v1/watchers/alarms')).json.status;
    expect(after.uidValidity).not.toBe(before.uidValidity);
    expect(after.lastError).toMatch(/UIDVALIDITY of Alarms changed from \d+ to \d+/);
    expect((await app.api('DELETE', '/api/v1/watchers/alarms')).status).toBe(204);
  }, 40_000);

  it('misses nothing that arrived while Mailgate was down, and redelivers nothing already acknowledged', async () => {
    const deliveredBefore = hook.received.filter((r) => r.status === 200).length;
    await app.close();
    const subjects = [`while down 1 ${Date.now()}`, `while down 2 ${Date.now()}`];
    for (const s of subjects) await bed.mail.deliver(mail(s), alice().email);
    app = await startMailgateApp({ outboxWorker: true, watchers: true, configure, reopen: app });
    await eventually(async () => subjects.map((s) => bodiesFor(s).length), (n) => n.every((c) => c === 1), 15_000, 'the two messages');
    await new Promise((r) => setTimeout(r, 1000));
    expect(hook.received.filter((r) => r.status === 200).length).toBe(deliveredBefore + 2);
  }, 40_000);

  it('never writes a secret to the log on the watcher path (tokens, webhook secret, client secret)', async () => {
    const row = await app.services.credentialRepo.get('alice-m365');
    const logs = app.logs();
    expect(logs).toContain('inbound message delivered');
    for (const secret of [SECRET, client.clientSecret, app.services.credentialRepo.accessTokenOf(row)!.reveal(), app.services.credentialRepo.refreshTokenOf(row)!.reveal()]) expect(logs).not.toContain(secret);
  });
});
