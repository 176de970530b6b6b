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
    expect(form.text).toContain('name="next" value="/credentials"');
  });
});
