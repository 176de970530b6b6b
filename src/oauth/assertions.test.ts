// Proves app-only authentication with signed JWTs against the test bed's oidc-provider: Google service accounts (jwt-bearer
// grant with domain-wide delegation) and Entra ID certificate clients (private_key_jwt with x5t).
import { generateKeyPairSync } from 'node:crypto';
import * as oidc from 'openid-client';
import { describe, expect, it } from 'vitest';
import { generateTestCertificate, GOOGLE_MAIL_SCOPE, MICROSOFT_SCOPES } from '../../test/testbed/authServer.js';
import { useTestbed } from '../../test/testbed/useTestbed.js';
import { isMailgateError } from '../errors.js';
import {
  certificateClientAuth,
  JWT_BEARER_GRANT,
  parseClientCertificate,
  parseServiceAccountKey,
  requestServiceAccountToken,
  serviceAccountAssertion,
} from './assertions.js';
import { classifyGrantError } from './grantErrors.js';

const bed = useTestbed({ mail: false });

/** What Dovecot's oauth2 passdb sees for a token. */
async function introspectAsDovecot(token: string): Promise<Record<string, unknown>> {
  const { introspectionUrl, introspectionClientId, introspectionClientSecret } = bed.auth.introspection;
  const response = await fetch(introspectionUrl, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${introspectionClientId}:${introspectionClientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }),
  });
  return (await response.json()) as Record<string, unknown>;
}

async function rejection(promise: Promise<unknown>): Promise<oidc.ResponseBodyError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(oidc.ResponseBodyError);
  return err as oidc.ResponseBodyError;
}

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    expect(isMailgateError(err, 'INPUT_INVALID')).toBe(true);
    return err as Error;
  }
  throw new Error('expected an INPUT_INVALID error');
}

/** Base64 lines of a PEM body: none of them may show up in an error message. */
const pemLines = (pem: string) => pem.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'));

describe('Google service account with domain-wide delegation', () => {
  it('gets an access token for the mailbox it names, which introspects as that user and comes without a refresh token', async () => {
    const { keyJson } = await bed.auth.addServiceAccount();
    const key = parseServiceAccountKey(keyJson);
    expect(key.tokenUri).toBe(bed.auth.google.tokenUrl);

    const tokens = await requestServiceAccountToken(key.tokenUri, key, { subject: bed.auth.users.alice.email, scopes: [GOOGLE_MAIL_SCOPE] });

    expect(tokens.token_type).toBe('bearer');
    expect(tokens.expiresIn()).toBeGreaterThan(0);
    expect(tokens.refresh_token).toBeUndefined();
    const introspection = await introspectAsDovecot(tokens.access_token);
    expect(introspection).toMatchObject({ active: true, email: bed.auth.users.alice.email, scope: GOOGLE_MAIL_SCOPE, client_id: key.clientId });
  });

  it('is refused with invalid_grant for a subject that is no user of the domain, which the grant classifier understands', async () => {
    const key = parseServiceAccountKey((await bed.auth.addServiceAccount()).keyJson);

    const err = await rejection(requestServiceAccountToken(key.tokenUri, key, { subject: 'nobody@example.test', scopes: [GOOGLE_MAIL_SCOPE] }));

    expect(err).toMatchObject({ error: 'invalid_grant', error_description: 'Invalid email or User ID', status: 400 });
    expect(await classifyGrantError(err)).toMatchObject({ error: 'invalid_grant', status: 400 });
  });

  it('is refused with invalid_grant "Invalid JWT Signature." when another key signs under the same key id', async () => {
    const file = JSON.parse((await bed.auth.addServiceAccount()).keyJson) as Record<string, string>;
    file.private_key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const forged = parseServiceAccountKey(JSON.stringify(file));

    const err = await rejection(requestServiceAccountToken(forged.tokenUri, forged, { subject: bed.auth.users.alice.email, scopes: [GOOGLE_MAIL_SCOPE] }));

    expect(err).toMatchObject({ error: 'invalid_grant', error_description: 'Invalid JWT Signature.' });
  });

  it('is refused when the assertion has expired, and for a scope the admin did not delegate', async () => {
    const key = parseServiceAccountKey((await bed.auth.addServiceAccount()).keyJson);
    const config = new oidc.Configuration({ issuer: bed.auth.issuer, token_endpoint: key.tokenUri }, key.clientId!, undefined, () => {});
    oidc.allowInsecureRequests(config);
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    const expired = serviceAccountAssertion(key, { subject: bed.auth.users.alice.email, scopes: [GOOGLE_MAIL_SCOPE], audience: key.tokenUri, now: twoHoursAgo });

    const stale = await rejection(oidc.genericGrantRequest(config, JWT_BEARER_GRANT, { assertion: expired }));
    expect(stale).toMatchObject({ error: 'invalid_grant', error_description: expect.stringContaining('iat and exp') });

    const undelegated = await rejection(requestServiceAccountToken(key.tokenUri, key, { subject: bed.auth.users.alice.email, scopes: ['https://www.googleapis.com/auth/drive'] }));
    expect(undelegated.error).toBe('unauthorized_client');
  });

  it('names a missing field of the key file and never echoes the private key', async () => {
    const { keyJson } = await bed.auth.addServiceAccount();
    const file = JSON.parse(keyJson) as Record<string, string>;
    const secretLines = pemLines(file.private_key!);

    const { private_key: _dropped, ...withoutKey } = file;
    expect(errorOf(() => parseServiceAccountKey(JSON.stringify(withoutKey))).message).toMatch(/lacks "private_key".*download a new JSON key/);

    const broken = { ...file, private_key: file.private_key!.slice(0, 400) };
    const brokenMessage = errorOf(() => parseServiceAccountKey(JSON.stringify(broken))).message;
    expect(brokenMessage).toContain('"private_key"');

    const notJson = errorOf(() => parseServiceAccountKey(keyJson.slice(0, keyJson.length - 30))).message;
    expect(notJson).toContain('not valid JSON');

    expect(errorOf(() => parseServiceAccountKey(JSON.stringify({ type: 'authorized_user', client_id: 'x' }))).message).toContain('not a service-account key');
    for (const message of [brokenMessage, notJson]) for (const line of secretLines) expect(message).not.toContain(line);
  });
});

