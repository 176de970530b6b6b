// Proves the alerts page and the audit log in a real browser against the test bed: a grant revoked at the provider
// shows as an active alert with its Reconnect link (and the warning that alert e-mails go through that very
// credential), the configured channels without their secrets, the resolved list after reconnecting; and admin
// actions in the UI land in the audit log with the field names but never the values, filterable and paged.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/load.js';
import type { TestClient } from '../testbed/authServer.js';
import { getFreePort } from '../testbed/ports.js';
import { useTestbed } from '../testbed/useTestbed.js';
import { collectPageErrors, newPage, screenshot, useBrowser } from '../support/browser.js';
import { addConnected, connect, login, microsoftCredential } from '../support/credentials.js';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhookReceiver.js';
import { signInAsAdmin } from '../support/webAdmin.js';

const bed = useTestbed({ mail: false });
const b = useBrowser();
const HOOK_SECRET = 'whsec-web-alerts-0123456789abcdef';
let app: MailgateApp;
let hook: WebhookReceiver;
let client: TestClient;

beforeAll(async () => {
  hook = await startWebhookReceiver(HOOK_SECRET);
  app = await startMailgateApp({
    configure: (config: Config): Config => ({
      ...config,
      alerts: { ...config.alerts, webhook: { url: `${hook.url}/alerts?token=path-token-never-shown`, secret: HOOK_SECRET }, email: { sender: 'alerts-sender', to: ['ops@example.test', 'oncall@example.test'] }, command: { path: '/bin/true', args: ['--quiet'], timeoutMs: 5000 } },
    }),
  });
  client = bed.auth.addClient({ clientId: 'mailgate-web-alerts', clientSecret: 'web-alerts-client-secret', redirectUris: [`${app.url}/oauth/callback`] });
  await addConnected(app, microsoftCredential(bed.auth, client, 'm365'), login(bed.auth.users.alice));
  // Alert e-mails go through a server that uses m365 itself: the page must warn that they may not arrive.
  const server = { name: 'm365-smtp', protocol: 'smtp', host: '127.0.0.1', port: await getFreePort(), security: 'starttls', username: bed.auth.users.alice.email, auth: { type: 'oauth2', credential: 'm365' } };
  expect((await app.api('POST', '/api/v1/servers', server)).status).toBe(201);
  expect((await app.api('POST', '/api/v1/senders', { name: 'alerts-sender', primary: 'm365-smtp', from: bed.auth.users.alice.email })).status).toBe(201);
});
afterAll(async () => {
  await app?.close();
  await hook?.close();
});

