// Proves the overview page in a real browser against the test bed: `/` lands on it, it lists what needs a person (a
// revoked grant with its Reconnect link, failed mail, parked inbound messages) like `mailgate status`, and its SVG
// charts say the seeded counts of the last 24 hours in their accessible text, per hour; at 1280 and 375 px wide.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { currentConditions } from '../../src/alerts/conditions.js';
import type { TestClient } from '../testbed/authServer.js';
import { getFreePort } from '../testbed/ports.js';
import { useTestbed } from '../testbed/useTestbed.js';
import { collectPageErrors, newPage, screenshot, useBrowser } from '../support/browser.js';
import { addConnected, login, microsoftCredential } from '../support/credentials.js';
import { eventually } from '../support/mailbox.js';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';
import { signInAsAdmin } from '../support/webAdmin.js';

const bed = useTestbed();
const b = useBrowser();
const HOUR_MS = 3_600_000;
let app: MailgateApp;
let client: TestClient;
let sendKey: string;

const hourOf = (iso: string) => `${new Date(Math.floor(Date.parse(iso) / HOUR_MS) * HOUR_MS).toISOString().slice(11, 16)} UTC`;
const desc = (page: Page, chart: string) => page.locator(`[data-chart=${chart}] svg desc`).textContent();
/** The chart's visually-hidden table as { "14:00 UTC": [counts…] }. */
async function table(page: Page, chart: string): Promise<Record<string, number[]>> {
  const rows = await page.locator(`[data-chart=${chart}] table tbody tr`).evaluateAll((trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent ?? '')));
  return Object.fromEntries(rows.map(([hour, ...counts]) => [hour!, counts.map(Number)]));
}
const nonZero = (t: Record<string, number[]>) => Object.fromEntries(Object.entries(t).filter(([, counts]) => counts.some((n) => n > 0)));

beforeAll(async () => {
  app = await startMailgateApp({ outboxWorker: true });
  client = bed.auth.addClient({ clientId: 'mailgate-web-overview', clientSecret: 'web-overview-client-secret', redirectUris: [`${app.url}/oauth/callback`] });
  await addConnected(app, microsoftCredential(bed.auth, client, 'm365'), login(bed.auth.users.alice));
  const carol = bed.mail.passwordUser;
  const submission = { protocol: 'smtp', host: '127.0.0.1', port: bed.mail.ports.submission, security: 'starttls', tlsCa: bed.mail.caPem, username: carol.email, auth: { type: 'password', password: carol.password } };
  expect((await app.api('POST', '/api/v1/servers', { ...submission, name: 'submission' })).status).toBe(201);
  expect((await app.api('POST', '/api/v1/senders', { name: 'carol', primary: 'submission', from: carol.email })).status).toBe(201);
  // A server nobody listens on: its message keeps waiting in the outbox (connection refused is retried).
  expect((await app.api('POST', '/api/v1/servers', { ...submission, name: 'closed', port: await getFreePort() })).status).toBe(201);
  expect((await app.api('POST', '/api/v1/senders', { name: 'stuck', primary: 'closed', from: carol.email })).status).toBe(201);
  sendKey = (await app.services.apiKeys.create('overview-sender', ['send'])).key.reveal();
});
afterAll(async () => app?.close());