describe('Entra ID client credentials with a certificate', () => {
  const configurationFor = (clientId: string, pem: string) => {
    const config = new oidc.Configuration({ issuer: bed.auth.issuer, token_endpoint: bed.auth.microsoft.tokenUrl }, clientId, undefined, certificateClientAuth(parseClientCertificate(pem)));
    oidc.allowInsecureRequests(config);
    return config;
  };

  it('gets an app-only token for .default with a client assertion that names the certificate by x5t', async () => {
    const client = await bed.auth.addCertificateClient({ clientId: 'mailgate-cert-app' });
    const cert = parseClientCertificate(client.pem);
    expect(cert.x5t).toBe(client.x5t);
    expect(cert.notAfter.getTime()).toBeGreaterThan(Date.now());

    const tokens = await oidc.clientCredentialsGrant(configurationFor(client.clientId, client.pem), { scope: MICROSOFT_SCOPES.appOnly });

    expect(tokens.access_token).toBeTruthy();
    expect(tokens.refresh_token).toBeUndefined();
    expect(await introspectAsDovecot(tokens.access_token)).toMatchObject({ active: true, client_id: client.clientId });
  });

  it('is refused with invalid_client and AADSTS700027 for a certificate the app registration does not have', async () => {
    const client = await bed.auth.addCertificateClient({ clientId: 'mailgate-cert-app-2' });
    const other = await generateTestCertificate();

    const err = await rejection(oidc.clientCredentialsGrant(configurationFor(client.clientId, other.pem), { scope: MICROSOFT_SCOPES.appOnly }));

    expect(err).toMatchObject({ error: 'invalid_client', status: 401 });
    expect((err.cause as { error_codes?: number[] }).error_codes).toEqual([700027]);
    expect(await classifyGrantError(err)).toMatchObject({ error: 'invalid_client', microsoftCodes: [700027] });
  });

  it('refuses a key that is not the certificate\'s, and a PEM text missing either part, without echoing the key', async () => {
    const [one, two] = await Promise.all([generateTestCertificate(), generateTestCertificate()]);

    const mismatch = errorOf(() => parseClientCertificate(`${one.certificatePem}\n${two.privateKeyPem}`)).message;
    expect(mismatch).toContain('does not belong to the certificate');
    expect(errorOf(() => parseClientCertificate(one.certificatePem)).message).toContain('no private key');
    expect(errorOf(() => parseClientCertificate(one.privateKeyPem)).message).toContain('no certificate');
    const damaged = one.privateKeyPem.replace(/\n[A-Za-z0-9+/]{20}/, '\n!!!!');
    const unreadable = errorOf(() => parseClientCertificate(`${one.certificatePem}\n${damaged}`)).message;
    expect(unreadable).toContain('private key cannot be read');
    for (const message of [mismatch, unreadable]) for (const line of [...pemLines(one.privateKeyPem), ...pemLines(two.privateKeyPem)]) expect(message).not.toContain(line);
  });

  it('reads the traditional RSA PRIVATE KEY form too', async () => {
    const one = await generateTestCertificate();
    const { createPrivateKey } = await import('node:crypto');
    const pkcs1 = createPrivateKey(one.privateKeyPem).export({ type: 'pkcs1', format: 'pem' }).toString();
    expect(pkcs1).toContain('BEGIN RSA PRIVATE KEY');
    expect(parseClientCertificate(`${pkcs1}${one.certificatePem}`).x5t).toBe(one.x5t);
  });
});
