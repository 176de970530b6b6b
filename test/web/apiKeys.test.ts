// Proves the API keys pages in a real browser: a key created through the form is shown once (copy button, curl example),
// really works against the API with exactly its scope, never appears again (list, audit log, log), and revoking it in
// the UI makes the API refuse it; bad input gets field errors; the pages fit a 375 px phone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { collectPageErrors, newPage, screenshot, useBrowser } from '../support/browser.js';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';
import { signInAsAdmin } from '../support/webAdmin.js';

const b = useBrowser();
let app: MailgateApp;
/** The key created in the first test, used by the later ones (the tests run in order). */
let sendKey = '';

beforeAll(async () => {
  app = await startMailgateApp();
  // A credential, so the form offers "Read access tokens of m365" (it is never connected: no provider needed).
  const added = await app.api('POST', '/api/v1/credentials', {
    name: 'm365',
    provider: 'microsoft',
    tenant: 'contoso.onmicrosoft.com',
    clientId: '00000000-0000-4000-8000-000000000001',
    clientSecret: 'not-a-real-secret',
    email: 'alerts@contoso.example',
    protocols: ['smtp'],
  });
  expect(added.status, added.text).toBe(201);
});
afterAll(async () => app?.close());

/** Chromium logs the 400 of a re-rendered invalid form as a console error: expected here, anything else is not. */
function unexpected(errors: string[]): string[] {
  return errors.filter((e) => !/Failed to load resource: .*400/.test(e));
}

