// Proves the servers & senders pages in a real browser against the test bed: a server added through the form and
// tested live (each step streamed, XOAUTH2 at Dovecot submission, a test message delivered), a wrong password shown
// as a failed step with its explanation (live and without JavaScript), field errors, editing, senders, and
// config-file servers shown read-only.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { TestClient } from '../testbed/authServer.js';
import { useTestbed } from '../testbed/useTestbed.js';
import { collectPageErrors, newPage, screenshot, useBrowser } from '../support/browser.js';
import { addConnected, login, microsoftCredential } from '../support/credentials.js';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';
import { signInAsAdmin } from '../support/webAdmin.js';

const bed = useTestbed();
const b = useBrowser();
let app: MailgateApp;
let client: TestClient;
let page: Page;
let errors: string[];
const WRONG_PASSWORD = 'definitely-not-carols-password';

beforeAll(async () => {
  app = await startMailgateApp();
  client = bed.auth.addClient({ clientId: 'mailgate-web-servers', clientSecret: 'web-servers-secret', redirectUris: [`${app.url}/oauth/callback`] });
  await addConnected(app, microsoftCredential(bed.auth, client, 'alice-m365'), login(bed.auth.users.alice));
  // One signed-in page for the tests at 1280 px (signing in costs a password hash); each test starts from its own URL.
  page = await newPage(b.browser);
  errors = collectPageErrors(page);
  await signInAsAdmin(app, page);
});
beforeEach(() => {
  errors.length = 0;
});
afterAll(async () => {
  await page?.close().catch(() => undefined);
  await app?.close();
});

/** Chromium reports the deliberate 400 of a re-rendered form as a console error; anything else is a real problem. */
const realErrors = (errors: string[]) => errors.filter((e) => !/Failed to load resource: .* 400/.test(e));

/** The add form as an admin fills it; auth is the radio's label text, the CA goes under Advanced. */
async function fillServerForm(page: Page, fields: { name: string; port: string; username?: string; auth: 'oauth2' | 'password'; password?: string }): Promise<void> {
  await page.getByLabel('Name', { exact: true }).fill(fields.name);
  await page.getByLabel('Host', { exact: true }).fill('127.0.0.1');
  await page.getByLabel('Port', { exact: true }).fill(fields.port);
  if (fields.username !== undefined) await page.getByLabel('Username').fill(fields.username);
  if (fields.auth === 'password') {
    await page.getByLabel('Sign in with a password').check();
    await page.locator('#f-password').fill(fields.password ?? '');
  } else {
    await page.getByLabel(/^Sign in with OAuth2/).check();
  }
  await page.getByText('Advanced: the server’s TLS certificate').click();
  await page.getByLabel('Trusted CA certificate').fill(bed.mail.caPem);
}

/** Clicks Run test and waits for the streamed summary; returns the step list as "label ✓|✗" and the POST's content type. */
async function runLiveTest(page: Page): Promise<{ steps: string[]; summary: string; contentType: string | undefined }> {
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/test')),
    page.getByRole('button', { name: 'Run test' }).click(),
  ]);
  const summary = page.locator('#test-output .test-summary');
  await expect.poll(() => summary.textContent(), { timeout: 15_000 }).toMatch(/^(Works|Does not work)/);
  const steps = await page.locator('#test-output ol.steps > li').evaluateAll((items) =>
    items.map((li) => `${li.querySelector('strong')?.textContent ?? ''} ${li.querySelector('.mark')?.textContent ?? ''}`),
  );
  return { steps, summary: (await summary.textContent()) ?? '', contentType: response.headers()['content-type'] };
}

