// Proves the web form's Microsoft cloud select over plain HTTP (sign-in form, session cookie, CSRF token): choosing US
// Government stores its authority and scopes, and the form shows that cloud's scopes beside the protocols.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';
import { ADMIN_PASSWORD } from '../support/webAdmin.js';

let app: MailgateApp;
const cookies = new Map<string, string>();

/** fetch with this test's cookie jar and the Origin a browser sends on a form post. */
async function browse(path: string, form?: Record<string, string | string[]>): Promise<Response> {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(form ?? {})) for (const one of [v].flat()) body.append(k, one);
  const res = await fetch(`${app.url}${path}`, {
    method: form ? 'POST' : 'GET',
    redirect: 'manual',
    headers: {
      cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; '),
      ...(form ? { 'content-type': 'application/x-www-form-urlencoded', origin: app.url } : {}),
    },
    ...(form ? { body } : {}),
  });
  for (const c of res.headers.getSetCookie()) {
    const [pair = ''] = c.split(';');
    const eq = pair.indexOf('=');
    if (eq > 0) cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return res;
}

const csrfOf = (page: string) => /name="_csrf" value="([^"]+)"/.exec(page)?.[1] ?? '';

beforeAll(async () => {
  app = await startMailgateApp();
  await app.services.admins.create('admin', ADMIN_PASSWORD);
  const loginPage = await (await browse('/login')).text();
  const signedIn = await browse('/login', { _csrf: csrfOf(loginPage), username: 'admin', password: ADMIN_PASSWORD, next: '/credentials' });
  expect(signedIn.status).toBe(303);
});
afterAll(async () => app?.close());

describe('web form: Microsoft cloud', () => {
  it('adds a US Government credential from the cloud select: the usgov authority and outlook.office365.us scopes are stored', async () => {
    const form = await (await browse('/credentials/new?provider=microsoft')).text();
    expect(form).toContain('<select id="f-cloud" name="cloud"');
    expect(form).toContain('US Government (GCC High)');
    const added = await browse('/credentials', {
      _csrf: csrfOf(form),
      provider: 'microsoft',
      name: 'gcc-high',
      email: 'alerts@agency.example',
      tenant: '3f6c1e2a-5b7d-4e8f-9a0b-1c2d3e4f5a6b',
      clientId: 'gov-app',
      clientSecret: 'gov-secret',
      protocols: ['smtp', 'imap'],
      grant: 'authorization_code',
      cloud: 'usgov',
      authority: '',
      issuer: '',
    });
    expect(added.status, await added.clone().text()).toBe(303);
    const view = await app.services.credentials.show('gcc-high');
    expect(view.authority).toBe('https://login.microsoftonline.us');
    expect(view.scopes).toContain('https://outlook.office365.us/SMTP.Send');

    // editing shows the stored cloud's scopes beside the protocols, and keeps the authority
    const edit = await (await browse('/credentials/gcc-high/edit')).text();
    expect(edit).toContain('https://outlook.office365.us/IMAP.AccessAsUser.All');
    expect(edit).toContain('value="https://login.microsoftonline.us"');
  });

  it('shows an unknown cloud as a problem on the select', async () => {
    const form = await (await browse('/credentials/new?provider=microsoft')).text();
    const refused = await browse('/credentials', { _csrf: csrfOf(form), provider: 'microsoft', name: 'odd', email: 'a@example.com', tenant: 'organizations', clientId: 'x', clientSecret: 'y', protocols: ['smtp'], cloud: 'moon' });
    expect(refused.status).toBe(400);
    const page = (await refused.text()).replace(/&quot;|&#34;/g, '"');
    expect(page).toContain('id="f-cloud-error"');
    expect(page).toContain('unknown cloud "moon"');
  });
});
