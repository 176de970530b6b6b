// Credential inputs pointed at the test bed's provider layouts, and a helper that connects one through the real login page.
import { expect } from 'vitest';
import { TEST_TENANT_ID, type AuthServer, type TestClient } from '../testbed/authServer.js';
import { signInAtProvider, type Credentials } from '../testbed/providerLogin.js';
import type { MailgateApp } from './mailgateApp.js';

export function microsoftCredential(auth: AuthServer, client: TestClient, name: string, email: string = auth.users.alice.email) {
  return {
    name,
    provider: 'microsoft',
    tenant: TEST_TENANT_ID,
    authority: auth.microsoft.authority,
    // The test provider signs ID tokens as itself on every layout; Entra would use its tenant's v2.0 issuer.
    issuer: auth.issuer,
    clientId: client.clientId,
    clientSecret: client.clientSecret,
    email,
    protocols: ['smtp', 'imap', 'pop3'],
  };
}

export function googleCredential(auth: AuthServer, client: TestClient, name: string, email: string = auth.users.alice.email) {
  return {
    name,
    provider: 'google',
    authorizationUrl: auth.google.authorizationUrl,
    tokenUrl: auth.google.tokenUrl,
    revocationUrl: auth.google.revocationUrl,
    deviceAuthorizationUrl: auth.google.deviceAuthorizationUrl,
    userinfoUrl: auth.userinfoUrl,
    issuer: auth.issuer,
    clientId: client.clientId,
    clientSecret: client.clientSecret,
    email,
  };
}

export const login = (user: { email: string; password: string }): Credentials => ({ login: user.email, password: user.password });

/** Starts Connect through the API, signs in at the provider's own login page, and delivers the redirect to Mailgate. */
export async function connect(app: MailgateApp, name: string, who: Credentials) {
  const started = await app.api('POST', `/api/v1/credentials/${name}/authorize`);
  expect(started.status).toBe(200);
  const back = await signInAtProvider(started.json.authorizationUrl, who);
  expect(back.origin + back.pathname).toBe(`${app.url}/oauth/callback`);
  const page = await fetch(back);
  return { back, status: page.status, html: await page.text(), authorizationUrl: new URL(started.json.authorizationUrl) };
}

/** Adds a credential and connects it as `who`; fails the test unless it ends up active. */
export async function addConnected(app: MailgateApp, input: { name: string }, who: Credentials): Promise<void> {
  const created = await app.api('POST', '/api/v1/credentials', input);
  expect(created.status, created.text).toBe(201);
  const { status, html } = await connect(app, input.name, who);
  expect(status, html).toBe(200);
}
