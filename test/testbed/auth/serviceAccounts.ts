// Google service accounts with domain-wide delegation: the key files the bed hands out, and the Google layout's
// RFC 7523 jwt-bearer grant that turns a signed assertion into an access token for the mailbox named in `sub`.
// https://developers.google.com/identity/protocols/oauth2/service-account#httprest
import { generateKeyPair, randomBytes, randomInt, verify, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import type { KoaContext, default as Provider } from 'oidc-provider';
import { TestbedError, TestbedErrorCode } from '../errors.js';
import { JWT_BEARER_GRANT } from './layouts.js';
import { findUserByLogin } from './users.js';

export { JWT_BEARER_GRANT };

/**
 * oidc-provider authenticates a client on every token request, Google's jwt-bearer request carries none. The Google
 * layout names the service account's client from the assertion's `iss`, or this one when `iss` is unknown, so the
 * grant (not client authentication) refuses it, with invalid_grant as Google does.
 */
export const UNKNOWN_SERVICE_ACCOUNT_CLIENT = 'testbed-unknown-service-account';

/** Google refuses assertions living longer than an hour. */
const MAX_ASSERTION_LIFETIME = 3600;
/** Clock skew allowed on iat and exp, in seconds. */
const CLOCK_SKEW = 30;

export interface ServiceAccount {
  clientEmail: string;
  /** Google's numeric "unique ID" of the service account; the client id its tokens are issued to. */
  clientId: string;
  /** Public keys by private_key_id (the assertion's `kid`). */
  keys: Map<string, KeyObject>;
  /** What the Workspace admin allowed under domain-wide delegation for this client id. */
  delegatedScopes: Set<string>;
}

export interface NewServiceAccount {
  account: ServiceAccount;
  /** The JSON key file exactly as Google Cloud console downloads it. */
  keyJson: string;
}

export class ServiceAccounts {
  readonly #byEmail = new Map<string, ServiceAccount>();

  async create(options: { clientEmail: string; delegatedScopes: string[]; tokenUri: string; authUri: string }): Promise<NewServiceAccount> {
    const clientEmail = options.clientEmail.toLowerCase();
    if (this.#byEmail.has(clientEmail)) throw new TestbedError(TestbedErrorCode.BAD_OPTION, `service account ${clientEmail} exists already`);
    const { privateKey, publicKey } = await promisify(generateKeyPair)('rsa', { modulusLength: 2048 });
    const privateKeyId = randomBytes(20).toString('hex');
    const clientId = `1${Array.from({ length: 20 }, () => randomInt(10)).join('')}`;
    const account: ServiceAccount = { clientEmail, clientId, keys: new Map([[privateKeyId, publicKey]]), delegatedScopes: new Set(options.delegatedScopes) };
    this.#byEmail.set(clientEmail, account);
    const projectId = clientEmail.split('@')[1]?.split('.')[0] ?? 'mailgate-testbed';
    const keyJson = JSON.stringify(
      {
        type: 'service_account',
        project_id: projectId,
        private_key_id: privateKeyId,
        private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        client_email: clientEmail,
        client_id: clientId,
        auth_uri: options.authUri,
        token_uri: options.tokenUri,
        auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
        client_x509_cert_url: `https://www.googleapis.com/robot/v1/metadata/x509/${encodeURIComponent(clientEmail)}`,
        universe_domain: 'googleapis.com',
      },
      null,
      2,
    );
    return { account, keyJson };
  }

  byEmail(clientEmail: string): ServiceAccount | undefined {
    return this.#byEmail.get(clientEmail.toLowerCase());
  }

  /** The client a jwt-bearer request without client_id is served as (see UNKNOWN_SERVICE_ACCOUNT_CLIENT). */
  clientIdForAssertion(assertion: string): string {
    const iss = decodeJwt(assertion)?.payload.iss;
    return (typeof iss === 'string' && this.byEmail(iss)?.clientId) || UNKNOWN_SERVICE_ACCOUNT_CLIENT;
  }
}

interface DecodedJwt {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
  signingInput: string;
  signature: Buffer;
}

function decodeJwt(jwt: string): DecodedJwt | undefined {
  const parts = jwt.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const [header, payload] = [parts[0]!, parts[1]!].map((p) => JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as unknown);
    if (!isObject(header) || !isObject(payload)) return undefined;
    return { header, payload, signingInput: `${parts[0]}.${parts[1]}`, signature: Buffer.from(parts[2]!, 'base64url') };
  } catch {
    return undefined;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export interface JwtBearerGrantOptions {
  provider: Provider;
  accounts: ServiceAccounts;
  /** The Google layout's token URL: the only `aud` accepted. */
  audience: string;
  /** The resource server the mail scopes belong to, so these tokens introspect like every other mail token. */
  resourceServer: { identifier: string; scope: string };
  /** oidc-provider's CustomOIDCProviderError: an OAuth error with Google's own error_description. */
  refuse(error: string, description: string): Error;
}

/** The handler for provider.registerGrantType(JWT_BEARER_GRANT, …, ['assertion', 'scope']). */
export function jwtBearerGrant(options: JwtBearerGrantOptions): (ctx: KoaContext) => Promise<void> {
  const { provider, accounts, refuse } = options;
  const invalidGrant = (description: string) => refuse('invalid_grant', description);
  return async (ctx) => {
    const assertion = ctx.oidc?.params?.assertion;
    if (typeof assertion !== 'string' || !assertion) throw refuse('invalid_request', 'Missing required parameter: assertion');
    const jwt = decodeJwt(assertion);
    if (!jwt) throw invalidGrant('Invalid JWT: not a JWS in compact serialization.');
    const { header, payload } = jwt;

    const account = typeof payload.iss === 'string' ? accounts.byEmail(payload.iss) : undefined;
    if (!account || account.clientId !== ctx.oidc?.client?.clientId) throw invalidGrant('Invalid grant: account not found');
    // Google picks the key by kid (private_key_id); a deleted or unknown key is a signature failure.
    const candidates = typeof header.kid === 'string' ? [account.keys.get(header.kid)] : [...account.keys.values()];
    const signed = header.alg === 'RS256' && candidates.some((key) => key !== undefined && verify('RSA-SHA256', Buffer.from(jwt.signingInput), key, jwt.signature));
    if (!signed) throw invalidGrant('Invalid JWT Signature.');

    if (payload.aud !== options.audience) throw invalidGrant(`Invalid JWT: Failed audience check. The right audience is ${options.audience}`);
    const now = Math.floor(Date.now() / 1000);
    const { iat, exp } = payload;
    if (typeof iat !== 'number' || typeof exp !== 'number' || exp - iat > MAX_ASSERTION_LIFETIME || exp < iat || exp + CLOCK_SKEW < now || iat - CLOCK_SKEW > now) {
      throw invalidGrant('Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.');
    }
    // Without `sub` Google issues a token for the service account itself, which no mailbox accepts: the bed refuses it.
    const user = typeof payload.sub === 'string' ? findUserByLogin(payload.sub) : undefined;
    if (!user) throw invalidGrant('Invalid email or User ID');
    const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [];
    if (scopes.length === 0) throw refuse('invalid_scope', 'Empty or missing scope not allowed.');
    if (!scopes.every((s) => account.delegatedScopes.has(s))) {
      throw refuse('unauthorized_client', 'Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.');
    }

    const client = ctx.oidc!.client!;
    const scope = scopes.join(' ');
    // Introspection only answers active for a token whose grant exists and matches its client and account.
    const grant = new provider.Grant({ accountId: user.sub, clientId: client.clientId });
    grant.addResourceScope(options.resourceServer.identifier, scope);
    const grantId = await grant.save();
    const token = new provider.AccessToken({ accountId: user.sub, client, grantId, gty: JWT_BEARER_GRANT, scope });
    token.resourceServer = new provider.ResourceServer(options.resourceServer.identifier, {
      scope: options.resourceServer.scope,
      audience: options.resourceServer.identifier,
      accessTokenFormat: 'opaque',
    });
    const accessToken = await token.save();
    // Google's answer: no refresh token and no scope; the service account signs a new assertion every hour.
    ctx.body = { access_token: accessToken, expires_in: token.expiration, token_type: 'Bearer' };
  };
}
