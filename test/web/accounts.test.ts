// Proves the "Relay & proxies" pages in a real browser: the listeners of this process with state, TLS, certificate and
// live sessions; relay and proxy accounts added through the forms with a generated password shown once (which really
// logs in) and the five fields to type; refusals named per field without echoing a password; a new password; delete
// after confirmation; the audit with field names only; and the pages fit a 375 px phone.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { ListenerConfig, RelayListenerConfig } from '../../src/config/load.js';
import { collectPageErrors, newPage, screenshot, useBrowser } from '../support/browser.js';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';
import { signInAsAdmin } from '../support/webAdmin.js';

const b = useBrowser();
let app: MailgateApp;
let relayPassword = '';

const listener: ListenerConfig = { listen: { host: '127.0.0.1', port: 0 }, tls: 'implicit', certFile: undefined, keyFile: undefined, allowInsecureAuth: false, maxConnections: 10, maxConnectionsPerClient: 5 };
// Configured, not started in this test (the relay has its own suites): the page says what to type from the config.
const relayListener: RelayListenerConfig = { ...listener, listen: { host: '127.0.0.1', port: 2525 }, tls: 'starttls', requireAuth: true, allowUnauthenticatedFrom: [], sender: undefined };
const PASSWORD = /^[A-HJ-NP-Za-km-z2-9]{24}$/;

beforeAll(async () => {
  app = await startMailgateApp({
    proxies: true,
    configure: (config) => ({ ...config, relay: { ...config.relay, listeners: [relayListener] }, proxy: { ...config.proxy, imap: listener } }),
  });
  for (const server of [
    { name: 'm365-smtp', protocol: 'smtp', host: 'smtp.office365.com', port: 587, security: 'starttls', username: 'alerts@contoso.example', auth: { type: 'oauth2', credential: 'm365' } },
    { name: 'm365-imap', protocol: 'imap', host: 'outlook.office365.com', port: 993, security: 'tls', username: 'alerts@contoso.example', auth: { type: 'oauth2', credential: 'm365' } },
  ]) {
    const added = await app.api('POST', '/api/v1/servers', server);
    expect(added.status, added.text).toBe(201);
  }
  expect((await app.api('POST', '/api/v1/senders', { name: 'alarms', primary: 'm365-smtp', from: 'Alarms <alarms@contoso.example>' })).status).toBe(201);
});
afterAll(async () => app?.close());

/** Chromium logs the 400 of a re-rendered invalid form as a console error: expected here, anything else is not. */
const unexpected = (errors: string[]) => errors.filter((e) => !/Failed to load resource: .*400/.test(e));

async function noHorizontalOverflow(page: Page): Promise<void> {
  expect(await page.evaluate<number>('document.documentElement.scrollWidth'), `scrollWidth of ${page.url()}`).toBeLessThanOrEqual(375);
}

const fact = (page: Page, term: string) => page.locator(`dl.program-settings dt:text-is("${term}") + dd`).first().innerText();

