// Proves the web UI's core path in a real browser (Debian's Chromium): sign in, add a Microsoft-layout credential,
// Connect at the test provider's own login page, the wrong-account refusal, the re-authorization banner and its Reconnect.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { TEST_TENANT_ID, type TestClient } from '../testbed/authServer.js';
import { useTestbed } from '../testbed/useTestbed.js';
import { collectPageErrors, newPage, screenshot, useBrowser } from '../support/browser.js';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';
import { signInAsAdmin } from '../support/webAdmin.js';

const bed = useTestbed({ mail: false });
const b = useBrowser();
let app: MailgateApp;
let client: TestClient;

beforeAll(async () => {
  app = await startMailgateApp();
  client = bed.auth.addClient({ clientId: 'mailgate-web-ui', clientSecret: 'web-ui-client-secret-value', redirectUris: [`${app.url}/oauth/callback`] });
});
afterAll(async () => app?.close());

/** Fills the Microsoft form as an admin would, with the test bed's authority and issuer under Advanced. */
async function addMicrosoftCredential(page: Page, name: string, email: string): Promise<void> {
  await page.goto(`${app.url}/credentials/new?provider=microsoft`);
  await page.getByLabel('Name', { exact: true }).fill(name);
  await page.getByLabel('Mailbox address').fill(email);
  await page.getByLabel('Directory (tenant) ID').fill(TEST_TENANT_ID);
  await page.getByLabel('Application (client) ID').fill(client.clientId);
  await page.locator('#f-clientSecret').fill(client.clientSecret);
  await page.getByText('Advanced').click();
  await page.getByLabel('Authority').fill(bed.auth.microsoft.authority);
  await page.getByLabel('ID token issuer').fill(bed.auth.issuer);
  await page.getByRole('button', { name: 'Add credential' }).click();
  await page.waitForURL(`${app.url}/credentials/${name}`);
}

