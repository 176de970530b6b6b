// Proves webhook secret rotation end to end: a real IMAP watcher on the test bed's Dovecot, a real receiver on 127.0.0.1, and the API (PATCH, reads, audit log).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/load.js';
import { useTestbed } from '../testbed/useTestbed.js';
import { addConnected, login, microsoftCredential } from '../support/credentials.js';
import { FormClient } from '../support/formClient.js';
import { eventually } from '../support/mailbox.js';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';
import { startWebhookReceiver, type ReceivedWebhook, type WebhookReceiver } from '../support/webhookReceiver.js';
import { signersOf } from '../support/webhookSignatures.js';

const bed = useTestbed();
const FIRST = 'whsec-rotation-first-0123456789';
const SECOND = 'whsec-rotation-second-9876543210';
const THIRD = 'whsec-rotation-third-abcdef012345';
const FOURTH = 'whsec-rotation-fourth-543210fedcba';
const ALL_SECRETS = [FIRST, SECOND, THIRD, FOURTH];
/** The configured grace (inbound.webhookSecretGraceHours), short of the default so the test can tell them apart. */
const CONFIGURED_GRACE_MS = 2 * 3_600_000;
const WATCHER = 'rotating';

let app: MailgateApp;
let hook: WebhookReceiver;
const alice = () => bed.auth.users.alice;

const configure = (config: Config): Config => ({ ...config, inbound: { ...config.inbound, webhookSecretGraceMs: CONFIGURED_GRACE_MS } });

beforeAll(async () => {
  hook = await startWebhookReceiver(FIRST);
  app = await startMailgateApp({ watchers: true, configure });
  const client = bed.auth.addClient({ clientId: 'mailgate-rotation', clientSecret: 'rotation-secret', redirectUris: [`${app.url}/oauth/callback`] });
  await addConnected(app, microsoftCredential(bed.auth, client, 'alice-rotation'), login(alice()));
  const imap = { protocol: 'imap', host: '127.0.0.1', port: bed.mail.ports.imap, security: 'starttls', tlsCa: bed.mail.caPem, username: alice().email, auth: { type: 'oauth2', credential: 'alice-rotation' } };
  expect((await app.api('POST', '/api/v1/servers', { ...imap, name: 'alice-imap' })).status).toBe(201);
  expect((await app.api('POST', '/api/v1/watchers', { name: WATCHER, server: 'alice-imap', webhook: { url: hook.url, secret: FIRST } })).status).toBe(201);
  await eventually(() => app.api('GET', `/api/v1/watchers/${WATCHER}`).then((r) => r.json.status.state), (s) => s === 'idle', 20_000, 'watcher idle');
});
afterAll(async () => {
  await app?.close();
  await hook?.close();
});

let counter = 0;
/** Puts a new message in Alice's inbox and returns the webhook request it became. */
async function deliverOne(label: string): Promise<ReceivedWebhook> {
  counter += 1;
  const subject = `${label} ${Date.now()}-${counter}`;
  const headers = [`From: Carol <carol@example.test>`, `To: ${alice().email}`, `Subject: ${subject}`, `Message-ID: <rot-${Date.now()}-${counter}@example.test>`, `Date: ${new Date().toUTCString()}`, 'Content-Type: text/plain; charset=utf-8'];
  await bed.mail.deliver(`${headers.join('\r\n')}\r\n\r\nBody\r\n`, alice().email);
  const [got] = await eventually(async () => hook.received.filter((r) => r.body?.message?.subject === subject), (l) => l.length === 1, 15_000, `the webhook for ${label}`);
  return got!;
}

const signers = (request: ReceivedWebhook) => signersOf(request, ALL_SECRETS);

const patch = (body: unknown) => app.api('PATCH', `/api/v1/watchers/${WATCHER}`, body);
const storedRow = () => app.services.store.db.selectFrom('watchers').selectAll().where('name', '=', WATCHER).executeTakeFirstOrThrow();

