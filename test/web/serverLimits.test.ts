// Proves the sending limits in the web UI: the server page shows the preset, what applies and what is left; the form changes a limit, switches a preset's off, and names a bad value at its field without changing anything; a pause shows with its Resume button.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormClient } from '../support/formClient.js';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';

const ADMIN_PASSWORD = 'limits-admin-password-1';
let app: MailgateApp;
let client: FormClient;

beforeAll(async () => {
  app = await startMailgateApp();
  await app.services.admins.create('admin', ADMIN_PASSWORD);
  client = new FormClient(app.url);
  expect((await client.signIn('admin', ADMIN_PASSWORD)).status).toBe(303);
  // The host decides the preset; nothing connects to it in this test.
  expect((await app.api('POST', '/api/v1/servers', { name: 'm365', protocol: 'smtp', host: 'smtp.office365.com', port: 587, security: 'starttls', username: 'alerts@contoso.example', auth: { type: 'none' } })).status).toBe(201);
});
afterAll(async () => app?.close());

const text = (s: string) => s.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');

describe('sending limits in the web UI', () => {
  it('shows the Microsoft 365 preset and what is left on the server page', async () => {
    const page = text((await client.request('GET', '/servers/m365/test')).text);
    expect(page).toContain('Sending limits');
    expect(page).toContain('Preset microsoft-365 : Exchange Online: 30 messages per minute');
    expect(page).toMatch(/Messages per minute 30 0 30/);
    expect(page).toMatch(/Recipients per day \(rolling 24 hours\) 10000 0 10000/);
  });

  it('changes a limit and switches one off through the form', async () => {
    const form = await client.request('GET', '/servers/m365/limits');
    const saved = await client.request('POST', '/servers/m365/limits', { _csrf: FormClient.csrfOf(form.text), messagesPerMinute: '12', recipientsPerMinute: '', messagesPerDay: '', recipientsPerDay: '', connections: 'none' });
    expect(saved.status).toBe(303);
    const view = (await app.api('GET', '/api/v1/servers/m365')).json;
    expect(view.limits).toEqual({ messagesPerMinute: 12, connections: null });
    expect(view.effectiveLimits).toEqual({ messagesPerMinute: 12, recipientsPerDay: 10_000 });
  });

  it('names a bad value at its field (400) and changes nothing', async () => {
    const form = await client.request('GET', '/servers/m365/limits');
    const refused = await client.request('POST', '/servers/m365/limits', { _csrf: FormClient.csrfOf(form.text), messagesPerMinute: 'lots', recipientsPerMinute: '', messagesPerDay: '', recipientsPerDay: '0', connections: '' });
    expect(refused.status).toBe(400);
    expect(text(refused.text)).toContain('Messages per minute: expected a whole number of at least 1, or null (no limit)');
    expect(refused.text).toContain('id="f-recipientsPerDay-error"');
    expect((await app.api('GET', '/api/v1/servers/m365')).json.limits).toEqual({ messagesPerMinute: 12, connections: null });
  });

  it('shows a provider pause with its reason, and Resume ends it', async () => {
    await app.services.sendBudget.pause('m365', new Date(Date.now() + 3_600_000), 'messagesPerMinute', 'the provider is throttling this mailbox (messagesPerMinute): 554 5.2.0 SubmissionQuotaExceeded');
    const page = await client.request('GET', '/servers/m365/test');
    expect(text(page.text)).toMatch(/Paused until \S+ \(messagesPerMinute\): the provider is throttling this mailbox/);
    const resumed = await client.request('POST', '/servers/m365/resume', { _csrf: FormClient.csrfOf(page.text) });
    expect(resumed.status).toBe(303);
    expect((await app.api('GET', '/api/v1/servers/m365')).json.budget.pause).toBeNull();
  });

  it('forgets a removed server’s budget and pause: a server made again under its name starts afresh', async () => {
    await app.services.sendBudget.reserve('m365', { messagesPerMinute: 12 }, 1);
    await app.services.sendBudget.pause('m365', new Date(Date.now() + 3_600_000), 'recipientsPerDay', 'daily limit');
    expect((await app.api('DELETE', '/api/v1/servers/m365')).status).toBe(204);
    const left = await app.services.store.db.selectFrom('send_log').select('id').where('server', '=', 'm365').execute();
    const pauses = await app.services.store.db.selectFrom('server_pauses').select('server').where('server', '=', 'm365').execute();
    expect([left.length, pauses.length]).toEqual([0, 0]);
  });
});