describe('web UI: overview', () => {
  it('is where / leads, lists what needs a person with the link that fixes each, and its charts say the seeded counts per hour', async () => {
    const submit = async (sender: string, to: string) => {
      const res = await app.api('POST', '/api/v1/messages', { sender, to: [to], subject: `Overview ${Date.now()}`, text: 'Seeded for the overview.' }, sendKey);
      expect(res.status).toBe(202);
      return res.json.id as string;
    };
    const show = (id: string) => app.api('GET', `/api/v1/messages/${id}`).then((r) => r.json);
    const bob = bed.auth.users.bob.email;
    // Three sent to the sink, one refused there for good (5xx), one waiting for a closed server.
    const sent = [await submit('carol', bob), await submit('carol', bob), await submit('carol', bob)];
    const refused = 'refused-overview@example.test';
    bed.mail.sink.rejectRecipients.add(refused);
    let failedId: string;
    try {
      failedId = await submit('carol', refused);
      await eventually(() => show(failedId), (m) => m.status === 'failed', 20_000, 'the refused message to fail');
    } finally {
      bed.mail.sink.rejectRecipients.delete(refused);
    }
    for (const id of sent) await eventually(() => show(id), (m) => m.status === 'sent', 20_000, `message ${id} to be sent`);
    const waiting = await submit('stuck', bob);
    // One of the sent messages went out three hours ago: its bar belongs to that hour.
    const earlier = new Date(Date.now() - 3 * HOUR_MS).toISOString();
    await app.services.store.db.updateTable('outbox').set({ sent_at: earlier, updated_at: earlier }).where('id', '=', sent[0]!).execute();
    const sentNow = (await show(sent[1]!)).sentAt as string;

    // Inbound: two deliveries handed to their webhook, one parked (its webhook refused it).
    const now = new Date().toISOString();
    const delivery = (id: string, status: string) => ({ id, watcher: 'support-inbox', mailbox_key: `imap:1:${id}`, uid: 1, status, attempts: 1, next_attempt_at: now, created_at: now, updated_at: now, delivered_at: status === 'delivered' ? now : null });
    await app.services.store.db.insertInto('inbound_deliveries').values([delivery('d-overview-1', 'delivered'), delivery('d-overview-2', 'delivered'), delivery('d-overview-3', 'parked')]).execute();

    // The grant revoked at the provider: the next refresh makes m365 need a sign-in.
    bed.auth.revokeGrants(bed.auth.users.alice.email, { clientId: client.clientId });
    expect((await app.api('POST', '/api/v1/credentials/m365/refresh')).status).toBe(409);

    const page = await newPage(b.browser);
    const errors = collectPageErrors(page);
    await signInAsAdmin(app, page);
    await page.goto(`${app.url}/`);
    await page.waitForURL(`${app.url}/overview`);
    expect(await page.locator('h1').innerText()).toBe('Overview');
    expect(await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Overview' }).getAttribute('aria-current')).toBe('page');

    // What needs a person: the same conditions as `mailgate status`, each with its fix.
    const expected = await currentConditions(app.services.store, app.services.config.publicUrl);
    const items = page.locator('.attention-list > li');
    expect(await items.evaluateAll((els) => els.map((e) => `${e.getAttribute('data-kind')} ${e.getAttribute('data-subject')}`))).toEqual(expected.map((c) => `${c.kind} ${c.subject}`));
    expect(await page.title()).toBe(`Overview (${expected.length} to fix) · Mailgate`);
    const m365 = page.locator('[data-kind=needs_reauthorization][data-subject=m365]');
    expect(await m365.locator('.alert-message').innerText()).toContain('Credential m365 needs someone to sign in again');
    expect(await m365.getByRole('link', { name: 'Reconnect m365' }).getAttribute('href')).toBe('/credentials/m365/connect');
    expect(await page.locator('[data-kind=send_failing]').getByRole('link', { name: 'Open the outbox' }).getAttribute('href')).toBe('/outbox');
    const parked = page.locator('[data-kind=message_parked][data-subject=support-inbox]');
    expect(await parked.locator('.alert-message').innerText()).toContain('Watcher support-inbox has 1 inbound message its webhook did not accept');
    expect(await parked.getByRole('link', { name: 'Open inbound' }).getAttribute('href')).toBe('/inbound');

    // The charts in words (the SVG's <desc>, which aria-labelledby names) and per hour (the hidden table).
    expect(await page.locator('[data-chart=chart-messages] svg').getAttribute('role')).toBe('img');
    expect(await page.locator('[data-chart=chart-messages] svg > title').textContent()).toBe('Messages sent and failed, per hour, last 24 hours');
    // What a screen reader announces for the picture: its title and its summary, through aria-labelledby.
    expect(await page.getByRole('img', { name: /^Messages sent and failed, per hour, last 24 hours In the last 24 hours: sent 3, failed 1;/ }).count()).toBe(1);
    expect(await desc(page, 'chart-messages')).toMatch(/^In the last 24 hours: sent 3, failed 1; busiest hour from \d\d:00 UTC with [1-3]\.$/);
    const failedAt = (await app.services.store.db.selectFrom('outbox').select('updated_at').where('id', '=', failedId!).executeTakeFirstOrThrow()).updated_at;
    const perHour: Record<string, number[]> = {};
    for (const [at, column] of [[earlier, 0], [sentNow, 0], [(await show(sent[2]!)).sentAt as string, 0], [failedAt, 1]] as const) {
      perHour[hourOf(at)] ??= [0, 0];
      perHour[hourOf(at)]![column]!++;
    }
    expect(nonZero(await table(page, 'chart-messages'))).toEqual(perHour);
    expect(Object.keys(await table(page, 'chart-messages'))).toHaveLength(24);
    expect(await page.locator(`[data-chart=chart-messages] rect title`).allTextContents()).toContain(`${hourOf(earlier)}: 1 sent`);

    expect(await desc(page, 'chart-inbound')).toBe(`In the last 24 hours: delivered 2, parked 1; busiest hour from ${hourOf(now)} with 3.`);
    expect(await desc(page, 'chart-credentials')).toBe(`In the last 24 hours: failures 1; busiest hour from ${hourOf(now)} with 1.`);
    expect(await page.locator('[data-chart=chart-credentials]').locator('xpath=..').locator('.help').innerText()).toContain('1 of 1 credential refreshed a token in these 24 hours');
    // Outbox depth: the message for the closed server waits now; three hours ago nothing was waiting.
    expect((await show(waiting)).status).toMatch(/^(queued|sending)$/);
    expect(await desc(page, 'chart-outbox')).toMatch(/^Now waiting: 1; at most 1, at the end of the hour from \d\d:00 UTC\.$/);
    expect((await table(page, 'chart-outbox'))[hourOf(earlier)]).toEqual([0]);
    await screenshot(page, 'overview');

    const phone = await newPage(b.browser, { width: 375 });
    const phoneErrors = collectPageErrors(phone);
    await phone.context().addCookies(await page.context().cookies());
    await phone.goto(`${app.url}/overview`);
    expect(await phone.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(375);
    const chartWidth = await phone.locator('[data-chart=chart-messages] svg').evaluate((svg) => svg.getBoundingClientRect().width);
    expect(chartWidth).toBeGreaterThan(200);
    expect(chartWidth).toBeLessThanOrEqual(375);
    await screenshot(phone, 'overview-375');
    expect([...errors, ...phoneErrors]).toEqual([]);
    await phone.close();
    await page.close();
  });

  it('says all good and shows empty charts when nothing happened and nothing needs a person', async () => {
    const bare = await startMailgateApp();
    try {
      const page = await newPage(b.browser);
      const errors = collectPageErrors(page);
      await signInAsAdmin(bare, page);
      await page.getByRole('link', { name: 'Mailgate', exact: true }).click();
      await page.waitForURL(`${bare.url}/overview`);
      expect(await page.title()).toBe('Overview · Mailgate');
      expect(await page.locator('.empty h2').innerText()).toBe('All good');
      expect(await page.locator('.attention-list').count()).toBe(0);
      expect(await desc(page, 'chart-messages')).toBe('In the last 24 hours: sent 0, failed 0.');
      expect(await desc(page, 'chart-outbox')).toBe('Now waiting: 0; none in the last 24 hours.');
      expect(await page.locator('[data-chart] rect').count()).toBe(0);
      expect(await page.locator('[data-chart=chart-credentials]').locator('xpath=..').locator('.help').innerText()).toContain('0 of 0 credentials refreshed');
      expect(errors).toEqual([]);
      await page.close();
    } finally {
      await bare.close();
    }
  });
});
