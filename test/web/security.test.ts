// Proves the web UI's doors: only sign-in, setup, the OAuth callback and health are open; changes need a session, its CSRF
// token and this site's origin; sign-ins are rate-limited; the setup link works once; cookies are HttpOnly and SameSite.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';
import { ADMIN_PASSWORD } from '../support/webAdmin.js';
import { collectPageErrors, newPage, screenshot, useBrowser } from '../support/browser.js';

let app: MailgateApp;

/** A browser-like client over fetch: keeps cookies, reads the form's hidden CSRF field. */
class Client {
  cookies = new Map<string, string>();
  constructor(private readonly base: string) {}

  async request(method: string, path: string, form?: Record<string, string>, headers: Record<string, string> = {}): Promise<{ status: number; text: string; location: string | null; setCookies: string[] }> {
    const res = await fetch(`${this.base}${path}`, {
      method,
      redirect: 'manual',
      headers: {
        cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '),
        ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        ...headers,
      },
      ...(form ? { body: new URLSearchParams(form) } : {}),
    });
    const setCookies = res.headers.getSetCookie();
    for (const c of setCookies) {
      const [pair = ''] = c.split(';');
      const eq = pair.indexOf('=');
      const value = pair.slice(eq + 1);
      if (value === '' || /max-age=0|expires=thu, 01 jan 1970/i.test(c)) this.cookies.delete(pair.slice(0, eq));
      else this.cookies.set(pair.slice(0, eq), value);
    }
    return { status: res.status, text: await res.text(), location: res.headers.get('location'), setCookies };
  }

  static csrfOf(html: string): string {
    const token = /name="_csrf" value="([^"]+)"/.exec(html)?.[1];
    if (!token) throw new Error('no CSRF field on the page');
    return token;
  }

  async signIn(username: string, password: string): Promise<{ status: number; text: string; location: string | null; setCookies: string[] }> {
    const form = await this.request('GET', '/login');
    return this.request('POST', '/login', { _csrf: Client.csrfOf(form.text), username, password, next: '/credentials' });
  }
}

beforeAll(async () => {
  app = await startMailgateApp();
  await app.services.admins.create('admin', ADMIN_PASSWORD);
  await app.api('POST', '/api/v1/credentials', { name: 'keep-me', provider: 'google', clientId: 'id.apps.googleusercontent.com', clientSecret: 'a-client-secret', email: 'ops@example.com' });
});
afterAll(async () => app?.close());

describe('web UI access control', () => {
  it('lets nobody in without a session: pages redirect to sign-in, the API wants a key; only sign-in, callback and health are open', async () => {
    const anonymous = new Client(app.url);
    for (const path of ['/', '/credentials', '/credentials/keep-me', '/credentials/new', '/servers', '/outbox', '/inbound', '/alerts', '/apikeys', '/audit', '/account']) {
      const res = await anonymous.request('GET', path);
      expect(res.status, path).toBe(303);
      expect(res.location, path).toBe(`/login?next=${encodeURIComponent(path)}`);
    }
    expect((await anonymous.request('GET', '/api/v1/credentials')).status).toBe(401);
    expect((await anonymous.request('GET', '/login')).status).toBe(200);
    expect((await anonymous.request('GET', '/healthz')).status).toBe(200);
    expect((await anonymous.request('GET', '/readyz')).status).toBe(200);
    const callback = await anonymous.request('GET', '/oauth/callback?state=forged&code=x');
    expect(callback.status).toBe(400);
    expect(callback.text).toContain('not valid');
    const post = await anonymous.request('POST', '/credentials/keep-me/delete', { _csrf: 'guess' });
    expect(post.status).toBe(401);
    expect(post.text).toContain('Your session has ended');
    expect((await app.api('GET', '/api/v1/credentials/keep-me')).status).toBe(200);
  });

  it('refuses a form post without the session\'s CSRF token, or from another site, and changes nothing', async () => {
    const admin = new Client(app.url);
    expect((await admin.signIn('admin', ADMIN_PASSWORD)).status).toBe(303);
    const page = await admin.request('GET', '/credentials/keep-me/delete');
    expect(page.status).toBe(200);
    const csrf = Client.csrfOf(page.text);

    const missing = await admin.request('POST', '/credentials/keep-me/delete', {});
    expect(missing.status).toBe(403);
    expect(missing.text).toContain('This form has expired');
    const wrong = await admin.request('POST', '/credentials/keep-me/delete', { _csrf: `${csrf.slice(0, -2)}xx` });
    expect(wrong.status).toBe(403);
    const foreign = await admin.request('POST', '/credentials/keep-me/delete', { _csrf: csrf }, { origin: 'https://evil.example' });
    expect(foreign.status).toBe(403);
    expect(foreign.text).toContain('came from another site');
    const crossSite = await admin.request('POST', '/credentials/keep-me/delete', { _csrf: csrf }, { 'sec-fetch-site': 'cross-site' });
    expect(crossSite.status).toBe(403);
    expect((await app.api('GET', '/api/v1/credentials/keep-me')).status).toBe(200);

    // The same post with the token, from this site, goes through: the refusals above were the guard, not a broken route.
    const real = await admin.request('POST', '/credentials/keep-me/refresh', { _csrf: csrf }, { origin: app.url });
    expect(real.status).toBe(303);
  });

  it('sets the session cookie HttpOnly and SameSite=Lax, never adopts a planted one, and ends it at sign-out', async () => {
    const admin = new Client(app.url);
    admin.cookies.set('mailgate_session', 'planted-by-someone-else');
    const signedIn = await admin.signIn('admin', ADMIN_PASSWORD);
    const cookie = signedIn.setCookies.find((c) => c.startsWith('mailgate_session='));
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Lax/i);
    expect(cookie).not.toMatch(/Secure/i); // the public URL is http://127.0.0.1 here; https makes it Secure and __Host-
    expect(admin.cookies.get('mailgate_session')).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const page = await admin.request('GET', '/credentials');
    expect(page.status).toBe(200);
    const session = admin.cookies.get('mailgate_session')!;
    await admin.request('POST', '/logout', { _csrf: Client.csrfOf(page.text) });
    // The old cookie value is dead on the server, not just deleted in this browser.
    const replay = new Client(app.url);
    replay.cookies.set('mailgate_session', session);
    expect((await replay.request('GET', '/credentials')).status).toBe(303);
  });

  it('marks cookies Secure with the __Host- prefix when the public URL is https', async () => {
    const behindTls = await startMailgateApp({ configure: (config) => ({ ...config, publicUrl: 'https://mailgate.example.com' }) });
    try {
      await behindTls.services.admins.create('admin', ADMIN_PASSWORD);
      const res = await fetch(`${behindTls.url}/login`);
      expect(res.status).toBe(200);
      const cookie = res.headers.getSetCookie().find((c) => c.includes('mailgate_login='));
      expect(cookie).toMatch(/^__Host-mailgate_login=/);
      expect(cookie).toMatch(/; Secure/i);
      expect(cookie).toMatch(/; Path=\//);
      expect(cookie).not.toMatch(/Domain=/i);
    } finally {
      await behindTls.close();
    }
  });

  it('only redirects to a path on this site after sign-in', async () => {
    const admin = new Client(app.url);
    const form = await admin.request('GET', '/login');
    const res = await admin.request('POST', '/login', { _csrf: Client.csrfOf(form.text), username: 'admin', password: ADMIN_PASSWORD, next: '//evil.example/x' });
    expect(res.status).toBe(303);
    expect(res.location).toBe('/overview');
  });
});

