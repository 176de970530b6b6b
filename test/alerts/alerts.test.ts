// Proves alerts against the test bed: raised by real failures (revoked grant, rotated secret, expiring secret, refused mail), delivered by webhook, e-mail and command, repeated, resolved; and `mailgate status` exit codes.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/load.js';
import type { TestClient } from '../testbed/authServer.js';
import { useTestbed } from '../testbed/useTestbed.js';
import { runCli, tempDir } from '../support/cli.js';
import { addConnected, connect, login, microsoftCredential } from '../support/credentials.js';
import { eventually } from '../support/mailbox.js';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhookReceiver.js';

const bed = useTestbed();
const SECRET = 'whsec-alerts-0123456789abcdef';
let app: MailgateApp;
let client: TestClient;
let hook: WebhookReceiver;
let hookDir: string;

beforeAll(async () => {
  hook = await startWebhookReceiver(SECRET);
  hookDir = tempDir('mailgate-alert-hook-');
  const script = path.join(hookDir, 'page.sh');
  // The command channel: writes the environment it was given, one file per call.
  fs.writeFileSync(script, `#!/bin/sh\nenv > "${hookDir}/call-$(date +%s%N).env"\n`, { mode: 0o755 });
  app = await startMailgateApp({
    outboxWorker: true,
    configure: (config: Config): Config => ({
      ...config,
      outbox: { ...config.outbox, retryBaseMs: 100, retryMaxMs: 200, maxAttempts: 1 },
      alerts: { ...config.alerts, webhook: { url: hook.url, secret: SECRET }, email: { sender: 'alerts-sender', to: ['ops@example.test'] }, command: { path: script, args: [], timeoutMs: 5000 }, repeatMs: 60_000 },
    }),
  });
  client = bed.auth.addClient({ clientId: 'mailgate-alerts', clientSecret: 'alerts-secret-1', redirectUris: [`${app.url}/oauth/callback`] });
  const carol = bed.mail.passwordUser;
  const submission = { protocol: 'smtp', host: '127.0.0.1', port: bed.mail.ports.submission, security: 'starttls', tlsCa: bed.mail.caPem };
  expect((await app.api('POST', '/api/v1/servers', { ...submission, name: 'carol-smtp', username: carol.email, auth: { type: 'password', password: carol.password } })).status).toBe(201);
  expect((await app.api('POST', '/api/v1/senders', { name: 'alerts-sender', primary: 'carol-smtp', from: carol.email })).status).toBe(201);
});
afterAll(async () => {
  await app?.close();
  await hook?.close();
});

const alertHooks = (kind: string, event: string) => hook.received.filter((r) => r.body?.alert?.kind === kind && r.body?.event === `alert.${event}`);
const commandCalls = () => fs.readdirSync(hookDir).filter((f) => f.endsWith('.env')).map((f) => fs.readFileSync(path.join(hookDir, f), 'utf8'));

