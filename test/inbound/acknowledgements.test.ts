// Proves that an upstream acknowledgement is its own recorded step: a message delivered to its webhook but not yet acknowledged when the gateway died (the state such a crash leaves) is marked seen / deleted at the watcher's next start — and nothing is delivered twice.
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectPop3 } from '../../src/inbound/pop3/client.js';
import { useTestbed } from '../testbed/useTestbed.js';
import { obtainTokens } from '../testbed/providerLogin.js';
import { addConnected, login, microsoftCredential } from '../support/credentials.js';
import { eventually } from '../support/mailbox.js';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhookReceiver.js';

const bed = useTestbed();
const SECRET = 'whsec-acks-0123456789abcdef';
let app: MailgateApp;
let hook: WebhookReceiver;
const alice = () => bed.auth.users.alice;
const bob = () => bed.auth.users.bob;
const mail = (to: string, subject: string) => `From: <dana@example.test>\r\nTo: ${to}\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@example.test>\r\n\r\nbody\r\n`;

beforeAll(async () => {
  hook = await startWebhookReceiver(SECRET);
  app = await startMailgateApp({ watchers: true });
  const client = bed.auth.addClient({ clientId: 'mailgate-acks', clientSecret: 'acks-secret', redirectUris: [`${app.url}/oauth/callback`] });
  await addConnected(app, microsoftCredential(bed.auth, client, 'alice-m365'), login(alice()));
  await addConnected(app, microsoftCredential(bed.auth, client, 'bob-m365', bob().email), login(bob()));
  const common = { host: '127.0.0.1', tlsCa: bed.mail.caPem };
  expect((await app.api('POST', '/api/v1/servers', { ...common, name: 'alice-imap', protocol: 'imap', port: bed.mail.ports.imaps, security: 'tls', username: alice().email, auth: { type: 'oauth2', credential: 'alice-m365' } })).status).toBe(201);
  expect((await app.api('POST', '/api/v1/servers', { ...common, name: 'bob-pop3', protocol: 'pop3', port: bed.mail.ports.pop3s, security: 'tls', username: bob().email, auth: { type: 'oauth2', credential: 'bob-m365' } })).status).toBe(201);
});
afterAll(async () => {
  await app?.close();
  await hook?.close();
});

/** A delivery row as the crash leaves it: delivered to the webhook, acknowledgement not recorded. */
async function deliveredUnacknowledged(watcher: string, mailboxKey: string, uid: number | null): Promise<void> {
  const at = new Date().toISOString();
  await app.services.store.db
    .insertInto('inbound_deliveries')
    .values({ id: `crash-${mailboxKey}`, watcher, mailbox_key: mailboxKey, uid, status: 'delivered', event: 'message', message_id: null, subject: 'before the crash', from_address: null, size: 10, attempts: 1, next_attempt_at: at, last_error: null, created_at: at, updated_at: at, delivered_at: at, acknowledged_at: null })
    .execute();
}

describe('acknowledgements after a crash', () => {
  it('IMAP: a delivered, unacknowledged message is marked \\Seen at the next start and not delivered again', async () => {
    const subject = `delivered before the crash ${Date.now()}`;
    await bed.mail.deliver(mail(alice().email, subject), alice().email);
    const imap = new ImapFlow({ host: '127.0.0.1', port: bed.mail.ports.imaps, secure: true, tls: { ca: bed.mail.caPem }, auth: { user: alice().email, accessToken: (await obtainTokens(bed.auth, { user: alice() })).access_token }, logger: false });
    await imap.connect();
    try {
      const box = await imap.mailboxOpen('INBOX');
      const [uid] = (await imap.search({ header: { subject } }, { uid: true })) || [];
      expect(uid).toBeGreaterThan(0);
      // The watcher exists but is off; its checkpoint is past the message, whose delivery is recorded without its ack.
      expect((await app.api('POST', '/api/v1/watchers', { name: 'alice-inbox', server: 'alice-imap', enabled: false, webhook: { url: hook.url, secret: SECRET } })).status).toBe(201);
      await app.services.watcherRepo.resetCheckpoint('alice-inbox', String(box.uidValidity));
      await app.services.store.db.updateTable('watcher_state').set({ last_uid: uid! }).where('watcher', '=', 'alice-inbox').execute();
      await deliveredUnacknowledged('alice-inbox', `imap:${box.uidValidity}:${uid}`, uid!);

      expect((await app.api('PATCH', '/api/v1/watchers/alice-inbox', { enabled: true })).status).toBe(200);
      await eventually(async () => [...((await imap.fetchOne(String(uid), { flags: true }, { uid: true })) || { flags: new Set<string>() }).flags!], (flags) => flags.includes('\\Seen'), 15_000, 'the \\Seen flag');
      const row = await app.services.store.db.selectFrom('inbound_deliveries').select(['acknowledged_at']).where('id', '=', `crash-imap:${box.uidValidity}:${uid}`).executeTakeFirstOrThrow();
      expect(row.acknowledged_at).not.toBeNull();
      expect(hook.received.filter((r) => r.body?.message?.subject === subject)).toEqual([]);
    } finally {
      await imap.logout();
    }
  });

  it('POP3 with after: delete: a delivered message whose DELE never reached QUIT is deleted at the next poll, not delivered again', async () => {
    const subject = `pop delivered before the crash ${Date.now()}`;
    await bed.mail.deliver(mail(bob().email, subject), bob().email);
    const pop = await connectPop3({ host: '127.0.0.1', port: bed.mail.ports.pop3s, security: 'tls', tlsCa: bed.mail.caPem });
    await pop.authXOAuth2(bob().email, (await obtainTokens(bed.auth, { user: bob() })).access_token);
    const [entry] = await pop.uidl();
    await pop.quit();
    expect(entry).toBeDefined();
    expect((await app.api('POST', '/api/v1/watchers', { name: 'bob-pop3', server: 'bob-pop3', after: 'delete', enabled: false, pollIntervalSeconds: 5, webhook: { url: hook.url, secret: SECRET } })).status).toBe(201);
    await deliveredUnacknowledged('bob-pop3', `pop3:${entry!.uid}`, null);

    expect((await app.api('PATCH', '/api/v1/watchers/bob-pop3', { enabled: true })).status).toBe(200);
    const count = async () => {
      const again = await connectPop3({ host: '127.0.0.1', port: bed.mail.ports.pop3s, security: 'tls', tlsCa: bed.mail.caPem });
      await again.authXOAuth2(bob().email, (await obtainTokens(bed.auth, { user: bob() })).access_token);
      const { count: n } = await again.stat();
      await again.quit();
      return n;
    };
    await eventually(count, (n) => n === 0, 20_000, 'the message deleted');
    expect(hook.received.filter((r) => r.body?.message?.subject === subject)).toEqual([]);
  });
});
