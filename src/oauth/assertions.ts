// App-only authentication with signed JWTs: Google service-account assertions (RFC 7523 jwt-bearer grant, domain-wide
// delegation) and Entra ID certificate credentials (private_key_jwt client assertions identified by x5t).
import { createHash, createPrivateKey, createPublicKey, randomUUID, sign, X509Certificate, type KeyObject } from 'node:crypto';
import * as oidc from 'openid-client';
import { isLoopbackHost } from '../loopback.js';
import { ErrorCode, MailgateError } from '../errors.js';

/** @see https://datatracker.ietf.org/doc/html/rfc7523#section-2.1 */
export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** @see https://datatracker.ietf.org/doc/html/rfc7523#section-2.2 */
export const JWT_BEARER_CLIENT_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** Google refuses assertions that live longer than an hour. */
const MAX_SERVICE_ACCOUNT_ASSERTION_SECONDS = 3600;
/** Entra ID accepts client assertions of up to 10 minutes; 5 leaves room for clock skew. */
const CLIENT_ASSERTION_SECONDS = 300;
/** Same bound as clientConfig.ts: a token request slower than this counts as a network failure (and is retried). */
const REQUEST_TIMEOUT_SECONDS = 15;

// ---------------------------------------------------------------------------------------------------------------
// Google service accounts

/** A Google service-account key file, validated. The private key is a KeyObject: it prints and serializes as nothing. */
export interface ServiceAccountKey {
  clientEmail: string;
  /** The key's id (`private_key_id`), sent as the assertion's `kid`. */
  privateKeyId: string;
  privateKey: KeyObject;
  /** Where assertions are exchanged, and their `aud` (https://oauth2.googleapis.com/token). */
  tokenUri: string;
  /** Google's numeric unique id of the service account: what the Workspace admin authorizes for domain-wide delegation. */
  clientId: string | undefined;
  projectId: string | undefined;
}

const SERVICE_ACCOUNT_FIX = 'download a new JSON key (Google Cloud console → IAM & Admin → Service accounts → Keys → Add key → JSON) and paste the whole file';

/**
 * Reads the JSON key file Google Cloud console downloads for a service account. Errors name the field and the fix and
 * never quote the file (it holds the private key).
 * @see https://cloud.google.com/iam/docs/keys-create-delete
 */
export function parseServiceAccountKey(json: string): ServiceAccountKey {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    // no cause: JSON.parse's message quotes the text around the error, which may be the private key
    throw invalidInput(`the service-account key is not valid JSON: ${SERVICE_ACCOUNT_FIX}`, 'service_account_key');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw invalidInput(`the service-account key must be a JSON object: ${SERVICE_ACCOUNT_FIX}`, 'service_account_key');
  }
  const file = parsed as Record<string, unknown>;
  if (file.type !== 'service_account') {
    const kind = typeof file.type === 'string' ? `a key of type "${file.type.slice(0, 40)}"` : 'a key without "type"';
    throw invalidInput(`the file is ${kind}, not a service-account key ("type": "service_account"): ${SERVICE_ACCOUNT_FIX}`, 'type');
  }
  const missing = ['client_email', 'private_key', 'private_key_id', 'token_uri'].filter((f) => typeof file[f] !== 'string' || (file[f] as string).trim() === '');
  if (missing.length > 0) {
    throw invalidInput(`the service-account key lacks ${missing.map((f) => `"${f}"`).join(', ')}: ${SERVICE_ACCOUNT_FIX}`, missing[0]!, { missing });
  }
  const clientEmail = (file.client_email as string).trim();
  if (!/^[^@\s]+@[^@\s]+$/.test(clientEmail)) throw invalidInput(`"client_email" of the service-account key is not an email address: ${SERVICE_ACCOUNT_FIX}`, 'client_email');
  const tokenUri = (file.token_uri as string).trim();
  const uriProblem = endpointProblem(tokenUri);
  if (uriProblem) throw invalidInput(`"token_uri" of the service-account key ${uriProblem}: ${SERVICE_ACCOUNT_FIX}`, 'token_uri');

  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(file.private_key as string);
  } catch (err) {
    throw invalidInput(`"private_key" of the service-account key is not a PEM private key (${cryptoReason(err)}): ${SERVICE_ACCOUNT_FIX}`, 'private_key');
  }
  if (privateKey.asymmetricKeyType !== 'rsa') {
    throw invalidInput(`"private_key" of the service-account key must be an RSA key (Google signs service-account assertions with RS256), got ${privateKey.asymmetricKeyType}: ${SERVICE_ACCOUNT_FIX}`, 'private_key');
  }
  return {
    clientEmail,
    privateKeyId: (file.private_key_id as string).trim(),
    privateKey,
    tokenUri,
    clientId: typeof file.client_id === 'string' ? file.client_id : undefined,
    projectId: typeof file.project_id === 'string' ? file.project_id : undefined,
  };
}