describe('webhook secret rotation', () => {
  it('before any rotation a delivery carries one v1, made with the secret the watcher was created with', async () => {
    const request = await deliverOne('before');
    expect(signers(request)).toEqual([FIRST]);
    expect((await app.api('GET', `/api/v1/watchers/${WATCHER}`)).json.previousSecretExpiresAt).toBeNull();
  });

  it('after a PATCH with a new secret, deliveries carry v1=<new>,v1=<old> until the grace ends, then only the new one, and the old one leaves the store', async () => {
    const changed = await patch({ webhook: { secret: SECOND, graceSeconds: 8 } });
    expect(changed.status).toBe(200);
    const expiresAt = Date.parse(changed.json.previousSecretExpiresAt);
    expect(expiresAt - Date.now()).toBeGreaterThan(5000);
    expect(expiresAt - Date.now()).toBeLessThanOrEqual(8000);
    expect((await storedRow()).webhook_previous_secret).not.toBeNull();

    const during = await deliverOne('during');
    expect(Date.now()).toBeLessThan(expiresAt); // else this machine was too slow for the 8 s grace and the test proves nothing
    expect(signers(during)).toEqual([SECOND, FIRST]);
    expect(during.signatureValid).toBe(true); // the receiver still on the old secret accepts it

    await new Promise((r) => setTimeout(r, Math.max(0, expiresAt - Date.now() + 250)));
    const after = await deliverOne('after');
    expect(signers(after)).toEqual([SECOND]);
    expect(after.signatureValid).toBe(false);
    expect((await app.api('GET', `/api/v1/watchers/${WATCHER}`)).json.previousSecretExpiresAt).toBeNull();
    const row = await storedRow();
    expect(row.webhook_previous_secret).toBeNull();
    expect(row.webhook_previous_secret_expires_at).toBeNull();
  });

  it('without graceSeconds the configured grace applies, and a second rotation within it keeps only the newest previous secret', async () => {
    const first = await patch({ webhook: { secret: THIRD } });
    expect(first.status).toBe(200);
    expect(Math.abs(Date.parse(first.json.previousSecretExpiresAt) - (Date.now() + CONFIGURED_GRACE_MS))).toBeLessThan(60_000);
    expect(signers(await deliverOne('third'))).toEqual([THIRD, SECOND]);

    const second = await patch({ webhook: { secret: FOURTH } });
    expect(second.status).toBe(200);
    expect(signers(await deliverOne('fourth'))).toEqual([FOURTH, THIRD]);
  });

  it('graceSeconds 0 without a new secret ends the rotation in progress at once', async () => {
    const ended = await patch({ webhook: { graceSeconds: 0 } });
    expect(ended.status).toBe(200);
    expect(ended.json.previousSecretExpiresAt).toBeNull();
    expect((await storedRow()).webhook_previous_secret).toBeNull();
    expect(signers(await deliverOne('ended'))).toEqual([FOURTH]);
  });

  it('graceSeconds 0 with a new secret (a leaked one) stops the old secret at once: the very next delivery has only the new v1', async () => {
    // a rotation with grace in progress first, so the leak ends two secrets at once
    expect((await patch({ webhook: { secret: FIRST, graceSeconds: 3600 } })).json.previousSecretExpiresAt).not.toBeNull();
    const leaked = await patch({ webhook: { secret: SECOND, graceSeconds: 0 } });
    expect(leaked.status).toBe(200);
    expect(leaked.json.previousSecretExpiresAt).toBeNull();
    const row = await storedRow();
    expect(row.webhook_previous_secret).toBeNull();
    expect(signers(await deliverOne('leak'))).toEqual([SECOND]);
  });

  it('the same secret again is no rotation: nothing signs twice', async () => {
    const same = await patch({ webhook: { secret: SECOND } });
    expect(same.status).toBe(200);
    expect(same.json.previousSecretExpiresAt).toBeNull();
    expect(signers(await deliverOne('same'))).toEqual([SECOND]);
  });

  it('refuses a graceSeconds that is not whole seconds from 0 to 30 days, naming the field and the use of 0', async () => {
    for (const graceSeconds of [-1, 1.5, '60', 2_592_001]) {
      const refused = await patch({ webhook: { secret: THIRD, graceSeconds } });
      expect(refused.status).toBe(400);
      expect(refused.json.error).toEqual({ code: 'INPUT_INVALID', message: expect.stringMatching(/^webhook\.graceSeconds: expected whole seconds, 0-2592000 \(0 ends the old secret at once/) });
    }
    expect((await patch({ webhook: 'not an object' })).status).toBe(400);
    // nothing changed on the way
    expect(signers(await deliverOne('refused'))).toEqual([SECOND]);
  });

  it('records each rotation in the audit log with its grace, and no secret reaches an API read, the audit log or the log', async () => {
    const entries = (await app.api('GET', `/api/v1/audit?target=${WATCHER}&limit=100`)).json.entries as { action: string; actor: string; details: Record<string, unknown> }[];
    const rotations = entries.filter((e) => e.action === 'watcher.rotateSecret');
    // newest first: the leak (0), the re-rotation with an hour, FOURTH and THIRD (configured grace), SECOND (8 s)
    expect(rotations.map((e) => e.details.graceSeconds)).toEqual([0, 3600, CONFIGURED_GRACE_MS / 1000, CONFIGURED_GRACE_MS / 1000, 8]);
    expect(rotations.every((e) => e.actor === 'apikey:test-admin')).toBe(true);
    expect(rotations[1]!.details.previousSecretExpiresAt).toEqual(expect.any(String));
    expect(entries.filter((e) => e.action === 'watcher.shortenSecretGrace')).toHaveLength(1);

    const reads = [JSON.stringify(entries), (await app.api('GET', '/api/v1/watchers')).text, (await app.api('GET', `/api/v1/watchers/${WATCHER}`)).text, app.logs()];
    for (const text of reads) for (const secret of ALL_SECRETS) expect(text).not.toContain(secret);
  });

  it('the watcher\'s web page says a rotation is in progress and until when, and nothing once it ends', async () => {
    await app.services.admins.create('admin', 'correct horse battery staple');
    const browser = new FormClient(app.url);
    expect((await browser.signIn('admin', 'correct horse battery staple', '/inbound')).status).toBe(303);
    const until = (await patch({ webhook: { secret: THIRD, graceSeconds: 3600 } })).json.previousSecretExpiresAt as string;
    const during = await browser.request('GET', `/inbound/${WATCHER}`);
    expect(during.status).toBe(200);
    expect(during.text).toContain('a secret rotation is in progress: requests are signed with the new secret and, until');
    expect(during.text).toContain(`<time datetime="${until}"`);
    expect((await patch({ webhook: { graceSeconds: 0 } })).status).toBe(200);
    const after = await browser.request('GET', `/inbound/${WATCHER}`);
    expect(after.text).not.toContain('rotation is in progress');
    expect(after.text).toContain('(requests signed with the stored secret)');
    for (const page of [during.text, after.text]) for (const secret of ALL_SECRETS) expect(page).not.toContain(secret);
  });
});
