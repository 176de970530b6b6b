// Proves the SMTP relay end to end: real clients (Python smtplib, curl, msmtp) through Mailgate's relay and outbox to Dovecot submission with an OAuth2 credential, and every refusal with its exact reply.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RelayListenerConfig } from '../../src/config/load.js';
import { getFreePort } from '../testbed/ports.js';
import { useTestbed } from '../testbed/useTestbed.js';
import { addConnected, login, microsoftCredential } from '../support/credentials.js';
import { eventually, readInbox } from '../support/mailbox.js';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';
import { curlSend, message, msmtpSend, smtplib, type SmtplibResult } from './clients.js';

const bed = useTestbed();
let app: MailgateApp;
const ports = { starttls: 0, implicit: 0, lan: 0, elsewhere: 0, single: 0 };
let caFile: string;
const alice = () => bed.auth.users.alice;
const bob = () => bed.auth.users.bob;
const PASSWORD = 'relay-password-for-tests';
const SECRET_MARKER = 'body-marker-never-logged';

function listener(port: number, overrides: Partial<RelayListenerConfig> = {}): RelayListenerConfig {
  return { listen: { host: '127.0.0.1', port }, tls: 'starttls', certFile: undefined, keyFile: undefined, allowInsecureAuth: false, maxConnections: 50, maxConnectionsPerClient: 20, requireAuth: true, allowUnauthenticatedFrom: [], sender: undefined, ...overrides };
}

beforeAll(async () => {
  for (const key of Object.keys(ports) as (keyof typeof ports)[]) ports[key] = await getFreePort();
  app = await startMailgateApp({
    outboxWorker: true,
    relay: true,
    configure: (config) => ({
      ...config,
      outbox: { ...config.outbox, retryBaseMs: 100, retryMaxMs: 500 },
      relay: {
        ...config.relay,
        listeners: [
          listener(ports.starttls),
          listener(ports.implicit, { tls: 'implicit' }),
          // The office LAN of the issue: a scanner that cannot log in, bound to one sender (here: loopback is the LAN).
          listener(ports.lan, { tls: 'none', requireAuth: false, allowUnauthenticatedFrom: ['127.0.0.1/32'], sender: 'alerts' }),
          listener(ports.elsewhere, { requireAuth: false, allowUnauthenticatedFrom: ['192.0.2.0/24'], sender: 'alerts' }),
          listener(ports.single, { maxConnectionsPerClient: 1 }),
        ],
        maxMessageBytes: 64 * 1024,
        maxRecipients: 3,
        messagesPerMinute: 4,
        login: { maxFailures: 3, lockoutMs: 60_000 },
      },
    }),
  });
  const client = bed.auth.addClient({ clientId: 'mailgate-relay', clientSecret: 'relay-secret', redirectUris: [`${app.url}/oauth/callback`] });
  await addConnected(app, microsoftCredential(bed.auth, client, 'alice-m365'), login(alice()));
  const submission = { protocol: 'smtp', host: '127.0.0.1', port: bed.mail.ports.submission, security: 'starttls', tlsCa: bed.mail.caPem };
  expect((await app.api('POST', '/api/v1/servers', { ...submission, name: 'dovecot-oauth', username: alice().email, auth: { type: 'oauth2', credential: 'alice-m365' } })).status).toBe(201);
  expect((await app.api('POST', '/api/v1/senders', { name: 'alerts', primary: 'dovecot-oauth', from: `Alarm Centre <${alice().email}>` })).status).toBe(201);
  for (const name of ['scanner', 'curl-client', 'msmtp-client', 'refused', 'limits', 'limited', 'locked-out']) {
    await app.services.relayAccounts.add({ name, sender: 'alerts', allowFrom: ['@allowed.example.test'], password: PASSWORD });
  }
  caFile = app.services.listeners.list().find((l) => l.id === 'relay.listeners[0]')!.certificate!.file;
});
afterAll(async () => app?.close());