describe('web UI: relay & proxies', () => {
  it('lists the listeners of this process with address, TLS, state, certificate fingerprint and sessions now', async () => {
    const page = await newPage(b.browser);
    const errors = collectPageErrors(page);
    await signInAsAdmin(app, page);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Relay & proxies' }).click();
    await page.waitForURL(`${app.url}/relay`);
    const imap = app.proxies.imap!;
    const status = app.services.listeners.list().find((l) => l.id === 'proxy.imap')!;
    const row = page.locator('.listeners-table tbody tr', { hasText: 'proxy.imap' });
    expect((await row.locator('[data-label=Address]').innerText()).trim()).toBe(`127.0.0.1:${imap.port}`);
    expect((await row.locator('[data-label=TLS]').innerText()).trim()).toBe('TLS from the start');
    expect((await row.locator('[data-label=State]').innerText()).trim()).toBe('Listening');
    expect(await row.locator('.fingerprint').innerText()).toBe(status.certificate!.fingerprint256);
    expect(await row.locator('[data-label="Certificate (SHA-256)"]').innerText()).toContain('(self-signed)');
    expect((await row.locator('[data-label="Sessions now"]').innerText()).trim()).toBe('0');

    // A client connected (not logged in): one session now.
    const socket = net.connect(imap.port, '127.0.0.1');
    socket.on('error', () => undefined);
    await expect.poll(() => app.services.listeners.list().find((l) => l.id === 'proxy.imap')!.sessions).toBe(1);
    await page.reload();
    expect((await page.locator('.listeners-table tbody tr', { hasText: 'proxy.imap' }).locator('[data-label="Sessions now"]').innerText()).trim()).toBe('1 (0 logged in)');
    socket.destroy();
    await screenshot(page, 'relay-list-empty-accounts');
    expect(unexpected(errors)).toEqual([]);
  });

  it('adds a relay account with a generated password shown once with the five fields, and the password logs in', async () => {
    const page = await newPage(b.browser);
    const errors = collectPageErrors(page);
    await signInAsAdmin(app, page);
    await page.goto(`${app.url}/relay`);
    await page.getByRole('link', { name: 'Add relay account' }).click();
    await page.waitForURL(`${app.url}/relay/relay-accounts/new`);
    // One sender exists: chosen already; a generated password is the default.
    expect(await page.getByLabel('Sender').inputValue()).toBe('alarms');
    expect(await page.getByLabel('Let Mailgate generate one (recommended)').isChecked()).toBe(true);
    await page.getByLabel('Username').fill('scanner');
    await page.getByLabel('Other From addresses it may use').fill('Scanner@contoso.example\n@branch.contoso.example\n');
    await screenshot(page, 'relay-account-new');
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url() === `${app.url}/relay/relay-accounts` && r.request().method() === 'POST'),
      page.getByRole('button', { name: 'Add relay account' }).click(),
    ]);
    expect(response.status()).toBe(200);
    expect(response.headers()['cache-control']).toBe('no-store');
    expect((await page.locator('h1').innerText()).trim()).toBe('Relay account scanner added');
    relayPassword = await page.locator('#new-password').inputValue();
    expect(relayPassword).toMatch(PASSWORD);
    expect(await page.locator('.hint.warn').innerText()).toContain('it cannot be shown again');
    expect(await fact(page, 'Server')).toBe('127.0.0.1');
    expect(await fact(page, 'Port')).toBe('2525');
    expect(await fact(page, 'Security')).toBe('STARTTLS');
    expect(await fact(page, 'User')).toBe('scanner');
    expect(await fact(page, 'Password')).toBe('the one above');
    await page.getByRole('button', { name: 'Copy' }).click();
    await expect.poll(() => page.locator('.copy-status').innerText()).toBe('Copied');
    await screenshot(page, 'relay-account-created');

    expect((await app.services.relayAccounts.login('scanner', relayPassword, { client: '127.0.0.1', protocol: 'smtp' })).ok).toBe(true);
    expect((await app.services.relayAccounts.show('scanner')).allowFrom).toEqual(['scanner@contoso.example', '@branch.contoso.example']);

    await page.getByRole('link', { name: 'I have copied the password' }).click();
    await page.waitForURL(`${app.url}/relay`);
    expect(await page.content()).not.toContain(relayPassword);
    const row = page.locator('.relay-accounts-table tbody tr', { hasText: 'scanner' });
    expect((await row.locator('[data-label=Sender]').innerText()).trim()).toBe('alarms');
    expect(await row.locator('[data-label="Also From"]').innerText()).toContain('@branch.contoso.example');
    expect((await row.locator('[data-label=Password]').innerText()).trim()).toBe('generated');

    const audit = await app.api('GET', '/api/v1/audit?target=scanner');
    expect(audit.json.entries).toEqual(expect.arrayContaining([expect.objectContaining({ actor: 'admin:admin', action: 'ui POST /relay/relay-accounts', target: 'scanner', details: { fields: ['allowFrom', 'name', 'password', 'passwordChoice', 'sender'] } })]));
    expect(audit.text).not.toContain(relayPassword);
    expect(app.logs()).not.toContain(relayPassword);
    expect(unexpected(errors)).toEqual([]);
  });

  it('refuses bad input with an error on each field, keeps what was typed except the password, and adds nothing', async () => {
    const page = await newPage(b.browser);
    const errors = collectPageErrors(page);
    await signInAsAdmin(app, page);
    await page.goto(`${app.url}/relay/relay-accounts/new`);
    await page.getByLabel('Username').fill('bad name!');
    await page.getByLabel('Sender').selectOption('');
    await page.getByLabel('Other From addresses it may use').fill('ok@contoso.example\nnot an address');
    await page.getByLabel('Type a password').check();
    await page.getByRole('button', { name: 'Add relay account' }).click();
    await page.waitForSelector('.error-summary');
    // An empty typed password is caught first, on its own field.
    expect(await page.locator('#f-password-error').innerText()).toContain('type the password the program will use');

    await page.getByLabel('Password to set').fill('hunter2');
    await page.getByRole('button', { name: 'Add relay account' }).click();
    await page.waitForSelector('.error-summary');
    const summary = await page.locator('.error-summary').innerText();
    expect(summary).toContain('There are 2 problems');
    expect(await page.locator('#f-name-error').innerText()).toContain('letters, digits');
    expect(await page.locator('#f-sender-error').innerText()).toContain('expected the name of a sender');
    expect(await page.locator('#f-name').getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('#f-name').inputValue()).toBe('bad name!');
    expect(await page.getByLabel('Type a password').isChecked()).toBe(true);
    expect(await page.getByLabel('Password to set').inputValue()).toBe('');
    await screenshot(page, 'relay-account-new-errors');

    // Name and sender right: the allow-list's bad line is named by its line number.
    await page.getByLabel('Username').fill('printer');
    await page.getByLabel('Sender').selectOption('alarms');
    await page.getByLabel('Password to set').fill('hunter2');
    await page.getByRole('button', { name: 'Add relay account' }).click();
    await page.waitForSelector('.error-summary');
    expect(await page.locator('#f-allowFrom-error').innerText()).toContain('line 2: expected an address (alice@example.com) or a domain (@example.com), got "not an address"');
    expect(await page.locator('#f-allowFrom').inputValue()).toBe('ok@contoso.example\nnot an address');

    // Then the weak password is the one problem, and it is not echoed.
    await page.getByLabel('Other From addresses it may use').fill('');
    await page.getByLabel('Password to set').fill('hunter2');
    await page.getByRole('button', { name: 'Add relay account' }).click();
    await page.waitForSelector('.error-summary');
    expect(await page.locator('#f-password-error').innerText()).toContain('use at least 12 characters');
    expect(await page.content()).not.toContain('hunter2');
    expect((await app.services.relayAccounts.list()).map((a) => a.name)).not.toContain('printer');
    expect(unexpected(errors)).toEqual([]);
  });

  it('adds a proxy account with a typed password, shows the live IMAP listener to type, then sets a generated new password', async () => {
    const page = await newPage(b.browser);
    const errors = collectPageErrors(page);
    await signInAsAdmin(app, page);
    await page.goto(`${app.url}/relay/proxy-accounts/new`);
    expect(await page.getByLabel('Mailbox server').inputValue()).toBe('m365-imap');
    await page.getByLabel('Username').fill('tickets');
    await page.getByLabel('Type a password').check();
    await page.getByLabel('Password to set').fill('tickets pass phrase');
    await page.getByRole('button', { name: 'Add proxy account' }).click();
    await page.waitForSelector('dl.program-settings');
    expect((await page.locator('h1').innerText()).trim()).toBe('Proxy account tickets added');
    expect(await page.locator('#new-password').count()).toBe(0);
    expect(await fact(page, 'Port')).toBe(String(app.proxies.imap!.port));
    expect(await fact(page, 'Security')).toBe('SSL/TLS');
    expect(await fact(page, 'Password')).toBe('the password you typed');
    expect(await page.content()).not.toContain('tickets pass phrase');
    expect((await app.services.proxyAccounts.login('tickets', 'tickets pass phrase', { client: '127.0.0.1', protocol: 'imap' })).ok).toBe(true);

    await page.goto(`${app.url}/relay`);
    await page.getByRole('link', { name: 'New password for tickets' }).click();
    await page.waitForURL(`${app.url}/relay/proxy-accounts/tickets/password`);
    await page.getByRole('button', { name: 'Set the new password' }).click();
    await page.waitForSelector('#new-password');
    const generated = await page.locator('#new-password').inputValue();
    expect(generated).toMatch(PASSWORD);
    expect((await page.locator('h1').innerText()).trim()).toBe('New password for tickets');
    expect((await app.services.proxyAccounts.login('tickets', 'tickets pass phrase', { client: '127.0.0.2', protocol: 'imap' })).ok).toBe(false);
    expect((await app.services.proxyAccounts.login('tickets', generated, { client: '127.0.0.1', protocol: 'imap' })).ok).toBe(true);
    await screenshot(page, 'proxy-account-new-password');
    expect(unexpected(errors)).toEqual([]);
  });

  it('refuses to delete the sender a relay account uses, naming the account on the servers page, and keeps it', async () => {
    const page = await newPage(b.browser);
    const errors = collectPageErrors(page);
    await signInAsAdmin(app, page);
    await page.goto(`${app.url}/senders/alarms/delete`);
    await page.getByRole('button', { name: 'Delete sender alarms' }).click();
    await page.waitForURL(`${app.url}/servers#senders`);
    const flash = await page.locator('.flash.error').innerText();
    expect(flash).toContain('Sender alarms was not deleted');
    expect(flash).toContain('sender alarms is still used by relay account scanner');
    expect((await app.services.senders.show('alarms')).name).toBe('alarms');
    expect(unexpected(errors)).toEqual([]);
  });

  it('deletes an account only after the confirmation page, after which its password is refused', async () => {
    const page = await newPage(b.browser);
    const errors = collectPageErrors(page);
    await signInAsAdmin(app, page);
    await page.goto(`${app.url}/relay`);
    await page.getByRole('link', { name: 'Delete scanner' }).click();
    await page.waitForURL(`${app.url}/relay/relay-accounts/scanner/delete`);
    expect((await page.locator('h1').innerText()).trim()).toBe('Delete relay account scanner?');
    await page.getByRole('link', { name: 'Cancel' }).click();
    await page.waitForURL(`${app.url}/relay`);
    expect((await app.services.relayAccounts.list()).map((a) => a.name)).toEqual(['scanner']);

    await page.getByRole('link', { name: 'Delete scanner' }).click();
    await page.getByRole('button', { name: 'Delete scanner' }).click();
    await page.waitForURL(`${app.url}/relay`);
    expect(await page.locator('.flash.success').innerText()).toContain('Deleted relay account scanner');
    expect(await page.locator('.relay-accounts-table').count()).toBe(0);
    expect((await app.services.relayAccounts.login('scanner', relayPassword, { client: '127.0.0.3', protocol: 'smtp' })).ok).toBe(false);
    expect(unexpected(errors)).toEqual([]);
  });

  it('fits a 375 px phone: the list with listeners and accounts, the add form and the new password page', async () => {
    await app.services.relayAccounts.add({ name: 'alarm-panel-basement-2', sender: 'alarms', allowFrom: ['a-rather-long-address-for-a-phone@branch.contoso.example'], generatePassword: true });
    const page = await newPage(b.browser, { width: 375 });
    const errors = collectPageErrors(page);
    await signInAsAdmin(app, page);
    await page.goto(`${app.url}/relay`);
    await noHorizontalOverflow(page);
    await screenshot(page, 'relay-list-375');
    await page.goto(`${app.url}/relay/relay-accounts/new`);
    await noHorizontalOverflow(page);
    await page.getByLabel('Username').fill('phone-check');
    await page.getByRole('button', { name: 'Add relay account' }).click();
    await page.waitForSelector('#new-password');
    await noHorizontalOverflow(page);
    await screenshot(page, 'relay-account-created-375');
    expect(unexpected(errors)).toEqual([]);
  });
});
