// Proves the outbox pages in a real browser against the test bed: a message parked by a real 5xx shows as failed with
// its error, Retry from the page sends it, a stale page's Retry is refused with a clear flash, and a queued message
// (no worker) is cancelled from the list after confirming — with its subject and attachments shown, never its body.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { getFreePort } from '../testbed/ports.js';
import { useTestbed } from '../testbed/useTestbed.js';
import { collectPageErrors, newPage, screenshot, useBrowser } from '../support/browser.js';
import { eventually } from '../support/mailbox.js';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';
import { signInAsAdmin } from '../support/webAdmin.js';

const bed = useTestbed();
const b = useBrowser();
const bob = () => bed.auth.users.bob;

const badgeOf = async (page: Page) => (await page.locator('h1 .badge').innerText()).trim();

describe('outbox pages with a running worker', () => {
  let app: MailgateApp;
  let sendKey: string;

  beforeAll(async () => {
    app = await startMailgateApp({ outboxWorker: true });
    const carol = bed.mail.passwordUser;
    const submission = { protocol: 'smtp', host: '127.0.0.1', port: bed.mail.ports.submission, security: 'starttls', tlsCa: bed.mail.caPem, username: carol.email, auth: { type: 'password', password: carol.password } };
    expect((await app.api('POST', '/api/v1/servers', { ...submission, name: 'submission' })).status).toBe(201);
    expect((await app.api('POST', '/api/v1/senders', { name: 'carol', primary: 'submission', from: carol.email })).status).toBe(201);
    sendKey = (await app.services.apiKeys.create('alarm-system', ['send'])).key.reveal();
  });
  afterAll(async () => app?.close());

  const submit = async (body: Record<string, unknown>): Promise<string> => {
    const res = await app.api('POST', '/api/v1/messages', body, sendKey);
    expect(res.status).toBe(202);
    return res.json.id as string;
  };
  const show = (id: string) => app.api('GET', `/api/v1/messages/${id}`).then((r) => r.json);

  it('shows a message parked by a 5xx as failed with its error, and Retry on its page sends it; a stale Retry is refused with a flash', async () => {
    const subject = `Zone 4 alarm ${Date.now()}`;
    // Every recipient refused with a 5xx: the message fails for good (one accepted recipient would make it sent).
    const refused = [bob().email.toLowerCase(), 'duty@example.test'];
    for (const r of refused) bed.mail.sink.rejectRecipients.add(r);
    let id: string;
    let parked: any;
    try {
      id = await submit({ sender: 'carol', to: [`Bob <${bob().email}>`], cc: 'duty@example.test', subject, text: 'Zone 4 smoke detector.', idempotencyKey: `alarm-${Date.now()}` });
      parked = await eventually(() => show(id), (m) => m.status === 'failed', 20_000, 'the message to fail');
    } finally {
      for (const r of refused) bed.mail.sink.rejectRecipients.delete(r);
    }
    expect(parked.lastError).toMatch(/55\d/);

    const page = await newPage(b.browser);
    const errors = collectPageErrors(page);
    await signInAsAdmin(app, page);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Outbox' }).click();
    await page.getByRole('navigation', { name: 'Filter by status' }).getByRole('link', { name: 'Failed' }).click();
    await page.waitForURL(`${app.url}/outbox?status=failed`);
    const row = page.locator('tbody tr', { hasText: id });
    expect((await row.locator('[data-label=Status]').innerText()).trim()).toBe('Failed');
    expect(await row.locator('[data-label=Message]').innerText()).toContain(subject);
    expect(await row.locator('[data-label=Message]').innerText()).toContain(`to ${bob().email} and 1 more`);
    expect((await row.locator('[data-label=Sender]').innerText()).trim()).toBe('carol');
    expect((await row.locator('[data-label=Attempts]').innerText()).trim()).toBe('1');
    expect((await row.locator('[data-label=Server]').innerText()).trim()).toBe('submission');
    expect(await row.locator('[data-label="Last error"]').innerText()).toMatch(/55\d/);
    expect(await row.locator('[data-label=Accepted] time').getAttribute('datetime')).toBe(parked.createdAt);
    expect((await row.locator('[data-label=Sent]').innerText()).trim()).toBe('—');
    // The other filters are plain links: the failed message is not among the sent ones.
    await page.getByRole('link', { name: 'Sent', exact: true }).click();
    expect(await page.locator('main').innerText()).not.toContain(id);
    await page.goBack();
    await screenshot(page, 'outbox-failed');

    await page.locator('tbody tr', { hasText: id }).getByRole('link', { name: id }).click();
    await page.waitForURL(`${app.url}/outbox/${id}`);
    expect(await page.locator('h1').innerText()).toContain(subject);
    expect(await badgeOf(page)).toBe('Failed');
    const facts = await page.locator('main').innerText();
    expect(facts).toContain(parked.messageId);
    expect(facts).toContain(parked.idempotencyKey);
    expect(facts).toContain('Mailgate gave up on this message');
    const history = page.locator('section', { has: page.getByRole('heading', { name: 'Attempt history' }) }).locator('tbody tr');
    expect(await history.count()).toBe(1);
    expect(await history.first().innerText()).toMatch(/submission[\s\S]*Failed[\s\S]*55\d/);
    await screenshot(page, 'outbox-detail-failed');

    // A second window (another sign-in) keeps the page as it was before the retry.
    const stale = await newPage(b.browser);
    await signInAsAdmin(app, stale);
    await stale.goto(page.url());

    await page.getByRole('button', { name: 'Retry' }).click();
    await page.waitForURL(`${app.url}/outbox/${id}`);
    expect(await page.locator('.flash.success').innerText()).toContain(`“${subject}” is queued again`);
    const sent = await eventually(() => show(id), (m) => m.status === 'sent', 20_000, 'the retried message to be sent');
    expect(sent.history.map((h: { outcome: string }) => h.outcome)).toEqual(['failed', 'retried', 'sent']);
    expect(bed.mail.sink.received.some((m) => m.raw.toString().includes(`Subject: ${subject}`))).toBe(true);
    await page.reload();
    expect(await badgeOf(page)).toBe('Sent');
    expect(await history.count()).toBe(3);
    expect(await history.first().innerText()).toMatch(/submission[\s\S]*Sent[\s\S]*250/);
    expect(await history.nth(1).innerText()).toContain('Retried by an admin');
    expect(await page.getByRole('button', { name: 'Retry' }).count()).toBe(0);
    await screenshot(page, 'outbox-detail-sent');

    await stale.getByRole('button', { name: 'Retry' }).click();
    await stale.waitForURL(`${app.url}/outbox/${id}`);
    const refusal = await stale.locator('.flash.error').innerText();
    expect(refusal).toContain('This message cannot be retried');
    expect(refusal).toContain(`message ${id} was sent at`);
    expect((await show(id)).history).toHaveLength(3);
    expect(errors).toEqual([]);
    await stale.close();
    await page.close();
  });
});