const dataReply = (result: SmtplibResult) => result.steps.find((s) => s.step === 'data');
const queuedId = (text: string | undefined) => /^2\.0\.0 queued as ([0-9a-z]+)$/.exec(text ?? '')?.[1];
const settled = (id: string) => eventually(() => app.api('GET', `/api/v1/messages/${id}`).then((r) => r.json), (m) => m.status === 'sent' || m.status === 'failed', 20_000, `message ${id} to settle`);
const inboxWith = (user: { email: string; password: string }, subject: string) => eventually(() => readInbox(bed, user), (all) => all.some((m) => m.subject === subject), 15_000, `"${subject}" in ${user.email}'s INBOX`).then((all) => all.find((m) => m.subject === subject)!);
const lastStep = (result: SmtplibResult) => result.steps[result.steps.length - 1]!;

describe('relay delivery with real clients', () => {
  it('takes a message from Python smtplib over STARTTLS with AUTH PLAIN and LOGIN; it arrives as sent, and the Bcc recipient gets it without a Bcc header', async () => {
    for (const mechanism of ['PLAIN', 'LOGIN'] as const) {
      const subject = `smtplib ${mechanism} ${Date.now()}`;
      const messageId = `<smtplib-${mechanism}-${Date.now()}@client.example.test>`;
      const data = message({ From: `Scanner <${alice().email}>`, To: `Bob <${bob().email}>`, Subject: subject, 'Message-ID': messageId, Date: new Date().toUTCString(), 'X-Device': 'scanner-7' }, `Scan attached.\n${SECRET_MARKER}`);
      const result = await smtplib({ port: ports.starttls, security: 'starttls', caFile, auth: { mechanism, user: 'scanner', password: PASSWORD }, messages: [{ from: alice().email, to: [bob().email, alice().email], data }] });
      expect(result.steps.find((s) => s.step === 'auth')).toMatchObject({ code: 235 });
      const reply = dataReply(result);
      expect(reply?.code, JSON.stringify(result)).toBe(250);
      const id = queuedId(reply?.text);
      expect(id, reply?.text).toBeDefined();

      const view = await settled(id!);
      expect(view).toMatchObject({ status: 'sent', sender: 'alerts', server: 'dovecot-oauth', messageId });
      const atBob = await inboxWith(bob(), subject);
      expect(atBob.messageId).toBe(messageId);
      expect(atBob.from?.value[0]).toMatchObject({ address: alice().email, name: 'Scanner' });
      expect(atBob.headers.get('x-device')).toBe('scanner-7');
      expect(atBob.text?.trim()).toBe(`Scan attached.\n${SECRET_MARKER}`);
      const atAlice = await inboxWith(alice(), subject); // the Bcc recipient: in the envelope only
      expect(atAlice.messageId).toBe(messageId);
      expect(atAlice.headers.has('bcc')).toBe(false);
      const relayed = bed.mail.sink.received.find((m) => m.raw.toString().includes(subject))!;
      expect(relayed.raw.toString()).not.toMatch(/^Bcc:/im);

      const summary = (await app.services.messages.summaries([id!])).get(id!)!;
      expect(summary).toMatchObject({ subject, from: { address: alice().email, name: 'Scanner' }, to: [{ address: bob().email, name: 'Bob' }], bcc: [{ address: alice().email }], relayed: { account: expect.any(String), client: '127.0.0.1' }, bodyDropped: false });
    }
  });

  it('adds Message-ID and Date only when the message has none, and tracks the Message-ID it added', async () => {
    const subject = `no ids ${Date.now()}`;
    const result = await smtplib({ port: ports.implicit, security: 'implicit', caFile, auth: { mechanism: 'PLAIN', user: 'scanner', password: PASSWORD }, messages: [{ from: alice().email, to: [bob().email], data: message({ From: alice().email, To: bob().email, Subject: subject }, 'plain body') }] });
    const id = queuedId(dataReply(result)?.text);
    const view = await settled(id!);
    expect(view.messageId).toBe(`<mg.${id}@example.test>`);
    const received = await inboxWith(bob(), subject);
    expect(received.messageId).toBe(view.messageId);
    expect(received.date).toBeInstanceOf(Date);
    const raw = bed.mail.sink.received.find((m) => m.raw.toString().includes(subject))!.raw.toString();
    expect(raw.match(/^Message-ID:/gim)).toHaveLength(1);
    expect(raw.match(/^Date:/gim)).toHaveLength(1);
  });

  it('gives a relayed message the priority its program set: X-Priority 1 goes as high, Importance: low as low', async () => {
    const auth = { mechanism: 'PLAIN' as const, user: 'msmtp-client', password: PASSWORD };
    const ids: (string | undefined)[] = [];
    for (const headers of [{ 'X-Priority': '1 (Highest)' }, { Importance: 'low' }] as Record<string, string>[]) {
      const result = await smtplib({ port: ports.implicit, security: 'implicit', caFile, auth, messages: [{ from: alice().email, to: [bob().email], data: message({ From: alice().email, To: bob().email, Subject: `priority ${Date.now()}`, ...headers }, 'body') }] });
      ids.push(queuedId(dataReply(result)?.text));
    }
    const views = await Promise.all(ids.map((id) => app.api('GET', `/api/v1/messages/${id!}`).then((r) => r.json)));
    expect(views.map((v) => v.priority)).toEqual(['high', 'low']);
  });

  it('takes a message from curl over smtp:// with --ssl-reqd and over smtps://', async () => {
    for (const url of [`smtp://127.0.0.1:${ports.starttls}`, `smtps://127.0.0.1:${ports.implicit}`]) {
      const subject = `curl ${url.split(':')[0]} ${Date.now()}`;
      const sent = await curlSend({ url, caFile, user: 'curl-client', password: PASSWORD, from: alice().email, to: [bob().email, alice().email], data: message({ From: alice().email, To: bob().email, Subject: subject, 'Message-ID': `<curl-${Date.now()}@client.example.test>` }, 'via curl') });
      expect(sent.code, sent.stderr).toBe(0);
      const id = /< 250 2\.0\.0 queued as ([0-9a-z]+)/.exec(sent.stderr)?.[1];
      expect(id, sent.stderr).toBeDefined();
      expect((await settled(id!)).status).toBe('sent');
      expect((await inboxWith(bob(), subject)).text?.trim()).toBe('via curl');
      expect((await inboxWith(alice(), subject)).headers.has('bcc')).toBe(false);
    }
  });

  it('takes a message from msmtp (Debian) configured like a device: STARTTLS, AUTH PLAIN, password from passwordeval', async () => {
    const subject = `msmtp ${Date.now()}`;
    const sent = await msmtpSend({ port: ports.starttls, caFile, user: 'msmtp-client', password: PASSWORD, from: alice().email, to: [bob().email], data: message({ From: alice().email, To: bob().email, Subject: subject }, 'via msmtp') });
    expect(sent.code, sent.stderr).toBe(0);
    const id = /queued as ([0-9a-z]+)/.exec(sent.stderr)?.[1];
    expect(id, sent.stderr).toBeDefined();
    expect((await settled(id!)).status).toBe('sent');
    expect((await inboxWith(bob(), subject)).text?.trim()).toBe('via msmtp');
  });

  it('accepts an unauthenticated submission from an allowed network, bound to the listener sender (AUTH-less, no TLS, loopback)', async () => {
    const subject = `lan ${Date.now()}`;
    const ok = await smtplib({ port: ports.lan, security: 'none', messages: [{ from: alice().email, to: [bob().email], data: message({ From: alice().email, To: bob().email, Subject: subject }, 'from the LAN') }] });
    const id = queuedId(dataReply(ok)?.text);
    expect(id, JSON.stringify(ok)).toBeDefined();
    expect((await settled(id!)).sender).toBe('alerts');
    expect((await inboxWith(bob(), subject)).text?.trim()).toBe('from the LAN');
    // Bound to the sender's From only: the accounts' allow-list does not apply to unauthenticated mail.
    const other = await smtplib({ port: ports.lan, security: 'none', messages: [{ from: 'someone@allowed.example.test', to: [bob().email], data: 'x' }] });
    expect(lastStep(other)).toMatchObject({ step: 'mail', code: 550, text: `5.7.1 Sender <someone@allowed.example.test> is not allowed for unauthenticated submissions here; allowed: ${alice().email}` });
  });
});