describe('sign-in rate limit', () => {
  it('refuses further attempts after five failures, even with the right password, and says when to try again', async () => {
    const limited = await startMailgateApp();
    try {
      await limited.services.admins.create('admin', ADMIN_PASSWORD);
      const client = new Client(limited.url);
      for (let i = 0; i < 5; i++) {
        const res = await client.signIn('admin', `wrong password ${i}`);
        expect(res.status).toBe(401);
        expect(res.text).toContain('username or password is not right');
      }
      const locked = await client.signIn('admin', ADMIN_PASSWORD);
      expect(locked.status).toBe(429);
      expect(locked.text).toMatch(/Try again in 1[45] minutes/);
      expect(client.cookies.has('mailgate_session')).toBe(false);
      // Failures are audited, without the password typed.
      const audit = await limited.api('GET', '/api/v1/audit?limit=10');
      expect(audit.json.entries.filter((e: { action: string }) => e.action === 'ui sign-in failed')).toHaveLength(5);
      expect(audit.text).not.toContain('wrong password');
    } finally {
      await limited.close();
    }
  });
});

describe('first start', () => {
  const b = useBrowser();

  it('creates the first admin through the one-time setup link, which then stops working', async () => {
    const fresh = await startMailgateApp();
    try {
      const outcome = await fresh.services.admins.ensureFirstAdmin(undefined);
      expect(outcome.kind).toBe('setup');
      const token = outcome.kind === 'setup' ? outcome.token : '';
      const page = await newPage(b.browser);
      const errors = collectPageErrors(page);
      await page.goto(`${fresh.url}/login`);
      expect(await page.locator('main').innerText()).toContain('no admin yet');
      await page.goto(`${fresh.url}/setup?token=${token}`);
      await screenshot(page, 'setup');
      await page.getByLabel('Username').fill('ops');
      await page.locator('#f-password').fill('short');
      await page.locator('#f-confirm').fill('short');
      await page.getByRole('button', { name: 'Create admin and sign in' }).click();
      expect(await page.locator('.error-summary').innerText()).toContain('at least 12 characters');
      await page.locator('#f-password').fill('a long enough passphrase');
      await page.locator('#f-confirm').fill('a long enough passphrase');
      await Promise.all([page.waitForURL(`${fresh.url}/credentials`), page.getByRole('button', { name: 'Create admin and sign in' }).click()]);
      expect(await page.locator('.account').innerText()).toContain('ops');
      expect(errors.filter((e) => !e.includes('status of 400'))).toEqual([]);

      const again = await fetch(`${fresh.url}/setup?token=${token}`);
      expect(again.status).toBe(403);
      expect(await fresh.services.admins.list()).toMatchObject([{ username: 'ops' }]);
      expect(await fresh.services.admins.authenticate('ops', 'a long enough passphrase')).toMatchObject({ username: 'ops' });
    } finally {
      await fresh.close();
    }
  });
});