async function bearer(method: string, path: string, key: string, body?: unknown): Promise<number> {
  const res = await fetch(`${app.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  await res.arrayBuffer();
  return res.status;
}

async function noHorizontalOverflow(page: Page): Promise<void> {
  const width = await page.evaluate<number>('document.documentElement.scrollWidth');
  expect(width, `scrollWidth of ${page.url()}`).toBeLessThanOrEqual(375);
}

describe('web UI: API keys', () => {
  it('creates a send key through the form, shows it once with a copy button and a curl example, and the key works with exactly that scope', async () => {
    const page = await newPage(b.browser);
    const errors = collectPageErrors(page);
    await signInAsAdmin(app, page);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'API keys' }).click();
    await page.waitForURL(`${app.url}/apikeys`);
    expect(await page.locator('main').innerText()).toContain('Authorization: Bearer <key>');
    await page.getByRole('link', { name: 'Create API key' }).click();
    await page.waitForURL(`${app.url}/apikeys/new`);
    // One box per existing credential, plus every credential.
    await expect(page.getByLabel(/^m365 /).getAttribute('value')).resolves.toBe('token:m365');
    await expect(page.getByLabel('of every credential, present and future (token:*)').getAttribute('value')).resolves.toBe('token:*');
    await screenshot(page, 'apikeys-new');

    await page.getByLabel('Name', { exact: true }).fill('alarm-system');
    await page.getByLabel('Send mail (send)').check();
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url() === `${app.url}/apikeys` && r.request().method() === 'POST'),
      page.getByRole('button', { name: 'Create API key' }).click(),
    ]);
    // Shown on the answer to the POST itself (no redirect, no flash), and never cached.
    expect(response.status()).toBe(200);
    expect(response.headers()['cache-control']).toBe('no-store');
    expect(page.url()).toBe(`${app.url}/apikeys`);

    expect((await page.locator('h1').innerText()).trim()).toBe('API key alarm-system created');
    sendKey = await page.locator('#new-key').inputValue();
    expect(sendKey).toMatch(/^mgk_[A-Za-z0-9_-]{43}$/);
    expect(await page.locator('#new-key').getAttribute('readonly')).not.toBeNull();
    expect(await page.locator('.hint.warn').innerText()).toContain('it cannot be shown again');
    const curl = await page.locator('pre.curl-example').first().innerText();
    expect(curl).toContain(`curl -sS -X POST ${app.url}/api/v1/messages`);
    expect(curl).toContain(`-H 'Authorization: Bearer ${sendKey}'`);
    // Only the examples the key may use: no access-token or metrics example for a send key.
    expect(await page.locator('pre.curl-example').count()).toBe(1);
    await page.getByRole('button', { name: 'Copy' }).click();
    await expect.poll(() => page.locator('.copy-status').innerText()).toBe('Copied');
    await screenshot(page, 'apikeys-created');

    // The key is real and holds "send" only: a message without a sender is refused as input (400), not as auth.
    const refused = await fetch(`${app.url}/api/v1/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${sendKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ to: ['someone@example.com'], subject: 'Hello', text: 'It works.' }),
    });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('INPUT_INVALID');
    expect(await bearer('GET', '/api/v1/credentials', sendKey)).toBe(403);

    // The list names the key with its scope in words and that it was used, but never shows the key again.
    await page.getByRole('link', { name: 'I have copied the key' }).click();
    await page.waitForURL(`${app.url}/apikeys`);
    expect(await page.content()).not.toContain(sendKey);
    const row = page.locator('tbody tr', { hasText: 'alarm-system' });
    expect(await row.locator('[data-label="Allowed to"]').innerText()).toContain('send mail');
    expect((await row.locator('[data-label=Status]').innerText()).trim()).toBe('Active');
    expect(await row.locator('[data-label="Last used"] time').count()).toBe(1);
    const admin = page.locator('tbody tr', { hasText: 'test-admin' });
    expect(await admin.locator('[data-label="Allowed to"]').innerText()).toContain('admin (everything)');
    await screenshot(page, 'apikeys-list');

    // The audit log has the UI action (who, what, which key, field names) and never the key.
    const audit = await app.api('GET', '/api/v1/audit?target=alarm-system');
    expect(audit.json.entries).toEqual(expect.arrayContaining([expect.objectContaining({ actor: 'admin:admin', action: 'ui POST /apikeys', target: 'alarm-system', details: { fields: ['name', 'scopes'] } })]));
    expect(audit.text).not.toContain(sendKey);
    expect(app.logs()).not.toContain(sendKey);
    expect(unexpected(errors)).toEqual([]);
  });

  it('revokes a key only after confirmation, after which the API answers 401 for it', async () => {
    expect(sendKey).not.toBe('');
    const page = await newPage(b.browser);
    const errors = collectPageErrors(page);
    await signInAsAdmin(app, page);
    await page.goto(`${app.url}/apikeys`);
    const row = page.locator('tbody tr', { hasText: 'alarm-system' });

    // Saying no to the confirmation changes nothing.
    page.once('dialog', (dialog) => void dialog.dismiss());
    await row.getByRole('button', { name: 'Revoke alarm-system' }).click();
    await page.waitForTimeout(300);
    expect(page.url()).toBe(`${app.url}/apikeys`);
    expect(await bearer('GET', '/api/v1/credentials', sendKey)).toBe(403);

    let asked = '';
    page.once('dialog', (dialog) => {
      asked = dialog.message();
      void dialog.accept();
    });
    await Promise.all([page.waitForResponse((r) => r.url() === `${app.url}/apikeys` && r.request().method() === 'GET'), row.getByRole('button', { name: 'Revoke alarm-system' }).click()]);
    expect(asked).toContain('Revoke the API key alarm-system?');
    expect(await page.locator('.flash.success').innerText()).toContain('Revoked alarm-system');
    const revoked = page.locator('tbody tr', { hasText: 'alarm-system' });
    expect(await revoked.locator('[data-label=Status]').innerText()).toMatch(/^Revoked\s/);
    expect(await revoked.getByRole('button', { name: /Revoke/ }).count()).toBe(0);
    await screenshot(page, 'apikeys-revoked');

    // A verified key may be trusted from a cache for up to 1 s: ask until the API refuses it.
    await expect.poll(() => bearer('GET', '/api/v1/messages/none', sendKey), { timeout: 3000, interval: 200 }).toBe(401);
    expect(await bearer('POST', '/api/v1/messages', sendKey, { sender: 'x', to: ['someone@example.com'], subject: 's', text: 't' })).toBe(401);

    const audit = await app.api('GET', '/api/v1/audit?target=alarm-system');
    expect(audit.json.entries.map((e: { action: string }) => e.action)).toContain('ui POST /apikeys/:name/revoke');
    expect(audit.text).not.toContain(sendKey);
    expect(unexpected(errors)).toEqual([]);
  });

  it('refuses a bad name and no scope with an error on each field, keeps the choices, and creates nothing', async () => {
    const page = await newPage(b.browser);
    const errors = collectPageErrors(page);
    await signInAsAdmin(app, page);
    await page.goto(`${app.url}/apikeys/new`);
    await page.getByLabel('Name', { exact: true }).fill('bad name!');
    await page.getByRole('button', { name: 'Create API key' }).click();
    await page.waitForSelector('.error-summary');

    expect(await page.locator('.error-summary').innerText()).toContain('There are 2 problems');
    const nameField = page.locator('.field.has-error', { has: page.locator('#f-name') });
    expect(await nameField.locator('.error-text').innerText()).toContain('letters, digits');
    expect(await page.locator('#f-name').getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('#f-name').inputValue()).toBe('bad name!');
    expect(await page.locator('#scopes-error').innerText()).toMatch(/^Error:\s+choose at least one thing the key may do$/);
    await screenshot(page, 'apikeys-new-errors');

    // The same name as an active key: named on the name field; the checked scope stays checked.
    await page.getByLabel('Name', { exact: true }).fill('test-admin');
    await page.getByLabel(/^m365 /).check();
    await page.getByRole('button', { name: 'Create API key' }).click();
    await page.waitForSelector('.error-summary');
    expect(await page.locator('#f-name-error').innerText()).toContain('already');
    expect(await page.getByLabel(/^m365 /).isChecked()).toBe(true);
    expect(await page.locator('#scopes-error').count()).toBe(0);

    const keys = (await app.api('GET', '/api/v1/apikeys')).json.apiKeys as Array<{ name: string }>;
    expect(keys.map((k) => k.name).sort()).toEqual(['alarm-system', 'test-admin']);
    expect(unexpected(errors)).toEqual([]);
  });

  it('fits a 375 px phone: list, form and the new key page without sideways scrolling', async () => {
    const page = await newPage(b.browser, { width: 375 });
    const errors = collectPageErrors(page);
    await signInAsAdmin(app, page);
    await page.goto(`${app.url}/apikeys`);
    await noHorizontalOverflow(page);
    await screenshot(page, 'apikeys-list-375');

    await page.goto(`${app.url}/apikeys/new`);
    await noHorizontalOverflow(page);
    await screenshot(page, 'apikeys-new-375');
    await page.getByLabel('Name', { exact: true }).fill('prometheus-and-scripts');
    await page.getByLabel('Read metrics (metrics)').check();
    await page.getByLabel(/^m365 /).check();
    await page.getByRole('button', { name: 'Create API key' }).click();
    await page.waitForSelector('#new-key');
    const key = await page.locator('#new-key').inputValue();
    expect(await page.locator('pre.curl-example').allInnerTexts()).toEqual([
      `curl -sS ${app.url}/api/v1/credentials/m365/access-token \\\n  -H 'Authorization: Bearer ${key}'`,
      `curl -sS ${app.url}/metrics -H 'Authorization: Bearer ${key}'`,
    ]);
    await noHorizontalOverflow(page);
    await screenshot(page, 'apikeys-created-375');
    // The scopes hold: the metrics yes, sending no.
    expect(await bearer('GET', '/metrics', key)).toBe(200);
    expect(await bearer('POST', '/api/v1/messages', key, {})).toBe(403);
    expect(unexpected(errors)).toEqual([]);
  });
});
