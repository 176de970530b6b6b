// Proves the sign-in page against the review's attacks: `next` cannot send the browser off-site or break the Location
// header, and parallel or spread-out guessing is bounded without letting anyone lock the admin out from elsewhere.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';
import { ADMIN_PASSWORD } from '../support/webAdmin.js';
import { FormClient } from '../support/formClient.js';

let app: MailgateApp;

beforeAll(async () => {
  app = await startMailgateApp();
  await app.services.admins.create('admin', ADMIN_PASSWORD);
});
afterAll(async () => app?.close());

/** Where a browser goes with this Location: resolved against the page's URL, as a browser does. */
function landing(location: string | undefined): URL {
  expect(location).toBeDefined();
  return new URL(location!, `${app.url}/login`);
}

describe('the page after sign-in', () => {
  it('never leaves the site, whatever `next` was posted (tab, backslash, scheme-relative, absolute)', async () => {
    const hostile = ['/\t/evil.example', '/\t/evil.example/path?x=1', '/\\evil.example', '/\\\\evil.example', '/\t\\evil.example', '//evil.example', '///evil.example', 'https://evil.example/', '/\n/evil.example', ' /evil'];
    for (const next of hostile) {
      const client = new FormClient(app.url);
      const res = await client.signIn('admin', ADMIN_PASSWORD, next);
      expect(res.status, JSON.stringify(next)).toBe(303);
      expect(landing(res.location).origin, JSON.stringify(next)).toBe(new URL(app.url).origin);
    }
  });

  it('answers CR/LF and non-Latin-1 characters in `next` with a clean redirect, not a 500 or a header of its own', async () => {
    for (const next of ['/credentials\r\nSet-Cookie: planted=1', '/\r\n/evil.example', '/outbox?q=€ü', '/crédentials', '/servers\u2028x']) {
      const client = new FormClient(app.url);
      const res = await client.signIn('admin', ADMIN_PASSWORD, next);
      expect(res.status, JSON.stringify(next)).toBe(303);
      expect(res.location, JSON.stringify(next)).toMatch(/^\/[\x21-\x7e]*$/);
      expect(landing(res.location).origin).toBe(new URL(app.url).origin);
      expect(client.cookies.has('planted')).toBe(false);
    }
    expect(app.logs()).not.toContain('"level":"error"');
  });

  it('keeps a page of this site with its query', async () => {
    const client = new FormClient(app.url);
    const res = await client.signIn('admin', ADMIN_PASSWORD, '/outbox?status=failed');
    expect(res.location).toBe('/outbox?status=failed');
    // Signed in already: GET /login?next=… redirects at once, by the same rule.
    expect((await client.request('GET', '/login?next=%2Fservers%3Fx%3D1')).location).toBe('/servers?x=1');
    expect(landing((await client.request('GET', '/login?next=/%09/evil.example')).location).origin).toBe(new URL(app.url).origin);
    expect((await client.request('GET', '/login?next=/%0D%0ASet-Cookie:%20planted=1')).status).toBe(303);
    expect(client.cookies.has('planted')).toBe(false);
  });

  it('does not carry an off-site `next` into the sign-in form', async () => {
    const form = await new FormClient(app.url).request('GET', '/login?next=/%09/evil.example');
    expect(form.status).toBe(200);
    expect(form.text).toContain('name="next" value="/overview"');
  });
});

describe('failed sign-ins', () => {
  it('counts twelve wrong passwords sent at once before checking any: five are checked, seven refused 429', async () => {
    const fresh = await startMailgateApp();
    try {
      await fresh.services.admins.create('admin', ADMIN_PASSWORD);
      const client = new FormClient(fresh.url);
      const form = await client.request('GET', '/login');
      const csrf = FormClient.csrfOf(form.text);
      const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => client.request('POST', '/login', { _csrf: csrf, username: 'admin', password: `wrong guess ${i}`, next: '/credentials' })));
      const statuses = answers.map((a) => a.status).sort();
      expect(statuses).toEqual([...Array(5).fill(401), ...Array(7).fill(429)]);
      expect(answers.find((a) => a.status === 429)?.headers['retry-after']).toMatch(/^(899|900)$/);
      // Locked for the address, whatever the password; only the five checked guesses were audited.
      expect((await client.signIn('admin', ADMIN_PASSWORD)).status).toBe(429);
      const audit = await fresh.api('GET', '/api/v1/audit?limit=50');
      expect(audit.json.entries.filter((e: { action: string }) => e.action === 'ui sign-in failed')).toHaveLength(5);
    } finally {
      await fresh.close();
    }
  });

  it('locks the address that guessed, not the admin: the right password still works from another address', async () => {
    const fresh = await startMailgateApp();
    try {
      await fresh.services.admins.create('admin', ADMIN_PASSWORD);
      const attacker = new FormClient(fresh.url, '127.0.0.2');
      for (let i = 0; i < 5; i++) expect((await attacker.signIn('admin', `wrong guess ${i}`)).status).toBe(401);
      expect((await attacker.signIn('admin', ADMIN_PASSWORD)).status).toBe(429);
      const owner = new FormClient(fresh.url, '127.0.0.1');
      const res = await owner.signIn('admin', ADMIN_PASSWORD);
      expect(res.status).toBe(303);
      expect(owner.cookies.has('mailgate_session')).toBe(true);
    } finally {
      await fresh.close();
    }
  });

  it('locks a username after 20 failures spread over addresses, counting a right password\'s attempt back', { timeout: 60_000 }, async () => {
    const fresh = await startMailgateApp();
    try {
      await fresh.services.admins.create('admin', ADMIN_PASSWORD);
      // Four typos, then the right password: its provisional failure is undone and the address starts again.
      const owner = new FormClient(fresh.url, '127.0.0.1');
      for (let i = 0; i < 4; i++) expect((await owner.signIn('admin', `typo ${i}`)).status).toBe(401);
      expect((await owner.signIn('admin', ADMIN_PASSWORD)).status).toBe(303);
      expect((await new FormClient(fresh.url, '127.0.0.1').signIn('admin', 'one more typo')).status).toBe(401);
      // 5 failures on "admin" so far; 15 more from three addresses are all checked, which makes 20: the username locks.
      for (const address of ['127.0.0.2', '127.0.0.3', '127.0.0.4']) {
        const guesser = new FormClient(fresh.url, address);
        for (let i = 0; i < 5; i++) expect((await guesser.signIn('admin', `guess ${i}`)).status, `${address} #${i}`).toBe(401);
      }
      const elsewhere = await new FormClient(fresh.url, '127.0.0.5').signIn('admin', ADMIN_PASSWORD);
      expect(elsewhere.status).toBe(429);
      expect(elsewhere.text).toMatch(/Try again in 1[45] minutes/);
      // Another username is not affected.
      await fresh.services.admins.create('second', `${ADMIN_PASSWORD}-2`);
      expect((await new FormClient(fresh.url, '127.0.0.5').signIn('second', `${ADMIN_PASSWORD}-2`)).status).toBe(303);
    } finally {
      await fresh.close();
    }
  });
});