export interface ServiceAccountAssertionOptions {
  /** The mailbox to act as (domain-wide delegation): the JWT's `sub`. */
  subject: string;
  scopes: readonly string[];
  /** The token endpoint the assertion is for (normally the key's token_uri). */
  audience: string;
  now?: Date;
}

/**
 * The signed JWT a service account exchanges for an access token: RS256, `kid` = private_key_id, valid for the hour
 * Google allows at most.
 * @see https://developers.google.com/identity/protocols/oauth2/service-account#authorizingrequests
 */
export function serviceAccountAssertion(key: ServiceAccountKey, options: ServiceAccountAssertionOptions): string {
  const iat = Math.floor((options.now ?? new Date()).getTime() / 1000);
  return signRs256(
    { alg: 'RS256', typ: 'JWT', kid: key.privateKeyId },
    { iss: key.clientEmail, sub: options.subject, scope: options.scopes.join(' '), aud: options.audience, iat, exp: iat + MAX_SERVICE_ACCOUNT_ASSERTION_SECONDS },
    key.privateKey,
  );
}

/**
 * Exchanges a fresh assertion for an access token for `subject`. Google issues no refresh token here: call again when
 * the token nears expiry. Failures are openid-client's own errors (ResponseBodyError …), for classifyGrantError().
 * @see https://datatracker.ietf.org/doc/html/rfc7523#section-2.1
 */
export async function requestServiceAccountToken(
  tokenUrl: string,
  key: ServiceAccountKey,
  options: { subject: string; scopes: readonly string[] },
): Promise<oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers> {
  // Google's request carries no client authentication at all (not even client_id, which None() would add): the
  // assertion is the authentication.
  const noClientAuthentication: oidc.ClientAuth = () => {};
  const config = new oidc.Configuration({ issuer: new URL(tokenUrl).origin, token_endpoint: tokenUrl }, key.clientId ?? key.clientEmail, undefined, noClientAuthentication);
  configureTransport(config, tokenUrl);
  const assertion = serviceAccountAssertion(key, { subject: options.subject, scopes: options.scopes, audience: tokenUrl });
  return oidc.genericGrantRequest(config, JWT_BEARER_GRANT, { assertion });
}

// ---------------------------------------------------------------------------------------------------------------
// Entra ID certificate credentials

/** A client certificate with its private key, validated to belong together. */
export interface ClientCertificate {
  certificate: X509Certificate;
  privateKey: KeyObject;
  /** base64url SHA-1 of the DER certificate: the `x5t` header Entra ID finds the key by. */
  x5t: string;
  /** base64url SHA-256 of the DER certificate (`x5t#S256`). */
  x5tS256: string;
  /** Uppercase hex SHA-1, as the Azure portal lists the certificate's "Thumbprint". */
  thumbprint: string;
  notAfter: Date;
  subject: string;
}

const CERTIFICATE_FIX =
  'paste one PEM text with the certificate (-----BEGIN CERTIFICATE-----) and its unencrypted private key (-----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----), e.g. `cat cert.pem key.pem`';

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

/**
 * Reads the certificate and private key an admin uploaded the certificate of (Entra ID → App registrations →
 * Certificates & secrets → Certificates). Errors never quote the key.
 * @see https://learn.microsoft.com/entra/identity-platform/certificate-credentials
 */
