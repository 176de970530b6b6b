// Proves the basics of accessibility on every page of the web UI: one h1, a language, labelled controls, named buttons and
// links, images with alt text, a skip link first in the tab order, and focus moved to error messages.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newPage, useBrowser } from '../support/browser.js';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';
import { signInAsAdmin } from '../support/webAdmin.js';

const b = useBrowser();
let app: MailgateApp;

const PAGES = [
  '/credentials',
  '/credentials/new?provider=microsoft',
  '/credentials/new?provider=google',
  '/credentials/new?provider=generic',
  '/credentials/ops-google',
  '/credentials/ops-google/edit',
  '/credentials/ops-google/connect',
  '/credentials/ops-google/delete',
  '/servers',
  '/servers/new',
  '/senders/new',
  '/outbox',
  '/inbound',
  '/relay',
  '/relay/relay-accounts/new',
  '/relay/proxy-accounts/new',
  '/alerts',
  '/audit',
  '/apikeys',
  '/account',
];

/** Problems found on the current page, as text (an empty list passes). */
const AUDIT = `(() => {
  const problems = [];
  const visible = (e) => e.getClientRects().length > 0 || e.closest('details:not([open])');
  if (!document.documentElement.lang) problems.push('no lang on <html>');
  const h1 = document.querySelectorAll('h1');
  if (h1.length !== 1) problems.push(h1.length + ' h1 elements');
  if (!document.title.trim()) problems.push('no title');
  for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    if (el.hasAttribute('hidden')) continue;
    const named = (el.labels && el.labels.length > 0) || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
    if (!named) problems.push('unlabelled ' + el.tagName + ' ' + (el.name || el.id));
  }
  for (const el of document.querySelectorAll('button, a[href]')) {
    if (!visible(el)) continue;
    const name = (el.innerText || el.textContent || '').trim() || el.getAttribute('aria-label') || el.getAttribute('title') || (el.querySelector('img[alt]') && el.querySelector('img[alt]').alt);
    if (!name) problems.push('unnamed ' + el.tagName + ' ' + el.outerHTML.slice(0, 80));
  }
  for (const img of document.querySelectorAll('img')) if (!img.hasAttribute('alt')) problems.push('img without alt');
  const ids = [...document.querySelectorAll('[id]')].map((e) => e.id);
  const dup = ids.filter((id, i) => ids.indexOf(id) !== i);
  if (dup.length) problems.push('duplicate ids ' + dup.join(','));
  return problems;
})()`;

beforeAll(async () => {
  app = await startMailgateApp();
  await app.api('POST', '/api/v1/credentials', { name: 'ops-google', provider: 'google', clientId: 'id.apps.googleusercontent.com', clientSecret: 'a-client-secret', email: 'ops@example.com' });
});
afterAll(async () => app?.close());

describe('web UI accessibility basics', () => {
  it('gives every page one h1, a language, labelled form controls, named buttons and links, and unique ids', async () => {
    const page = await newPage(b.browser);
    await signInAsAdmin(app, page);
    for (const path of PAGES) {
      const res = await page.goto(`${app.url}${path}`);
      expect(res?.status(), path).toBe(200);
      expect(await page.evaluate<string[]>(AUDIT), path).toEqual([]);
    }
    await page.context().clearCookies();
    await page.goto(`${app.url}/login`);
    expect(await page.evaluate<string[]>(AUDIT), '/login').toEqual([]);
  });

  it('puts a skip link first in the tab order, which moves focus to the main content', async () => {
    const page = await newPage(b.browser);
    await signInAsAdmin(app, page);
    await page.goto(`${app.url}/credentials`);
    await page.keyboard.press('Tab');
    expect(await page.evaluate<string>('document.activeElement.textContent')).toBe('Skip to content');
    await page.keyboard.press('Enter');
    expect(await page.evaluate<string>('document.activeElement.id')).toBe('main');
  });

  it('moves focus to the error summary of a refused form, so screen readers announce it', async () => {
    const page = await newPage(b.browser);
    await signInAsAdmin(app, page);
    await page.goto(`${app.url}/credentials/new?provider=google`);
    await page.getByRole('button', { name: 'Add credential' }).click();
    await page.waitForSelector('.error-summary');
    expect(await page.evaluate<string>('document.activeElement.className')).toContain('error-summary');
    expect(await page.evaluate<string | null>("document.querySelector('.error-summary').getAttribute('role')")).toBe('alert');
  });
});