describe('relay refusals', () => {
  it('answers a wrong password and an unknown account with the same 535 5.7.8', async () => {
    const wrong = await smtplib({ port: ports.starttls, security: 'starttls', caFile, auth: { mechanism: 'PLAIN', user: 'refused', password: 'not-the-password' } });
    const unknown = await smtplib({ port: ports.starttls, security: 'starttls', caFile, auth: { mechanism: 'LOGIN', user: 'no-such-account', password: PASSWORD } });
    for (const result of [wrong, unknown]) expect(lastStep(result)).toEqual({ step: 'auth', code: 535, text: '5.7.8 Authentication credentials invalid' });
  });

  it('refuses a From header and an envelope sender the account may not use with 550 5.7.1 naming what is allowed', async () => {
    const auth = { mechanism: 'PLAIN' as const, user: 'refused', password: PASSWORD };
    const header = await smtplib({ port: ports.starttls, security: 'starttls', caFile, auth, messages: [{ from: alice().email, to: [bob().email], data: message({ From: 'Boss <ceo@example.test>', To: bob().email, Subject: 'urgent' }, 'pay this') }] });
    expect(lastStep(header)).toEqual({ step: 'data', code: 550, text: `5.7.1 From <ceo@example.test> is not allowed for relay account refused; allowed: ${alice().email}, @allowed.example.test` });
    const envelope = await smtplib({ port: ports.starttls, security: 'starttls', caFile, auth, messages: [{ from: 'ceo@example.test', to: [bob().email], data: 'x' }] });
    expect(lastStep(envelope)).toEqual({ step: 'mail', code: 550, text: `5.7.1 Sender <ceo@example.test> is not allowed for relay account refused; allowed: ${alice().email}, @allowed.example.test` });
    // The allow-list's domain is accepted.
    const allowed = await smtplib({ port: ports.starttls, security: 'starttls', caFile, auth, messages: [{ from: 'ops@allowed.example.test', to: [bob().email], data: message({ From: 'ops@allowed.example.test', To: bob().email, Subject: `allowed ${Date.now()}` }, 'ok') }] });
    expect(dataReply(allowed)?.code).toBe(250);
  });

  it('refuses the recipient past relay.maxRecipients with 452 4.5.3 and a message over the size limit with 552 5.3.4', async () => {
    const auth = { mechanism: 'PLAIN' as const, user: 'limits', password: PASSWORD };
    const many = await smtplib({ port: ports.starttls, security: 'starttls', caFile, auth, messages: [{ from: alice().email, to: ['a@example.test', 'b@example.test', 'c@example.test', 'd@example.test'], data: 'x' }] });
    expect(many.steps.filter((s) => s.step === 'rcpt').map((s) => s.code)).toEqual([250, 250, 250, 452]);
    expect(lastStep(many).text).toMatch(/^4\.5\.3 /);
    const big = await smtplib({ port: ports.starttls, security: 'starttls', caFile, auth, messages: [{ from: alice().email, to: [bob().email], data: message({ From: alice().email, To: bob().email, Subject: 'big' }, 'x'.repeat(70 * 1024)) }] });
    expect(lastStep(big)).toMatchObject({ step: 'data', code: 552 });
    expect(lastStep(big).text).toMatch(/^5\.3\.4 /);
  });

  it('defers the message past relay.messagesPerMinute with 450 4.7.0', async () => {
    const messages = Array.from({ length: 5 }, (_, i) => ({ from: alice().email, to: [bob().email], data: message({ From: alice().email, To: bob().email, Subject: `limited ${i}` }, 'x') }));
    const result = await smtplib({ port: ports.starttls, security: 'starttls', caFile, auth: { mechanism: 'PLAIN', user: 'limited', password: PASSWORD }, messages });
    expect(result.steps.filter((s) => s.step === 'data').map((s) => s.code)).toEqual([250, 250, 250, 250]);
    expect(lastStep(result)).toMatchObject({ step: 'mail', code: 450 });
    expect(lastStep(result).text).toMatch(/^4\.7\.0 Too many messages: at most 4 a minute \(relay\.messagesPerMinute\); try again in \d+ s$/);
  });

  it('refuses unauthenticated MAIL FROM with 530 5.7.0, also on a listener whose allowed networks do not include the client', async () => {
    for (const port of [ports.starttls, ports.elsewhere]) {
      const result = await smtplib({ port, security: 'starttls', caFile, messages: [{ from: alice().email, to: [bob().email], data: 'x' }] });
      expect(lastStep(result)).toEqual({ step: 'mail', code: 530, text: '5.7.0 Authentication required' });
    }
  });

  it('refuses a connection past maxConnectionsPerClient with 421 4.7.0 and closes it', async () => {
    const first = net.connect(ports.single, '127.0.0.1');
    await new Promise<void>((resolve) => first.once('data', () => resolve()));
    const second = net.connect(ports.single, '127.0.0.1');
    let text = '';
    second.on('data', (d: Buffer) => (text += d.toString()));
    await new Promise<void>((resolve) => second.once('close', () => resolve()));
    first.destroy();
    expect(text).toBe('421 4.7.0 Too many connections from 127.0.0.1 (relay.listeners[4].maxConnectionsPerClient); try again later\r\n');
  });

  it('locks out an address after repeated failed logins: 454 4.7.0 even for the right password, while other addresses still log in', async () => {
    const from = (password: string) => smtplib({ port: ports.starttls, security: 'starttls', caFile, source: '127.0.0.2', auth: { mechanism: 'PLAIN', user: 'locked-out', password } });
    for (let i = 0; i < 3; i++) expect(lastStep(await from('wrong-password-guess')).code).toBe(535);
    expect(lastStep(await from(PASSWORD))).toEqual({ step: 'auth', code: 454, text: '4.7.0 Too many failed logins; temporarily locked, try again in 1 minute' });
    const elsewhere = await smtplib({ port: ports.starttls, security: 'starttls', caFile, auth: { mechanism: 'PLAIN', user: 'locked-out', password: PASSWORD } });
    expect(lastStep(elsewhere)).toMatchObject({ step: 'auth', code: 235 });
  });

  it('counts logins and messages in the metrics, and logs one line per accepted message without content or passwords', async () => {
    const logins = await app.services.metrics.listenerLogins.get();
    const outcome = (o: string) => logins.values.find((v) => v.labels.listener === 'smtp-relay' && v.labels.outcome === o)?.value ?? 0;
    expect(outcome('success')).toBeGreaterThan(0);
    expect(outcome('invalid')).toBeGreaterThan(0);
    expect(outcome('locked')).toBeGreaterThan(0);
    const logs = app.logs();
    expect(logs).not.toContain(PASSWORD);
    expect(logs).not.toContain('not-the-password');
    expect(logs).not.toContain('wrong-password-guess');
    expect(logs).not.toContain(SECRET_MARKER);
    expect(logs).not.toContain(Buffer.from(`\0scanner\0${PASSWORD}`).toString('base64'));
    const accepted = logs
      .split('\n')
      .filter((l) => l.includes('relay accepted a message'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(accepted.length).toBeGreaterThanOrEqual(6);
    expect(accepted[0]).toMatchObject({ id: expect.any(String), account: 'scanner', client: '127.0.0.1', size: expect.any(Number), recipients: 2 });
  });
});