export function parseClientCertificate(pem: string): ClientCertificate {
  const blocks = [...pem.matchAll(PEM_BLOCK)].map((m) => ({ label: m[1]!, text: m[0] }));
  const certificateBlocks = blocks.filter((b) => b.label === 'CERTIFICATE');
  const keyBlocks = blocks.filter((b) => b.label.endsWith('PRIVATE KEY'));
  if (keyBlocks.some((b) => b.label === 'ENCRYPTED PRIVATE KEY')) {
    throw invalidInput(`the private key is encrypted with a password: export it without one (openssl pkey -in key.pem -out plain.pem) — ${CERTIFICATE_FIX}`, 'private_key');
  }
  const missing = [...(certificateBlocks.length === 0 ? ['certificate'] : []), ...(keyBlocks.length === 0 ? ['private key'] : [])];
  if (missing.length > 0) throw invalidInput(`the PEM text has no ${missing.join(' and no ')}: ${CERTIFICATE_FIX}`, missing.includes('certificate') ? 'certificate' : 'private_key', { missing });
  if (keyBlocks.length > 1) throw invalidInput(`the PEM text has ${keyBlocks.length} private keys; keep only the certificate's own: ${CERTIFICATE_FIX}`, 'private_key');

  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(keyBlocks[0]!.text);
  } catch (err) {
    throw invalidInput(`the private key cannot be read (${cryptoReason(err)}): ${CERTIFICATE_FIX}`, 'private_key');
  }
  if (privateKey.asymmetricKeyType !== 'rsa') {
    throw invalidInput(`the private key is ${privateKey.asymmetricKeyType}; client assertions are signed RS256, which needs an RSA certificate`, 'private_key');
  }
  const certificates = certificateBlocks.map((b, i) => {
    try {
      return new X509Certificate(b.text);
    } catch (err) {
      throw invalidInput(`certificate ${i + 1} of the PEM text cannot be read (${cryptoReason(err)}): ${CERTIFICATE_FIX}`, 'certificate');
    }
  });
  // A chain may follow the certificate: the one whose public key is this private key's is the app's certificate.
  const publicDer = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const certificate = certificates.find((c) => c.publicKey.export({ type: 'spki', format: 'der' }).equals(publicDer));
  if (!certificate) {
    throw invalidInput(
      `the private key does not belong to the certificate${certificates.length > 1 ? 's' : ''} in the PEM text (its public key differs): paste the key the certificate was made with — ${CERTIFICATE_FIX}`,
      'private_key',
    );
  }
  return {
    certificate,
    privateKey,
    x5t: createHash('sha1').update(certificate.raw).digest('base64url'),
    x5tS256: createHash('sha256').update(certificate.raw).digest('base64url'),
    thumbprint: certificate.fingerprint.replaceAll(':', ''),
    notAfter: new Date(certificate.validTo),
    subject: certificate.subject,
  };
}

/**
 * openid-client client authentication with a certificate: a fresh client assertion per request, RS256, `x5t` in the
 * header (Entra ID finds the certificate by it), aud = the token endpoint, iss = sub = client_id.
 * @see https://learn.microsoft.com/entra/identity-platform/certificate-credentials#assertion-format
 * @see https://datatracker.ietf.org/doc/html/rfc7523#section-2.2
 */
export function certificateClientAuth(cert: ClientCertificate): oidc.ClientAuth {
  return (as, client, body) => {
    if (!as.token_endpoint) throw new MailgateError(ErrorCode.INPUT_INVALID, 'a certificate client assertion needs the token endpoint URL (its audience)');
    const now = Math.floor(Date.now() / 1000);
    const assertion = signRs256(
      { alg: 'RS256', typ: 'JWT', x5t: cert.x5t },
      { aud: as.token_endpoint, iss: client.client_id, sub: client.client_id, jti: randomUUID(), nbf: now, iat: now, exp: now + CLIENT_ASSERTION_SECONDS },
      cert.privateKey,
    );
    body.set('client_id', client.client_id);
    body.set('client_assertion_type', JWT_BEARER_CLIENT_ASSERTION);
    body.set('client_assertion', assertion);
  };
}

// ---------------------------------------------------------------------------------------------------------------

function signRs256(header: Record<string, unknown>, claims: Record<string, unknown>, key: KeyObject): string {
  const signingInput = `${base64url(header)}.${base64url(claims)}`;
  return `${signingInput}.${sign('RSA-SHA256', Buffer.from(signingInput), key).toString('base64url')}`;
}

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

function configureTransport(config: oidc.Configuration, url: string): void {
  config.timeout = REQUEST_TIMEOUT_SECONDS;
  // Plain http only for loopback (test servers, a local proxy), as clientConfig.ts allows.
  const parsed = new URL(url);
  if (parsed.protocol === 'http:' && isLoopbackHost(parsed.hostname)) oidc.allowInsecureRequests(config);
}

function endpointProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'is not a URL';
  }
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) return undefined;
  return 'must be an https:// URL (plain http only on loopback)';
}

/** OpenSSL's reason code (e.g. ERR_OSSL_UNSUPPORTED), never its message: it could carry parts of the input. */
function cryptoReason(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : 'unreadable';
}

function invalidInput(message: string, field: string, extra: Record<string, unknown> = {}): MailgateError {
  return new MailgateError(ErrorCode.INPUT_INVALID, message, { details: { field, ...extra } });
}