describe('web UI: servers & senders', () => {
  it('adds an SMTP server through the form and its live test passes every step: connect, TLS, XOAUTH2 sign-in, send', async () => {
    await page.goto(`${app.url}/servers`);
    await expect(page.locator('.servers-section .empty h2').textContent()).resolves.toBe('No servers yet');
    await expect(page.locator('.senders-section .empty').textContent()).resolves.toContain('Add an SMTP server first');
    await screenshot(page, 'servers-empty');

    await page.getByRole('link', { name: 'Add the first server' }).click();
    await page.waitForURL(`${app.url}/servers/new`);
    // Prefilled for SMTP with STARTTLS; the Microsoft and Google host names are right there.
    await expect(page.getByLabel('Port', { exact: true }).inputValue()).resolves.toBe('587');
    await expect(page.getByLabel('Security').inputValue()).resolves.toBe('starttls');
    await expect(page.locator('.provider-hosts').textContent()).resolves.toMatch(/smtp\.office365\.com:587[\s\S]*smtp\.gmail\.com/);
    await screenshot(page, 'servers-add');

    // Username left empty: with OAuth2 the credential's mailbox is filled in.
    await fillServerForm(page, { name: 'dovecot', port: String(bed.mail.ports.submission), auth: 'oauth2' });
    await expect(page.getByLabel('Credential', { exact: true }).inputValue()).resolves.toBe('alice-m365');
    await page.getByRole('button', { name: 'Add server' }).click();
    await page.waitForURL(`${app.url}/servers/dovecot/test`);
    await expect(page.locator('.flash.success').textContent()).resolves.toContain(`Username ${bed.auth.users.alice.email}`);

    await page.getByLabel('Send a test message to').fill(bed.auth.users.bob.email);
    const result = await runLiveTest(page);
    expect(result.contentType).toMatch(/^application\/x-ndjson/);
    expect(page.url()).toBe(`${app.url}/servers/dovecot/test`);
    expect(result.steps).toEqual(['Connect ✓', 'Hello (EHLO) ✓', 'TLS (STARTTLS) ✓', 'Hello again over TLS (EHLO) ✓', 'Access token ✓', 'Sign in (XOAUTH2) ✓', 'Send test message ✓']);
    expect(result.summary).toMatch(/^Works: every step passed in \d+ ms\.$/);
    // The test message really went through Dovecot to the sink.
    const sendDetail = (await page.locator('#test-output ol.steps > li').last().locator('.detail').textContent()) ?? '';
    const messageId = /Message-ID (<[^>]+>)/.exec(sendDetail)?.[1];
    expect(messageId, sendDetail).toBeDefined();
    expect(bed.mail.sink.received.some((m) => m.raw.toString().includes(`Message-ID: ${messageId}`))).toBe(true);
    await screenshot(page, 'servers-test-passed');
    expect(realErrors(errors)).toEqual([]);
  });

  it('shows a wrong password as the failed sign-in step with what it means and how to fix it, live and without JavaScript', async () => {
    await page.goto(`${app.url}/servers/new`);
    await fillServerForm(page, { name: 'carol-wrong', port: String(bed.mail.ports.submission), username: bed.mail.passwordUser.email, auth: 'password', password: WRONG_PASSWORD });
    await page.getByRole('button', { name: 'Add server' }).click();
    await page.waitForURL(`${app.url}/servers/carol-wrong/test`);

    const live = await runLiveTest(page);
    expect(live.steps).toEqual(['Connect ✓', 'Hello (EHLO) ✓', 'TLS (STARTTLS) ✓', 'Hello again over TLS (EHLO) ✓', 'Sign in (PLAIN) ✗']);
    expect(live.summary).toBe('Does not work as configured: see the failed step below.');
    const failed = page.locator('#test-output li.bad');
    await expect(failed.locator('.detail').textContent()).resolves.toMatch(/^PLAIN as carol@example\.test: 535 /);
    const meaning = (await failed.locator('.explanation p').first().textContent()) ?? '';
    const fix = (await failed.locator('.explanation p').nth(1).textContent()) ?? '';
    expect(meaning.length).toBeGreaterThan(20);
    expect(fix).toMatch(/^Fix: .{10,}/);
    expect(await page.content()).not.toContain(WRONG_PASSWORD);
    await screenshot(page, 'servers-test-failed');

    // A test message to something that is not an address: the test does not start, and says why.
    await page.getByLabel('Send a test message to').fill('not an address');
    await page.getByRole('button', { name: 'Run test' }).click();
    await expect.poll(() => page.locator('#test-output .test-summary').textContent()).toBe('Send a test message to: expected an email address like name@example.com');
    expect(await page.locator('#test-output ol.steps > li').count()).toBe(0);
    expect(realErrors(errors)).toEqual([]);

    // The same test as a plain form post: the whole report comes back as a page.
    const context = await b.browser.newContext({ javaScriptEnabled: false, viewport: { width: 1280, height: 900 } });
    const plain = await context.newPage();
    await signInAsAdmin(app, plain);
    await plain.goto(`${app.url}/servers/carol-wrong/test`);
    await expect(plain.locator('#test-output').isHidden()).resolves.toBe(true);
    await Promise.all([plain.waitForLoadState('load'), plain.getByRole('button', { name: 'Run test' }).click()]);
    await plain.locator('#test-output .test-summary').waitFor();
    await expect(plain.locator('#test-output .test-summary').textContent()).resolves.toBe('Does not work as configured: see the failed step below.');
    await expect(plain.locator('#test-output li.bad > p:first-child strong').textContent()).resolves.toBe('Sign in (PLAIN)');
    await expect(plain.locator('#test-output li.bad .mark').textContent()).resolves.toBe('✗');
    await expect(plain.locator('#test-output li.bad .explanation').textContent()).resolves.toContain(fix.slice(0, 40));
    expect(await plain.locator('#test-output li.ok').count()).toBe(4);
    await screenshot(plain, 'servers-test-failed-nojs');
    await context.close();
  });

  it('edits the server: the password field starts empty, and the right password makes the test pass', async () => {
    await page.goto(`${app.url}/servers/carol-wrong/edit`);
    await expect(page.locator('#f-password').inputValue()).resolves.toBe('');
    expect(await page.content()).not.toContain(WRONG_PASSWORD);
    await expect(page.locator('#f-password-help').textContent()).resolves.toContain('Leave empty to keep it unchanged');
    await page.locator('#f-password').fill(bed.mail.passwordUser.password);
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.waitForURL(`${app.url}/servers/carol-wrong/test`);
    const result = await runLiveTest(page);
    expect(result.steps.at(-1)).toBe('Sign in (PLAIN) ✓');
    expect(result.summary).toMatch(/^Works/);

    // Saving again with the field left empty keeps the stored (right) password.
    await page.goto(`${app.url}/servers/carol-wrong/edit`);
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.waitForURL(`${app.url}/servers/carol-wrong/test`);
    expect((await runLiveTest(page)).summary).toMatch(/^Works/);
  });

  it('refuses a port that is not a number and shows the problem at the port field, keeping what was typed', async () => {
    await page.goto(`${app.url}/servers/new`);
    await fillServerForm(page, { name: 'bad-port', port: 'abc', username: bed.mail.passwordUser.email, auth: 'password', password: 'whatever' });
    const [response] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.getByRole('button', { name: 'Add server' }).click()]);
    expect(response.status()).toBe(400);
    await page.waitForLoadState('load');
    await expect(page.locator('.error-summary a[href="#f-port"]').textContent()).resolves.toMatch(/^Port: expected 1-65535/);
    await expect(page.locator('#f-port').getAttribute('aria-invalid')).resolves.toBe('true');
    await expect(page.locator('#f-port-error').textContent()).resolves.toContain('expected 1-65535');
    await expect(page.getByLabel('Name', { exact: true }).inputValue()).resolves.toBe('bad-port');
    await expect(page.locator('#f-password').inputValue()).resolves.toBe('');
    expect(await app.api('GET', '/api/v1/servers/bad-port').then((r) => r.status)).toBe(404);
    await screenshot(page, 'servers-add-invalid');
    expect(realErrors(errors)).toEqual([]);
  });

  it('puts in the usual port when the protocol changes and the filled-in port was left as it was', async () => {
    await page.goto(`${app.url}/servers/new`);
    await page.getByLabel('Name', { exact: true }).fill('imap-follow');
    await page.getByLabel('Protocol').selectOption('imap');
    await page.getByLabel('Security').selectOption('tls');
    await page.getByLabel('Host', { exact: true }).fill('outlook.office365.com');
    await page.getByLabel(/^Sign in with OAuth2/).check();
    expect(await page.getByLabel('Port', { exact: true }).inputValue()).toBe('587');
    await page.getByRole('button', { name: 'Add server' }).click();
    await page.waitForURL(`${app.url}/servers/imap-follow/test`);
    await expect(page.locator('.flash.success').textContent()).resolves.toContain('Port 993, the usual port for IMAP with TLS, was filled in.');
    expect((await app.api('GET', '/api/v1/servers/imap-follow')).json).toMatchObject({ protocol: 'imap', port: 993, security: 'tls', username: bed.auth.users.alice.email });
    expect((await app.api('DELETE', '/api/v1/servers/imap-follow')).status).toBe(204);
  });

  it('adds a sender through the form: SMTP servers only as primary, another as backup, then lists it', async () => {
    // An IMAP server must not be offered for sending.
    expect((await app.api('POST', '/api/v1/servers', { name: 'dovecot-imap', protocol: 'imap', host: '127.0.0.1', port: bed.mail.ports.imaps, security: 'tls', tlsCa: bed.mail.caPem, username: bed.auth.users.alice.email, auth: { type: 'oauth2', credential: 'alice-m365' } })).status).toBe(201);
    await page.goto(`${app.url}/servers`);
    await expect(page.locator('.senders-section .empty h2').textContent()).resolves.toBe('No senders yet');
    await page.getByRole('link', { name: 'Add the first sender' }).click();
    await page.waitForURL(`${app.url}/senders/new`);
    const primaries = await page.locator('#f-primary option').evaluateAll((options) => options.map((o) => o.getAttribute('value') ?? '').filter(Boolean));
    expect(primaries).toEqual(['carol-wrong', 'dovecot']);
    expect(await page.locator('input[name=backups]').count()).toBe(2);
    await screenshot(page, 'senders-add');

    await page.getByLabel('Name', { exact: true }).fill('alerts');
    await page.getByLabel('From address').fill(`Alarm Centre <${bed.auth.users.alice.email}>`);
    await page.getByLabel('Primary server').selectOption('dovecot');
    await page.getByLabel(/^carol-wrong/).check();
    await page.getByLabel('Reply-To address').fill('duty@example.test');
    await page.getByRole('button', { name: 'Add sender' }).click();
    await page.waitForURL(`${app.url}/servers#senders`);
    const row = page.locator('.senders-table tbody tr', { has: page.locator('th', { hasText: 'alerts' }) });
    await expect(row.locator('td[data-label="From"]').textContent()).resolves.toBe(`Alarm Centre <${bed.auth.users.alice.email}>`);
    await expect(row.locator('td[data-label="Primary server"]').textContent()).resolves.toBe('dovecot');
    await expect(row.locator('td[data-label="Backups"]').textContent()).resolves.toBe('carol-wrong');
    await expect(row.locator('td[data-label="Reply-To"]').textContent()).resolves.toBe('duty@example.test');
    expect((await app.api('GET', '/api/v1/senders/alerts')).json).toMatchObject({ primary: 'dovecot', backups: ['carol-wrong'], replyTo: 'duty@example.test', source: 'api' });
    expect(realErrors(errors)).toEqual([]);
  });

  it('lists the servers with host, security, sign-in and origin, and shows a config-file server read-only', async () => {
    await app.services.servers.syncFromConfig({ 'yaml-relay': { protocol: 'smtp', host: '127.0.0.1', port: 465, security: 'starttls', username: 'relay@example.test', auth: { type: 'password', password: 'from-the-file' } } });
    await page.goto(`${app.url}/servers`);
    const rowOf = (name: string) => page.locator('.servers-table tbody tr', { has: page.locator('th', { hasText: new RegExp(`^${name}$`) }) });

    const dovecot = rowOf('dovecot');
    await expect(dovecot.locator('td[data-label="Host:port"]').textContent()).resolves.toBe(`127.0.0.1:${bed.mail.ports.submission}`);
    await expect(dovecot.locator('td[data-label="Sign-in"]').textContent()).resolves.toBe('OAuth2 via alice-m365');
    await expect(dovecot.locator('td[data-label="Sign-in"] a').getAttribute('href')).resolves.toBe('/credentials/alice-m365');
    await expect(dovecot.locator('td[data-label="Defined in"]').textContent()).resolves.toContain('editable');
    expect(await dovecot.getByRole('link', { name: 'Edit dovecot' }).count()).toBe(1);
    await expect(rowOf('carol-wrong').locator('td[data-label="Sign-in"]').textContent()).resolves.toBe('password');

    const yaml = rowOf('yaml-relay');
    await expect(yaml.locator('td[data-label="Defined in"]').textContent()).resolves.toContain('read-only: change it in mailgate.yaml');
    expect(await yaml.getByRole('link', { name: 'Test yaml-relay' }).count()).toBe(1);
    expect(await yaml.getByRole('link', { name: /^(Edit|Delete)/ }).count()).toBe(0);
    // The service's warning (port 465 expects TLS) is on the row.
    await expect(yaml.locator('td[data-label="Warnings"]').textContent()).resolves.toContain('port 465 usually expects security tls');
    await screenshot(page, 'servers-list');

    await page.goto(`${app.url}/servers/yaml-relay/edit`);
    await expect(page.locator('h1').textContent()).resolves.toBe('yaml-relay is read-only');
    expect(await page.locator('form.server-form').count()).toBe(0);

    const phone = await newPage(b.browser, { width: 375 });
    await signInAsAdmin(app, phone);
    await phone.goto(`${app.url}/servers`);
    // Stacked cards: no horizontal scrolling at phone width.
    expect(await phone.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(375);
    await screenshot(phone, 'servers-list-375');
    expect(realErrors(errors)).toEqual([]);
    await phone.close();
  });

  it('refuses to delete a server a sender still uses, names the sender, and keeps the server', async () => {
    const page = await newPage(b.browser);
    await signInAsAdmin(app, page);
    await page.goto(`${app.url}/servers/dovecot/delete`);
    await page.getByRole('button', { name: 'Delete dovecot' }).click();
    await page.waitForURL(`${app.url}/servers`);
    await expect(page.locator('.flash.error').textContent()).resolves.toContain('server dovecot is still used by sender alerts');
    expect((await app.api('GET', '/api/v1/servers/dovecot')).status).toBe(200);
    const api = await app.api('DELETE', '/api/v1/servers/dovecot');
    expect(api.status).toBe(409);
    expect(api.json.error).toMatchObject({ code: 'STATE_CONFLICT', message: expect.stringContaining('sender alerts') });
    await page.close();
  });
});
