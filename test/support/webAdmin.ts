// Signs a browser page in to a running Mailgate's web UI as a freshly created admin, for the web UI's browser tests.
import type { Page } from 'playwright-core';
import type { MailgateApp } from './mailgateApp.js';

export const ADMIN_PASSWORD = 'correct horse battery staple';

/** Creates the admin once per app (idempotent), signs `page` in through the real login form, and opens the credentials page. */
export async function signInAsAdmin(app: MailgateApp, page: Page, username = 'admin'): Promise<void> {
  const existing = await app.services.admins.list();
  if (!existing.some((a) => a.username === username)) await app.services.admins.create(username, ADMIN_PASSWORD);
  await page.goto(`${app.url}/login`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(ADMIN_PASSWORD);
  // Signing in lands on the overview; the tests start from the credentials page, as a person's first visit does.
  await Promise.all([page.waitForURL(`${app.url}/overview`), page.getByRole('button', { name: 'Sign in' }).click()]);
  await page.goto(`${app.url}/credentials`);
}