describe('web UI: alerts', () => {
  it('lists a credential whose grant was revoked as an active alert with its Reconnect link, the same-route warning and the channels without secrets; after reconnecting it is resolved and the page says all good', async () => {
    bed.auth.revokeGrants(bed.auth.users.alice.email, { clientId: client.clientId });
    expect((await app.api('POST', '/api/v1/credentials/m365/refresh')).status).toBe(409);
    expect(await app.services.alerts.evaluate()).toMatchObject({ raised: 1 });

    const page = await newPage(b.browser);
    const errors = collectPageErrors(page);
    await signInAsAdmin(app, page);
    await page.goto(`${app.url}/alerts`);
    expect(await page.title()).toBe('Alerts (1) · Mailgate');

    const item = page.locator('.alert-list > li');
    await expect(item.count()).resolves.toBe(1);
    expect(await item.locator('.badge').innerText()).toContain('Needs sign-in again');
    expect(await item.getByRole('link', { name: 'm365', exact: true }).getAttribute('href')).toBe('/credentials/m365');
    expect(await item.locator('.alert-message').innerText()).toContain('credential m365 needs someone to sign in again');
    expect(await item.locator('.hint.warn').innerText()).toContain('alert e-mails go through credential m365 itself');
    const facts = await item.locator('.alert-facts').innerText();
    expect(facts).toMatch(/Raised\s+\d+ s ago/);
    expect(facts).toMatch(/Notifications sent\s+1\b/);
    expect(hook.received.filter((r) => r.body?.alert?.kind === 'needs_reauthorization')).toHaveLength(1);

    // Channels: the webhook's host only (not its path, which may carry a token, nor its secret), sender, recipients, command.
    const channels = await page.locator('#channels').innerText();
    expect(channels).toContain(`Webhook to ${new URL(hook.url).host}`);
    expect(channels).toContain('E-mail through sender alerts-sender to ops@example.test, oncall@example.test');
    expect(channels).toContain('Command /bin/true with 1 argument');
    const markup = await page.content();
    expect(markup).not.toContain(HOOK_SECRET);
    expect(markup).not.toContain('path-token-never-shown');
    expect(await page.locator('.empty').count()).toBe(0);

    await screenshot(page, 'alerts-active');
    const phone = await newPage(b.browser, { width: 375 });
    await phone.context().addCookies(await page.context().cookies());
    await phone.goto(`${app.url}/alerts`);
    // At 375 px nothing runs off the side of the page.
    expect(await phone.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(375);
    await screenshot(phone, 'alerts-active-375');
    await phone.close();

    // The fixing button leads to the credential's Reconnect page.
    const reconnect = item.getByRole('link', { name: 'Reconnect m365' });
    expect(await reconnect.getAttribute('href')).toBe('/credentials/m365/connect');
    await reconnect.click();
    await page.waitForURL(`${app.url}/credentials/m365/connect`);
    expect(await page.locator('h1').innerText()).toBe('Reconnect m365');

    expect((await connect(app, 'm365', login(bed.auth.users.alice))).status).toBe(200);
    expect(await app.services.alerts.evaluate()).toMatchObject({ resolved: 1 });
    await page.goto(`${app.url}/alerts`);
    expect(await page.locator('.empty h2').innerText()).toBe('All good');
    const resolved = page.locator('table.resolved-alerts tbody tr');
    await expect(resolved.count()).resolves.toBe(1);
    expect(await resolved.locator('[data-label=Subject]').innerText()).toContain('m365');
    expect(await resolved.locator('[data-label=Kind]').innerText()).toContain('Needs sign-in again');
    expect(await resolved.locator('[data-label=Resolved] time').innerText()).toMatch(/^\d+ s ago$/);
    await screenshot(page, 'alerts-resolved');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('with no channel configured, says how to configure one under alerts in the configuration file', async () => {
    const bare = await startMailgateApp();
    try {
      const page = await newPage(b.browser);
      await signInAsAdmin(bare, page);
      await page.goto(`${bare.url}/alerts`);
      expect(await page.locator('.empty h2').innerText()).toBe('All good');
      expect(await page.locator('main .hint.warn').innerText()).toContain('No alert channel is configured');
      const channels = await page.locator('#channels').innerText();
      expect(channels).toContain('nowhere yet');
      for (const key of ['alerts.webhook', 'alerts.email', 'alerts.command']) expect(channels).toContain(key);
      expect(await page.locator('#channels pre').innerText()).toMatch(/^alerts:\n {2}webhook:/);
      await screenshot(page, 'alerts-no-channels');
      await page.close();
    } finally {
      await bare.close();
    }
  });
});

describe('web UI: audit log', () => {
  const SECRET_TYPED = 'typed-client-secret-value-7f3a9c';

  it('records UI actions by admin:admin with the field names but never the values, shows API, CLI and provider actors readably, and filters by target', async () => {
    expect((await app.api('POST', '/api/v1/credentials', microsoftCredential(bed.auth, client, 'spare'))).status).toBe(201);
    await app.services.audit.record('cli:operator', 'credential.add', 'spare', { fields: ['clientSecret'] });

    const page = await newPage(b.browser);
    const errors = collectPageErrors(page);
    await signInAsAdmin(app, page);
    // An admin pastes a new client secret into the edit form, saves, then deletes the credential.
    await page.goto(`${app.url}/credentials/spare/edit`);
    await page.locator('input[name=clientSecret]').fill(SECRET_TYPED);
    await Promise.all([page.waitForURL(`${app.url}/credentials/spare`), page.getByRole('button', { name: 'Save changes' }).click()]);
    await page.goto(`${app.url}/credentials/spare/delete`);
    await Promise.all([page.waitForURL(`${app.url}/credentials`), page.getByRole('button', { name: 'Delete spare' }).click()]);

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit log' }).click();
    await page.waitForURL(`${app.url}/audit`);
    const rows = page.locator('table.audit-log tbody tr');
    // Newest first: the delete, then the edit.
    const [deleted, edited] = [rows.nth(0), rows.nth(1)];
    expect(await deleted.locator('[data-label=Who] .actor').getAttribute('title')).toBe('admin:admin');
    expect(await deleted.locator('[data-label=Who]').innerText()).toMatch(/^admin\s+web UI admin$/);
    expect(await deleted.locator('[data-label=Action]').innerText()).toMatch(/^Delete credential\s+ui POST \/credentials\/:name\/delete$/);
    expect((await deleted.locator('[data-label=Target]').innerText()).trim()).toBe('spare');
    expect(await edited.locator('[data-label=Action]').innerText()).toContain('Change credential');
    const editedDetails = await edited.locator('[data-label=Details]').innerText();
    expect(editedDetails).toContain('clientSecret');
    expect(editedDetails).toContain('clientId');
    expect(editedDetails).not.toContain('_csrf');
    // The value typed into the form is nowhere on the page, nor the credential's stored secret.
    expect(await page.content()).not.toContain(SECRET_TYPED);
    expect(await page.content()).not.toContain(client.clientSecret);

    // Actors of the other ways in, readably.
    const who = await page.locator('table.audit-log [data-label=Who]').allInnerTexts();
    expect(who).toContainEqual(expect.stringMatching(/^test-admin\s+API key$/));
    expect(who).toContainEqual(expect.stringMatching(/^operator\s+command line, system user$/));
    expect(who).toContainEqual(expect.stringMatching(new RegExp(`^${bed.auth.users.alice.email}\\s+signed in at the provider$`)));
    const actions = await page.locator('table.audit-log [data-label=Action] .action-words').allInnerTexts();
    expect(actions).toContain('Signed in to the web UI');
    expect(actions).toContain('Add credential');
    expect(actions).toContain('Connected a mailbox (provider sign-in)');
    await screenshot(page, 'audit');

    // Filter by target through the GET form: only spare's entries, the API add among them.
    await page.getByLabel('Target').fill('spare');
    await Promise.all([page.waitForURL(`${app.url}/audit?target=spare`), page.getByRole('button', { name: 'Filter' }).click()]);
    const targets = await page.locator('table.audit-log [data-label=Target]').allInnerTexts();
    expect(targets.map((t) => t.trim())).toEqual(['spare', 'spare', 'spare', 'spare']);
    expect(await page.locator('table.audit-log [data-label=Who] .actor').evaluateAll((els) => els.map((e) => e.getAttribute('title')))).toEqual(['admin:admin', 'admin:admin', 'cli:operator', 'apikey:test-admin']);
    expect(await page.locator('table.audit-log [data-label=Action] .action-words').allInnerTexts()).toEqual(['Delete credential', 'Change credential', 'Add credential', 'Add credential']);
    expect(await page.getByLabel('Target').inputValue()).toBe('spare');
    await page.getByLabel('Target').fill('no-such-target');
    await Promise.all([page.waitForURL(`${app.url}/audit?target=no-such-target`), page.getByRole('button', { name: 'Filter' }).click()]);
    expect(await page.locator('.empty h2').innerText()).toBe('Nothing recorded for no-such-target');

    const phone = await newPage(b.browser, { width: 375 });
    await phone.context().addCookies(await page.context().cookies());
    await phone.goto(`${app.url}/audit`);
    expect(await phone.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(375);
    await screenshot(phone, 'audit-375');
    await phone.close();
    expect(errors).toEqual([]);
    await page.close();
  });

  it('shows 100 entries a page, newest first, with an "Older entries" link to the rest', async () => {
    for (let i = 1; i <= 130; i++) await app.services.audit.record('apikey:bulk', 'PATCH /api/v1/servers/:name', 'paged', { fields: ['port'], status: 200, n: i });
    const page = await newPage(b.browser);
    await signInAsAdmin(app, page);
    await page.goto(`${app.url}/audit?target=paged`);
    const rows = page.locator('table.audit-log tbody tr');
    await expect(rows.count()).resolves.toBe(100);
    const ids = async () => (await rows.evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-audit-id')))));
    const first = await ids();
    expect(first).toEqual([...first].sort((x, y) => y - x));
    // Other detail keys are named, their values left out.
    expect(await rows.first().locator('[data-label=Details]').innerText()).toMatch(/Fields: port\s+HTTP 200\s+Also recorded: n/);
    expect(await page.getByRole('link', { name: 'Newest entries' }).count()).toBe(0);

    await page.getByRole('link', { name: 'Older entries' }).click();
    await page.waitForURL(`${app.url}/audit?target=paged&before=${first[99]}`);
    const second = await ids();
    expect(second).toHaveLength(30);
    expect(Math.max(...second)).toBeLessThan(Math.min(...first));
    expect(await page.getByRole('link', { name: 'Older entries' }).count()).toBe(0);
    await page.getByRole('link', { name: 'Newest entries' }).click();
    await page.waitForURL(`${app.url}/audit?target=paged`);
    await expect(rows.count()).resolves.toBe(100);
    await page.close();
  });
});