describe('alerts', () => {
  it('raises needs_reauthorization when a grant is revoked, on every channel, with the fixing link; repeats it; resolves it after reconnecting', async () => {
    await addConnected(app, microsoftCredential(bed.auth, client, 'm365'), login(bed.auth.users.alice));
    bed.auth.revokeGrants(bed.auth.users.alice.email, { clientId: client.clientId });
    expect((await app.api('POST', '/api/v1/credentials/m365/refresh')).status).toBe(409);

    expect(await app.services.alerts.evaluate()).toMatchObject({ raised: 1 });
    const [raised] = alertHooks('needs_reauthorization', 'raised');
    expect(raised!.signatureValid).toBe(true);
    expect(raised!.body.alert).toMatchObject({ subject: 'm365', link: `${app.url}/credentials/m365/connect`, message: expect.stringContaining('sign in again') });

    const call = commandCalls().find((c) => c.includes('MAILGATE_ALERT_KIND=needs_reauthorization'))!;
    expect(call).toContain('MAILGATE_ALERT_CREDENTIAL=m365');
    expect(call).toContain(`MAILGATE_ALERT_LINK=${app.url}/credentials/m365/connect`);
    expect(call).not.toContain('MAILGATE_MASTER_KEY');

    const mail = await eventually(async () => bed.mail.sink.received.filter((m) => m.to.includes('ops@example.test') && m.raw.toString().includes('needs reauthorization')), (l) => l.length === 1, 15_000, 'the alert e-mail');
    expect(mail[0]!.raw.toString()).toContain(`${app.url}/credentials/m365/connect`);

    const listed = (await app.api('GET', '/api/v1/alerts?status=active')).json.alerts;
    expect(listed).toEqual([expect.objectContaining({ kind: 'needs_reauthorization', subject: 'm365', status: 'active', notifiedCount: 1 })]);

    // Still broken an hour later: repeated (back-off), not raised again.
    expect(await app.services.alerts.evaluate(Date.now() + 61_000)).toMatchObject({ raised: 0, repeated: 1 });
    expect(alertHooks('needs_reauthorization', 'repeated')).toHaveLength(1);

    const { status } = await connect(app, 'm365', login(bed.auth.users.alice));
    expect(status).toBe(200);
    expect(await app.services.alerts.evaluate()).toMatchObject({ resolved: 1 });
    expect(alertHooks('needs_reauthorization', 'resolved')).toHaveLength(1);
    expect((await app.api('GET', '/api/v1/alerts?status=active')).json.alerts).toEqual([]);
  });

  it('raises client_secret_invalid when the secret is rotated at the provider, and resolves it when the new one is pasted', async () => {
    bed.auth.setClientSecret(client.clientId, 'alerts-secret-2');
    expect((await app.api('POST', '/api/v1/credentials/m365/refresh')).status).toBe(409);
    await app.services.alerts.evaluate();
    expect(alertHooks('client_secret_invalid', 'raised')[0]!.body.alert.message).toContain('AADSTS7000215');
    expect((await app.api('PATCH', '/api/v1/credentials/m365', { clientSecret: 'alerts-secret-2' })).status).toBe(200);
    expect((await app.api('POST', '/api/v1/credentials/m365/refresh')).status).toBe(200);
    await app.services.alerts.evaluate();
    expect(alertHooks('client_secret_invalid', 'resolved')).toHaveLength(1);
  });

  it('raises refresh_failing after three failed refreshes while the provider is down, and resolves it when a refresh succeeds', async () => {
    await bed.auth.suspend();
    try {
      for (let i = 0; i < 3; i++) expect((await app.api('POST', '/api/v1/credentials/m365/refresh')).status).toBe(502);
    } finally {
      await bed.auth.resume();
    }
    await app.services.alerts.evaluate();
    expect(alertHooks('refresh_failing', 'raised')[0]!.body.alert.message).toMatch(/failed 3 times in a row \(cannot reach the token endpoint/);
    expect((await app.api('POST', '/api/v1/credentials/m365/refresh')).status).toBe(200);
    await app.services.alerts.evaluate();
    expect(alertHooks('refresh_failing', 'resolved')).toHaveLength(1);
  });

  it('warns 30, 7 and 1 days before a client secret expires, one alert per stage', async () => {
    const in5days = new Date(Date.now() + 5 * 86_400_000).toISOString();
    expect((await app.api('PATCH', '/api/v1/credentials/m365', { clientSecretExpiresAt: in5days })).status).toBe(200);
    await app.services.alerts.evaluate();
    const [expiring] = alertHooks('client_secret_expiring', 'raised');
    expect(expiring!.body.alert).toMatchObject({ subject: 'm365:7', message: expect.stringContaining('expires in 5 days') });
    // Evaluating "4.5 days later" would also see the alert e-mails still queued as stuck: let them go first.
    await eventually(() => app.services.outbox.depth(), (d) => d.queued === 0, 15_000, 'the alert e-mails sent');
    await app.services.alerts.evaluate(Date.now() + 4.5 * 86_400_000);
    expect(alertHooks('client_secret_expiring', 'raised').map((r) => r.body.alert.subject)).toEqual(['m365:7', 'm365:1']);
  });

  it('raises send_failing when mail is refused, and `mailgate status` exits 1 until nothing needs a person', async () => {
    const env = { MAILGATE_MASTER_KEY: app.services.masterKey };
    bed.mail.sink.rejectRecipients.add('refused@example.test');
    const key = (await app.services.apiKeys.create('alarm', ['send'])).key.reveal();
    const sent = await app.api('POST', '/api/v1/messages', { sender: 'alerts-sender', to: 'refused@example.test', subject: 'x', text: 'x' }, key);
    await eventually(() => app.api('GET', `/api/v1/messages/${sent.json.id}`, undefined, key).then((r) => r.json.status), (s) => s === 'failed', 15_000, 'the refusal');
    await app.services.alerts.evaluate();
    expect(alertHooks('send_failing', 'raised')[0]!.body.alert.message).toMatch(/1 message failed in the last hour/);

    const status = await runCli(['status'], { cwd: app.services.cwd, env });
    expect(status.code).toBe(1);
    expect(status.stdout).toContain('needs attention:');
    expect(status.stdout).toContain('send failing (outbox)');

    // An hour later the alert is resolved, but status (for cron) still counts the last 24 hours (the secret warning aside, which we clear).
    await app.services.store.db.updateTable('outbox').set({ updated_at: new Date(Date.now() - 2 * 3_600_000).toISOString() }).where('status', '=', 'failed').execute();
    await app.services.store.db.updateTable('credentials').set({ client_secret_expires_at: null }).execute();
    await app.services.alerts.evaluate();
    expect(alertHooks('send_failing', 'resolved')).toHaveLength(1);
    const later = await runCli(['status'], { cwd: app.services.cwd, env });
    expect(later.code).toBe(1);
    expect(later.stdout).toMatch(/send failing: 1 message failed in the last 24 h/);
    // A day later it is history.
    await app.services.store.db.updateTable('outbox').set({ updated_at: new Date(Date.now() - 25 * 3_600_000).toISOString() }).where('status', '=', 'failed').execute();
    const ok = await runCli(['status'], { cwd: app.services.cwd, env });
    expect(ok.stdout).toContain('all good');
    expect(ok.code).toBe(0);
  });
});