/** From the credential's Connect page through the provider's login page and back into Mailgate. */
async function connectAs(page: Page, name: string, user: { email: string; password: string }): Promise<void> {
  await page.getByRole('button', { name: /^Continue to / }).click();
  // The provider's own page: Mailgate is left behind here.
  await page.waitForURL((url) => url.origin === new URL(bed.auth.issuer).origin);
  await page.locator('input[name=login]').fill(user.email);
  await page.locator('input[name=password]').fill(user.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${app.url}/credentials/${name}`);
}

describe('web UI: credentials', () => {
  it('signs in, adds a Microsoft credential through the form, connects it at the provider and shows it active with the token expiry', async () => {
    const page = await newPage(b.browser);
    const errors = collectPageErrors(page);
    await signInAsAdmin(app, page);
    await screenshot(page, 'credentials-empty');

    // The redirect URI is on top of the page, ready to copy into the provider's portal.
    await expect(page.locator('#redirect-uri').inputValue()).resolves.toBe(`${app.url}/oauth/callback`);

    await page.goto(`${app.url}/credentials/new?provider=microsoft`);
    await screenshot(page, 'credentials-add-microsoft');
    await addMicrosoftCredential(page, 'm365-alerts', bed.auth.users.alice.email);
    expect(await page.locator('.flash.success').innerText()).toContain('Added m365-alerts');
    expect(await page.locator('h1').innerText()).toContain('Not connected');
    // The client secret is stored, never shown.
    expect(await page.content()).not.toContain(client.clientSecret);

    await page.getByRole('link', { name: 'Connect', exact: true }).click();
    expect(await page.locator('main').innerText()).toContain('private (incognito) window');
    await screenshot(page, 'credentials-connect');
    await connectAs(page, 'm365-alerts', bed.auth.users.alice);

    expect(await page.locator('.flash.success').innerText()).toContain(`Connected m365-alerts as ${bed.auth.users.alice.email}`);
    expect((await page.locator('h1 .badge').innerText()).trim()).toBe('Active');
    expect(await page.locator('dl.facts').first().innerText()).toMatch(/in \d+ (s|min)/);
    await screenshot(page, 'credentials-connected');

    await page.goto(`${app.url}/credentials`);
    const row = page.locator('tbody tr', { hasText: 'm365-alerts' });
    expect((await row.locator('[data-label=Status]').innerText()).trim()).toBe('Active');
    expect((await row.locator('[data-label="Access token expires"] time').innerText()).trim()).toMatch(/^in \d+ (s|min)$/);
    expect((await row.locator('[data-label=Account]').innerText()).trim()).toBe(bed.auth.users.alice.email);
    await screenshot(page, 'credentials-list');
    // Only Mailgate's pages count here (the provider's login page has no favicon, which Chromium reports).
    expect(errors.filter((e) => !e.includes(new URL(bed.auth.issuer).origin))).toEqual([]);

    const shown = await app.api('GET', '/api/v1/credentials/m365-alerts');
    expect(shown.json).toMatchObject({ status: 'active', hasRefreshToken: true, identity: { email: bed.auth.users.alice.email } });
  });

  it('refuses a wrong-account sign-in and says which account signed in, which was expected, and to use a private window', async () => {
    const page = await newPage(b.browser);
    await signInAsAdmin(app, page);
    await addMicrosoftCredential(page, 'm365-wrong', bed.auth.users.alice.email);
    await page.goto(`${app.url}/credentials/m365-wrong/connect`);
    await connectAs(page, 'm365-wrong', bed.auth.users.bob);

    const flash = page.locator('.flash.error');
    expect(await flash.innerText()).toContain('Wrong account');
    expect(await flash.innerText()).toContain(bed.auth.users.bob.email);
    expect(await flash.innerText()).toContain(bed.auth.users.alice.email);
    expect(await flash.innerText()).toContain('private (incognito) window');
    expect((await page.locator('h1 .badge').innerText()).trim()).toBe('Not connected');
    await screenshot(page, 'credentials-wrong-account');
    const shown = await app.api('GET', '/api/v1/credentials/m365-wrong');
    expect(shown.json).toMatchObject({ status: 'pending', hasRefreshToken: false });
  });

  it('shows a banner on every page once the grant is revoked, whose Reconnect link signs in again and clears it', async () => {
    const page = await newPage(b.browser);
    await signInAsAdmin(app, page);
    expect(await page.locator('.banner').count()).toBe(0);

    // The provider forgets the grant (consent revoked, password changed…); the next refresh learns it.
    expect(bed.auth.revokeGrants(bed.auth.users.alice.email, { clientId: client.clientId })).toBeGreaterThan(0);
    await expect(app.services.tokens.refresh('m365-alerts')).rejects.toThrow();
    expect((await app.api('GET', '/api/v1/credentials/m365-alerts')).json.status).toBe('needs_reauthorization');

    for (const path of ['/credentials', '/servers', '/outbox', '/alerts']) {
      await page.goto(`${app.url}${path}`);
      expect(await page.locator('.banner').innerText(), path).toContain('m365-alerts needs someone to sign in again');
    }
    await screenshot(page, 'banner-needs-reauthorization');
    const small = await newPage(b.browser, { width: 375 });
    await signInAsAdmin(app, small);
    await screenshot(small, 'banner-needs-reauthorization-375');

    await page.locator('.banner').getByRole('link', { name: 'Reconnect m365-alerts' }).click();
    await page.waitForURL(`${app.url}/credentials/m365-alerts/connect`);
    await connectAs(page, 'm365-alerts', bed.auth.users.alice);
    expect(await page.locator('.flash.success').innerText()).toContain('Connected m365-alerts');
    expect(await page.locator('.banner').count()).toBe(0);
    expect((await page.locator('h1 .badge').innerText()).trim()).toBe('Active');
  });

  it('edits a credential leaving the secret blank (kept), and deletes one only after confirmation', async () => {
    const page = await newPage(b.browser);
    await signInAsAdmin(app, page);
    await page.goto(`${app.url}/credentials/m365-wrong/edit`);
    expect(await page.locator('#f-clientSecret').inputValue()).toBe('');
    await page.getByLabel('Client secret expires on').fill('2027-05-31');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.waitForURL(`${app.url}/credentials/m365-wrong`);
    expect(await page.locator('.flash.success').innerText()).toContain('Saved m365-wrong');
    const shown = await app.api('GET', '/api/v1/credentials/m365-wrong');
    expect(shown.json).toMatchObject({ hasClientSecret: true, clientSecretExpiresAt: '2027-05-31T00:00:00.000Z' });

    await page.getByRole('link', { name: 'Delete' }).click();
    expect((await page.locator('h1').innerText()).trim()).toBe('Delete m365-wrong?');
    expect((await app.api('GET', '/api/v1/credentials/m365-wrong')).status).toBe(200);
    await page.getByRole('button', { name: 'Delete m365-wrong' }).click();
    await page.waitForURL(`${app.url}/credentials`);
    expect(await page.locator('.flash.success').innerText()).toContain('Deleted m365-wrong');
    expect((await app.api('GET', '/api/v1/credentials/m365-wrong')).status).toBe(404);
  });

  it('names each bad field of the add form, keeps what was typed except the secret, and adds nothing', async () => {
    const page = await newPage(b.browser);
    await signInAsAdmin(app, page);
    await page.goto(`${app.url}/credentials/new?provider=microsoft`);
    await page.getByLabel('Name', { exact: true }).fill('bad name!');
    await page.getByLabel('Mailbox address').fill('not-an-address');
    await page.locator('#f-clientSecret').fill('typed-secret-value');
    await page.getByRole('button', { name: 'Add credential' }).click();
    const summary = page.locator('.error-summary');
    expect(await summary.innerText()).toContain('Name:');
    expect(await summary.innerText()).toContain('Mailbox address:');
    expect(await summary.innerText()).toContain('Directory (tenant) ID:');
    expect(await page.getByLabel('Mailbox address').inputValue()).toBe('not-an-address');
    expect(await page.getByLabel('Mailbox address').getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('#f-clientSecret').inputValue()).toBe('');
    expect(await page.content()).not.toContain('typed-secret-value');
    await screenshot(page, 'credentials-add-errors');
    const listed = await app.api('GET', '/api/v1/credentials');
    expect(listed.json.credentials.map((c: { name: string }) => c.name)).not.toContain('bad name!');
  });

  it('fits a 375 px wide screen: no horizontal scrolling, every table cell labelled', async () => {
    const page = await newPage(b.browser, { width: 375, height: 800 });
    await signInAsAdmin(app, page);
    for (const path of ['/credentials', '/credentials/m365-alerts', '/credentials/new']) {
      await page.goto(`${app.url}${path}`);
      const overflow = await page.evaluate('document.documentElement.scrollWidth - window.innerWidth');
      const offenders = await page.evaluate(`[...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1).slice(-3).map((e) => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)).join(' | ')`);
      expect(overflow, `${path}: ${offenders}`).toBeLessThanOrEqual(0);
    }
    await page.goto(`${app.url}/credentials`);
    await screenshot(page, 'credentials-list-375');
    expect(await page.locator('tbody tr').first().locator('[data-label=Status]').isVisible()).toBe(true);
  });
});
