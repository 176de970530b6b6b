// Proves inbound.maxMessageMegabytes is applied before a message is fetched: over the limit by IMAP RFC822.SIZE or POP3 LIST, it is parked and left in the mailbox while smaller ones are delivered; a POP3 answer that never ends stops at the limit.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectPop3 } from '../../src/inbound/pop3/client.js';
import { isPop3Error } from '../../src/inbound/pop3/errors.js';
import type { Config } from '../../src/config/load.js';
import { useTestbed } from '../testbed/useTestbed.js';
import { addConnected, login, microsoftCredential } from '../support/credentials.js';
import { eventually } from '../support/mailbox.js';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhookReceiver.js';

const bed = useTestbed();
const SECRET = 'whsec-size-0123456789abcdef';
const LIMIT = 64 * 1024;
let app: MailgateApp;
let hook: WebhookReceiver;

const configure = (config: Config): Config => ({ ...config, inbound: { ...config.inbound, maxMessageBytes: LIMIT } });
const raw = (to: string, subject: string, bodyBytes: number) => `From: <dana@example.test>\r\nTo: ${to}\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@example.test>\r\n\r\n${'x'.repeat(76)}\r\n`.repeat(1).concat(`${'y'.repeat(998)}\r\n`.repeat(Math.ceil(bodyBytes / 1000)));

beforeAll(async () => {
  hook = await startWebhookReceiver(SECRET);
  app = await startMailgateApp({ watchers: true, configure });
  const client = bed.auth.addClient({ clientId: 'mailgate-size', clientSecret: 'size-secret', redirectUris: [`${app.url}/oauth/callback`] });
  await addConnected(app, microsoftCredential(bed.auth, client, 'alice-m365'), login(bed.auth.users.alice));
  await addConnected(app, microsoftCredential(bed.auth, client, 'bob-m365', bed.auth.users.bob.email), login(bed.auth.users.bob));
  const common = { host: '127.0.0.1', tlsCa: bed.mail.caPem };
  expect((await app.api('POST', '/api/v1/servers', { ...common, name: 'alice-imap', protocol: 'imap', port: bed.mail.ports.imaps, security: 'tls', username: bed.auth.users.alice.email, auth: { type: 'oauth2', credential: 'alice-m365' } })).status).toBe(201);
  expect((await app.api('POST', '/api/v1/servers', { ...common, name: 'bob-pop3', protocol: 'pop3', port: bed.mail.ports.pop3s, security: 'tls', username: bed.auth.users.bob.email, auth: { type: 'oauth2', credential: 'bob-m365' } })).status).toBe(201);
});
afterAll(async () => {
  await app?.close();
  await hook?.close();
});

const subjects = () => hook.received.map((r) => r.body?.message?.subject);
const deliveries = async (watcher: string) => (await app.api('GET', `/api/v1/watchers/${watcher}/deliveries`)).json.deliveries as { status: string; lastError: string | null; size: number | null }[];

describe('inbound size limit', () => {
  it('IMAP: a message over the limit is parked by its announced size, the next one is delivered', async () => {
    await bed.mail.deliver(raw(bed.auth.users.alice.email, 'imap big', 200 * 1024), bed.auth.users.alice.email);
    await bed.mail.deliver(raw(bed.auth.users.alice.email, 'imap small', 1024), bed.auth.users.alice.email);
    expect((await app.api('POST', '/api/v1/watchers', { name: 'alice-inbox', server: 'alice-imap', webhook: { url: hook.url, secret: SECRET } })).status).toBe(201);
    await eventually(async () => subjects(), (s) => s.includes('imap small'), 20_000, 'the small message');
    const parked = await eventually(async () => (await deliveries('alice-inbox')).filter((d) => d.status === 'parked'), (l) => l.length === 1, 10_000, 'the big one parked');
    expect(parked[0]!.lastError).toMatch(/^the message is 0\.2 MB, over the 0 MB limit \(inbound\.maxMessageMegabytes\): left in the mailbox$/);
    expect(subjects()).not.toContain('imap big');
  });

  it('POP3: a message over the limit is parked by its LIST size (not downloaded), the next one is delivered', async () => {
    await bed.mail.deliver(raw(bed.auth.users.bob.email, 'pop big', 200 * 1024), bed.auth.users.bob.email);
    await bed.mail.deliver(raw(bed.auth.users.bob.email, 'pop small', 1024), bed.auth.users.bob.email);
    expect((await app.api('POST', '/api/v1/watchers', { name: 'bob-pop3', server: 'bob-pop3', pollIntervalSeconds: 5, webhook: { url: hook.url, secret: SECRET } })).status).toBe(201);
    await eventually(async () => subjects(), (s) => s.includes('pop small'), 20_000, 'the small message');
    const parked = await eventually(async () => (await deliveries('bob-pop3')).filter((d) => d.status === 'parked'), (l) => l.length === 1, 10_000, 'the big one parked');
    expect(parked[0]!.lastError).toContain('(inbound.maxMessageMegabytes): left in the mailbox');
    expect(subjects()).not.toContain('pop big');
  });
});

describe('POP3 reads are bounded', () => {
  // A mock where no real peer can misbehave this way: Dovecot always ends its answers. The test says so.
  it('stops reading an answer that never ends at the limit and closes the connection (memory stays bounded)', async () => {
    const hostile = net.createServer((socket) => {
      socket.write('+OK hostile\r\n');
      socket.on('data', (d) => {
        if (d.toString().startsWith('RETR')) {
          socket.write('+OK here it comes\r\n');
          const chunk = Buffer.alloc(64 * 1024, 0x41);
          const pump = () => {
            while (!socket.destroyed && socket.write(chunk));
            if (!socket.destroyed) socket.once('drain', pump);
          };
          pump();
        }
      });
      socket.on('error', () => socket.destroy());
    });
    await new Promise<void>((resolve) => hostile.listen(0, '127.0.0.1', resolve));
    try {
      const pop = await connectPop3({ host: '127.0.0.1', port: (hostile.address() as net.AddressInfo).port, security: 'none' });
      const err = await pop.retrieve(1, { maxBytes: 1024 * 1024 }).catch((e: unknown) => e);
      expect(isPop3Error(err) && err.code).toBe('POP3_TOO_LARGE');
      expect((err as Error).message).toContain('passed 1048576 bytes without its end');
      const after = await pop.noop().catch((e: unknown) => e);
      expect(isPop3Error(after)).toBe(true);
    } finally {
      await new Promise<void>((resolve) => hostile.close(() => resolve()));
    }
  });
});
