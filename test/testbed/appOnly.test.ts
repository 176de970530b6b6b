// Proves the bed's app-only credentials behave like Google's and Entra ID's where the gateway depends on it: service-account
// assertions (jwt-bearer grant) give tokens Dovecot accepts for the delegated mailbox, certificate clients are found by x5t.
import { createPrivateKey, randomUUID, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { GOOGLE_MAIL_SCOPE, JWT_BEARER_GRANT, MICROSOFT_SCOPES } from './authServer.js';
import { probeSaslLogin } from './saslProbe.js';
import { useTestbed } from './useTestbed.js';

const bed = useTestbed();

/** A JWT signed RS256 by hand: the bed is proven without Mailgate's own signing code. */
function signedJwt(header: Record<string, unknown>, claims: Record<string, unknown>, privateKeyPem: string): string {
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${input}.${sign('RSA-SHA256', Buffer.from(input), createPrivateKey(privateKeyPem)).toString('base64url')}`;
}

/** No client authentication: exactly what Google's token endpoint gets for this grant. */
async function post(url: string, form: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { method: 'POST', body: new URLSearchParams(form) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('the Google layout with a service account', () => {
  async function serviceAccount() {
    const key = JSON.parse((await bed.auth.addServiceAccount()).keyJson) as Record<string, string>;
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: key.client_email!, sub: bed.auth.users.alice.email, scope: GOOGLE_MAIL_SCOPE, aud: bed.auth.google.tokenUrl, iat: now, exp: now + 3600 };
    const exchange = (changes: Record<string, unknown> = {}, header: Record<string, unknown> = { alg: 'RS256', typ: 'JWT', kid: key.private_key_id }) =>
      post(bed.auth.google.tokenUrl, { grant_type: JWT_BEARER_GRANT, assertion: signedJwt(header, { ...claims, ...changes }, key.private_key!) });
    return { key, claims, exchange };
  }

  it('ships a key file shaped like Google\'s, and its assertion gives a token that opens alice\'s mailbox over IMAP', async () => {
    const { key, exchange } = await serviceAccount();
    expect(key).toMatchObject({ type: 'service_account', token_uri: bed.auth.google.tokenUrl, private_key: expect.stringContaining('BEGIN PRIVATE KEY') });

    const reply = await exchange();

    expect(reply.status).toBe(200);
    expect(Object.keys(reply.body).sort()).toEqual(['access_token', 'expires_in', 'token_type']);
    const login = await probeSaslLogin({ protocol: 'imap', port: bed.mail.ports.imap, mechanism: 'XOAUTH2', user: bed.auth.users.alice.email, token: String(reply.body.access_token) });
    expect(login.ok, login.transcript.join('\n')).toBe(true);
  });

  it('refuses assertions as Google does: too long-lived, expired, wrong audience, unknown issuer, unknown key id, unknown user', async () => {
    const { claims, exchange } = await serviceAccount();
    const now = claims.iat;
    const refusals = await Promise.all([
      exchange({ exp: now + 3700 }),
      exchange({ iat: now - 7200, exp: now - 3600 }),
      exchange({ aud: bed.auth.tokenUrl }),
      exchange({ iss: 'someone-else@mailgate-testbed.iam.gserviceaccount.com' }),
      exchange({}, { alg: 'RS256', kid: 'deleted-key-id' }),
      exchange({ sub: 'nobody@example.test' }),
    ]);
    expect(refusals.map((r) => [r.status, r.body.error, r.body.error_description])).toEqual([
      [400, 'invalid_grant', expect.stringContaining('short-lived token (60 minutes)')],
      [400, 'invalid_grant', expect.stringContaining('short-lived token (60 minutes)')],
      [400, 'invalid_grant', `Invalid JWT: Failed audience check. The right audience is ${bed.auth.google.tokenUrl}`],
      [400, 'invalid_grant', 'Invalid grant: account not found'],
      [400, 'invalid_grant', 'Invalid JWT Signature.'],
      [400, 'invalid_grant', 'Invalid email or User ID'],
    ]);
  });

  it('refuses a scope the admin did not delegate with unauthorized_client, and a missing one with invalid_scope', async () => {
    const { exchange } = await serviceAccount();
    expect((await exchange({ scope: 'https://www.googleapis.com/auth/drive' })).body.error).toBe('unauthorized_client');
    expect((await exchange({ scope: undefined })).body.error).toBe('invalid_scope');
  });
});

describe('the Microsoft layout with a certificate client', () => {
  async function certificateClient() {
    const client = await bed.auth.addCertificateClient({ clientId: `cert-app-${randomUUID()}` });
    const now = Math.floor(Date.now() / 1000);
    const claims = { aud: bed.auth.microsoft.tokenUrl, iss: client.clientId, sub: client.clientId, iat: now, nbf: now, exp: now + 300 };
    const request = (header: Record<string, unknown>, changes: Record<string, unknown> = {}) =>
      post(bed.auth.microsoft.tokenUrl, {
        grant_type: 'client_credentials',
        scope: MICROSOFT_SCOPES.appOnly,
        client_id: client.clientId,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: signedJwt(header, { ...claims, jti: randomUUID(), ...changes }, client.privateKeyPem),
      });
    return { client, request };
  }

  it('issues an app-only token for an assertion naming the certificate by x5t or x5t#S256, audience the tenant token URL', async () => {
    const { client, request } = await certificateClient();
    expect((await request({ alg: 'RS256', x5t: client.x5t })).body).toMatchObject({ token_type: 'Bearer', scope: MICROSOFT_SCOPES.appOnly });
    expect((await request({ alg: 'RS256', 'x5t#S256': client.x5tS256 })).status).toBe(200);
  });

  it('answers AADSTS700027 for an assertion without x5t, and for one addressed to another URL', async () => {
    const { client, request } = await certificateClient();
    for (const reply of [await request({ alg: 'RS256' }), await request({ alg: 'RS256', x5t: client.x5t }, { aud: bed.auth.tokenUrl })]) {
      expect(reply.status).toBe(401);
      expect(reply.body).toMatchObject({ error: 'invalid_client', error_codes: [700027] });
    }
  });
});
