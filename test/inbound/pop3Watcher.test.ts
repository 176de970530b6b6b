// Proves the POP3 watcher against the test bed's Dovecot: XOAUTH2 login, delivery by UIDL once only, and deletion after the webhook's 2xx.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { TestClient } from '../testbed/authServer.js';
import { useTestbed } from '../testbed/useTestbed.js';
import { addConnected, login, microsoftCredential } from '../support/credentials.js';
import { eventually } from '../support/mailbox.js';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhookReceiver.js';
import { connectPop3 } from '../../src/inbound/pop3/client.js';
import { obtainTokens } from '../testbed/providerLogin.js';

const bed = useTestbed();
const SECRET = 'whsec-pop3-0123456789abcdef';
let app: MailgateApp;
let client: TestClient;
let hook: WebhookReceiver;
const bob = () => bed.auth.users.bob;

beforeAll(async () => {
  hook = await startWebhookReceiver(SECRET);
  app = await startMailgateApp({ watchers: true });
  client = bed.auth.addClient({ clientId: 'mailgate-pop3', clientSecret: 'pop3-secret', redirectUris: [`${app.url}/oauth/callback`] });
  await addConnected(app, microsoftCredential(bed.auth, client, 'bob-m365', bob().email), login(bob()));
});
afterAll(async () => {
  await app?.close();
  await hook?.close();
});

async function stat(): Promise<number> {
  const pop = await connectPop3({ host: '127.0.0.1', port: bed.mail.ports.pop3s, security: 'tls', tlsCa: bed.mail.caPem });
  await pop.authXOAuth2(bob().email, (await obtainTokens(bed.auth, { user: bob() })).access_token);
  const { count } = await pop.stat();
  await pop.quit();
  return count;
}

it('polls POP3 with XOAUTH2, delivers each message once by UIDL, and deletes it only after the 2xx', async () => {
  const raw = (subject: string) => `From: Dana <dana@example.test>\r\nTo: ${bob().email}\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\s/g, '-')}@example.test>\r\n\r\nhello\r\n`;
  hook.respond(500);
  await bed.mail.deliver(raw('pop one'), bob().email);
  await bed.mail.deliver(raw('pop two'), bob().email);
  expect((await app.api('POST', '/api/v1/servers', { name: 'bob-pop3', protocol: 'pop3', host: '127.0.0.1', port: bed.mail.ports.pop3s, security: 'tls', tlsCa: bed.mail.caPem, username: bob().email, auth: { type: 'oauth2', credential: 'bob-m365' } })).status).toBe(201);
  const created = await app.api('POST', '/api/v1/watchers', { name: 'bob-pop3', server: 'bob-pop3', after: 'delete', pollIntervalSeconds: 5, webhook: { url: hook.url, secret: SECRET } });
  expect(created.status, created.text).toBe(201);
  expect(created.json.mode).toBe('poll');

  // The first POST of "pop one" got 500: it stays on the server until its retry succeeds; "pop two" goes at once.
  const received = await eventually(async () => hook.received.filter((r) => r.status === 200), (ok) => ok.length === 2, 20_000, 'both messages delivered');
  expect(received.map((r) => r.body.message.subject).sort()).toEqual(['pop one', 'pop two']);
  expect(received.every((r) => r.signatureValid && r.body.mailbox.uid === null)).toBe(true);
  await eventually(stat, (n) => n === 0, 15_000, 'the mailbox emptied by DELE after delivery');

  await bed.mail.deliver(raw('pop three'), bob().email);
  await eventually(async () => hook.received.filter((r) => r.status === 200).length, (n) => n === 3, 20_000, 'the third message');
  await new Promise((r) => setTimeout(r, 6000)); // one more poll: nothing is delivered twice
  expect(hook.received.filter((r) => r.status === 200)).toHaveLength(3);
  const status = (await app.api('GET', '/api/v1/watchers/bob-pop3')).json.status;
  expect(status).toMatchObject({ delivered: 3, parked: 0 });
}, 60_000);