describe('outbox pages without a worker (messages stay queued)', () => {
  let app: MailgateApp;
  const body = 'SECRET-BODY-MARKER: the full text must not be on the page';

  beforeAll(async () => {
    app = await startMailgateApp({ outboxWorker: false });
    expect((await app.api('POST', '/api/v1/servers', { name: 'relay', protocol: 'smtp', host: '127.0.0.1', port: await getFreePort(), security: 'starttls', username: 'x@example.test', auth: { type: 'password', password: 'x' } })).status).toBe(201);
    expect((await app.api('POST', '/api/v1/senders', { name: 'plain', primary: 'relay', from: 'Alarms <alarms@example.test>' })).status).toBe(201);
  });
  afterAll(async () => app?.close());

  it('cancels a queued message from the list only after the admin confirms, and shows its subject and attachments but never its body', async () => {
    const subject = `Door open ${Date.now()}`;
    const attachment = Buffer.from('ATTACHMENT-CONTENT-MARKER').toString('base64');
    const { view } = await app.services.messages.accept({ sender: 'plain', to: ['ops@example.test', 'b@example.test'], bcc: 'audit@example.test', subject, text: body, html: `<p>${body}</p>`, attachments: [{ filename: 'door-log.csv', content: attachment, contentType: 'text/csv' }] }, 'cli');
    const id = view.id;

    const page = await newPage(b.browser);
    const errors = collectPageErrors(page);
    await signInAsAdmin(app, page);
    await page.goto(`${app.url}/outbox?status=queued`);
    const row = page.locator('tbody tr', { hasText: id });
    expect((await row.locator('[data-label=Status]').innerText()).trim()).toBe('Queued');
    expect(await row.locator('[data-label=Message]').innerText()).toContain('to ops@example.test and 2 more');
    expect(await page.content()).not.toContain('SECRET-BODY-MARKER');
    await screenshot(page, 'outbox-queued');

    // Dismissing the confirmation changes nothing.
    const dialogs: string[] = [];
    page.once('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await row.getByRole('button', { name: `Cancel message ${id}` }).click();
    expect(dialogs).toEqual([`Cancel message ${id}? It will not be sent (Retry undoes this).`]);
    expect((await app.services.messages.show(id)).status).toBe('queued');

    page.once('dialog', (d) => void d.accept());
    await row.getByRole('button', { name: `Cancel message ${id}` }).click();
    await page.waitForURL(`${app.url}/outbox?status=queued`);
    expect(await page.locator('.flash.success').innerText()).toContain(`“${subject}” is cancelled`);
    expect(await page.locator('main').innerText()).not.toContain(id);
    expect(await app.services.messages.show(id)).toMatchObject({ status: 'cancelled', lastError: 'cancelled by an admin', history: [{ outcome: 'cancelled', server: '-' }] });
    expect(await app.services.outbox.claimDue('test-worker', 10, 60_000)).toEqual([]);

    await page.getByRole('link', { name: 'Cancelled', exact: true }).click();
    await page.locator('tbody tr', { hasText: id }).getByRole('link', { name: id }).click();
    expect(await badgeOf(page)).toBe('Cancelled');
    const main = await page.locator('main').innerText();
    expect(main).toContain('Alarms <alarms@example.test> (the sender’s)');
    expect(main).toContain('ops@example.test, b@example.test');
    expect(main).toContain('audit@example.test');
    expect(main).toContain('door-log.csv');
    expect(main).toMatch(/plain text and HTML \(not shown here\)/);
    const html = await page.content();
    expect(html).not.toContain('SECRET-BODY-MARKER');
    expect(html).not.toContain('ATTACHMENT-CONTENT-MARKER');
    expect(html).not.toContain(attachment);
    expect(await page.getByRole('button', { name: 'Retry' }).count()).toBe(1);
    expect(await page.getByRole('button', { name: 'Cancel' }).count()).toBe(0);
    await screenshot(page, 'outbox-detail-cancelled');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('fits a phone: the list and a message page stack their tables at 375 px', async () => {
    await app.services.messages.accept({ sender: 'plain', to: 'ops@example.test', subject: `Phone check ${Date.now()}`, text: 'x' }, 'cli');
    const page = await newPage(b.browser, { width: 375 });
    const errors = collectPageErrors(page);
    await signInAsAdmin(app, page);
    await page.goto(`${app.url}/outbox`);
    expect(await page.locator('tbody tr').count()).toBeGreaterThanOrEqual(2);
    // Stacked cards: no horizontal scrolling.
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(375);
    await screenshot(page, 'outbox-375');
    await page.locator('tbody tr').first().locator('th a').click();
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(375);
    await screenshot(page, 'outbox-detail-375');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('answers an unknown status filter with a 400 page naming the valid ones, and an unknown message with 404', async () => {
    const page = await newPage(b.browser);
    await signInAsAdmin(app, page);
    const bad = await page.goto(`${app.url}/outbox?status=stuck`);
    expect(bad?.status()).toBe(400);
    expect(await page.locator('main').innerText()).toContain('expected one of queued, sending, sent, failed, cancelled');
    const missing = await page.goto(`${app.url}/outbox/no-such-id`);
    expect(missing?.status()).toBe(404);
    await page.close();
  });
});
