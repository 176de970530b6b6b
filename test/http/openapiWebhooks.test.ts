// Proves the OpenAPI document's webhook payload schemas against real deliveries: a watcher's message event (Dovecot over IMAP) and an alert event, each as its receiver got it.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestbed } from '../testbed/useTestbed.js';
import { addConnected, login, microsoftCredential } from '../support/credentials.js';
import { eventually } from '../support/mailbox.js';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhookReceiver.js';

const bed = useTestbed();
const SECRET = 'whsec-openapi-0123456789abcdef';
let app: MailgateApp;
let hook: WebhookReceiver;
let refusingTokens: http.Server;
let schemaOf: (name: string) => (body: unknown) => { valid: boolean; errors: unknown };

beforeAll(async () => {
  hook = await startWebhookReceiver(SECRET);
  // A token endpoint that refuses: the credential using it raises an alert.
  refusingTokens = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid_scope', error_description: 'scope not allowed for this app' })));
  });
  await new Promise<void>((resolve) => refusingTokens.listen(0, '127.0.0.1', resolve));
  app = await startMailgateApp({ watchers: true, configure: (config) => ({ ...config, alerts: { ...config.alerts, evaluateMs: 10 * 60_000, webhook: { url: hook.url, secret: SECRET } } }) });
  const document = (await (await fetch(`${app.url}/api/v1/openapi.json`)).json()) as { components: unknown };
  // The document's components as one schema resource, so their $refs (#/components/schemas/…) resolve as in the document.
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addSchema({ components: document.components }, 'openapi');
  schemaOf = (name) => {
    const validate = ajv.getSchema(`openapi#/components/schemas/${name}`);
    if (!validate) throw new Error(`no schema ${name} in the document`);
    return (body) => ({ valid: validate(body) as boolean, errors: validate.errors });
  };
});
afterAll(async () => {
  await app?.services.alerts.stop();
  await app?.close();
  await hook?.close();
  refusingTokens?.closeAllConnections();
  await new Promise<void>((resolve) => (refusingTokens ? refusingTokens.close(() => resolve()) : resolve()));
});

describe('the OpenAPI webhook schemas', () => {
  it('describe the message event a watcher delivers, attachment and all, field for field', async () => {
    const alice = bed.auth.users.alice;
    const client = bed.auth.addClient({ clientId: 'mailgate-openapi', clientSecret: 'openapi-secret', redirectUris: [`${app.url}/oauth/callback`] });
    await addConnected(app, microsoftCredential(bed.auth, client, 'alice-m365'), login(alice));
    expect((await app.api('POST', '/api/v1/servers', { name: 'alice-imap', host: '127.0.0.1', tlsCa: bed.mail.caPem, protocol: 'imap', port: bed.mail.ports.imaps, security: 'tls', username: alice.email, auth: { type: 'oauth2', credential: 'alice-m365' } })).status).toBe(201);
    expect((await app.api('POST', '/api/v1/watchers', { name: 'alice-inbox', server: 'alice-imap', webhook: { url: hook.url, secret: SECRET } })).status).toBe(201);
    await eventually(() => app.api('GET', '/api/v1/watchers/alice-inbox').then((r) => r.json.status.state), (s) => s === 'idle', 15_000, 'watcher idle');
    const subject = `openapi schema ${Date.now()}`;
    const raw = [
      'From: Dana <dana@example.test>', `To: ${alice.email}`, `Subject: ${subject}`, 'Message-ID: <openapi-schema@example.test>', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="b1"', '',
      '--b1', 'Content-Type: text/plain; charset=utf-8', '', 'The report is attached.', '--b1', 'Content-Type: text/csv; name="r.csv"', 'Content-Disposition: attachment; filename="r.csv"', 'Content-Transfer-Encoding: base64', '', Buffer.from('a,b\n1,2\n').toString('base64'), '--b1--', '',
    ].join('\r\n');
    await bed.mail.deliver(raw, alice.email);
    const delivered = await eventually(async () => hook.received.find((r) => r.body?.message?.subject === subject), (r) => r !== undefined, 30_000, 'the message webhook');
    expect(delivered!.signatureValid).toBe(true);
    expect(delivered!.body.message.attachments).toHaveLength(1);
    const result = schemaOf('MessageEvent')(delivered!.body);
    expect(result.errors).toBeNull();
    expect(result.valid).toBe(true);
    // The schema is closed: a field the document does not name is refused, so a payload that grows fails this test.
    expect(schemaOf('MessageEvent')({ ...delivered!.body, extra: 1 }).valid).toBe(false);
  });

  it('describe the alert event, as raised by a credential whose token request is refused', async () => {
    const base = `http://127.0.0.1:${(refusingTokens.address() as AddressInfo).port}`;
    expect((await app.api('POST', '/api/v1/credentials', { name: 'erp', provider: 'generic', grant: 'client_credentials', tokenUrl: `${base}/token`, clientId: 'erp-app', clientSecret: 'erp-secret', email: 'ops@example.com', scopes: ['mail'] })).status).toBe(201);
    app.services.alerts.start();
    expect((await app.api('GET', '/api/v1/credentials/erp/access-token')).status).toBe(409);
    const delivered = await eventually(async () => hook.received.find((r) => r.body?.event === 'alert.raised' && r.body?.alert?.subject === 'erp'), (r) => r !== undefined, 15_000, 'the alert webhook');
    expect(delivered!.signatureValid).toBe(true);
    const result = schemaOf('AlertEvent')(delivered!.body);
    expect(result.errors).toBeNull();
    expect(result.valid).toBe(true);
    expect(schemaOf('AlertEvent')({ ...delivered!.body, alert: { ...delivered!.body.alert, raisedAt: 5 } }).valid).toBe(false);
  });
});
