// oidc-provider configuration of the test authorization server: users, scopes, token lifetimes, rotation per layout.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import type { Configuration, KoaContext, OidcClient } from 'oidc-provider';
import { layoutOf } from './layouts.js';
import type { MapStore } from './mapStore.js';
import { findUserBySub } from './users.js';

/** The one resource server all mail scopes belong to; Dovecot introspects its tokens. */
export const MAIL_RESOURCE = 'urn:testbed:mail';

export const MICROSOFT_SCOPES = {
  smtp: 'https://outlook.office.com/SMTP.Send',
  imap: 'https://outlook.office.com/IMAP.AccessAsUser.All',
  pop3: 'https://outlook.office.com/POP.AccessAsUser.All',
  /** app-only (client_credentials) */
  appOnly: 'https://outlook.office365.com/.default',
} as const;

export const GOOGLE_MAIL_SCOPE = 'https://mail.google.com/';

export const MAIL_SCOPES = ['imap', 'pop', 'smtp', ...Object.values(MICROSOFT_SCOPES), GOOGLE_MAIL_SCOPE];

export interface ProviderConfigOptions {
  store: MapStore;
  /** seconds; per-client overrides in `accessTokenTtlByClient` */
  accessTokenTtl: number;
  accessTokenTtlByClient: Map<string, number>;
  refreshTokenTtl: number;
  throwInvalidTarget(): never;
  /** oidc-provider's invalid_client; `detail` is logged, not sent. */
  throwInvalidClientAuth(detail: string): never;
}

export function buildProviderConfiguration(options: ProviderConfigOptions): Configuration {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ttlFor = (client: OidcClient | undefined) =>
    (client && options.accessTokenTtlByClient.get(client.clientId)) ?? options.accessTokenTtl;

  return {
    adapter: (name: string) => options.store.adapterFor(name),
    jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'testbed-rs256', use: 'sig', alg: 'RS256' }] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    async findAccount(_ctx: KoaContext, sub: string) {
      const user = findUserBySub(sub);
      if (!user) return undefined;
      return {
        accountId: user.sub,
        async claims() {
          return { sub: user.sub, email: user.email, email_verified: true, preferred_username: user.email, name: user.name };
        },
      };
    },
    // email and preferred_username under `openid`: the gateway reads who signed in from any ID token, as it can
    // from Entra ID (preferred_username) and Google (email).
    claims: {
      openid: ['sub', 'email', 'email_verified', 'preferred_username', 'name'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
    },
    scopes: ['openid', 'offline_access', 'email', 'profile'],
    // Without this, ID tokens from the code flow would carry only `sub` (the rest only at userinfo).
    conformIdTokenClaims: false,
    // Entra ID finds a client assertion's key by the certificate thumbprint in the header, never by trying every key.
    async assertJwtClientAuthClaimsAndHeader(_ctx: KoaContext, _claims: unknown, header: Record<string, unknown>, client: OidcClient) {
      const keys = (options.store.clients.get(client.clientId)?.metadata.jwks as { keys?: Record<string, unknown>[] } | undefined)?.keys ?? [];
      const matches = keys.some((k) => (header.x5t !== undefined && header.x5t === k.x5t) || (header['x5t#S256'] !== undefined && header['x5t#S256'] === k['x5t#S256']));
      if (!matches) options.throwInvalidClientAuth('no registered certificate has the x5t (or x5t#S256) of the client assertion header');
    },
    pkce: { required: () => true },
    clientBasedCORS: () => true,
    features: {
      devInteractions: { enabled: false },
      introspection: { enabled: true, allowedPolicy: async () => true },
      revocation: { enabled: true, allowedPolicy: async () => true },
      clientCredentials: { enabled: true },
      deviceFlow: {
        enabled: true,
        userCodeInputSource: devicePage('Enter the code shown on your device', 'op.deviceInputForm'),
        userCodeConfirmSource: devicePage('Confirm the device', 'op.deviceConfirmForm'),
        async successSource(ctx: KoaContext) {
          ctx.body = '<!doctype html><html><body><h1 data-testbed="device-success">Sign-in Success</h1></body></html>';
        },
      },
      resourceIndicators: {
        enabled: true,
        // clients need not send `resource=`: every mail scope belongs to the one mail resource
        defaultResource: async (_ctx: KoaContext, _client: OidcClient, oneOf?: string) => oneOf ?? MAIL_RESOURCE,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx: KoaContext, resource: string, client: OidcClient) => {
          if (resource !== MAIL_RESOURCE) options.throwInvalidTarget();
          // opaque: oidc-provider refuses to introspect its JWT access tokens, and Dovecot introspects
          return { scope: MAIL_SCOPES.join(' '), audience: MAIL_RESOURCE, accessTokenTTL: ttlFor(client), accessTokenFormat: 'opaque' };
        },
      },
    },
    // Dovecot's username_attribute: only user-bound access tokens get it, so a refresh token (which also
    // introspects active) or an app-only token is refused as a bearer ("No username returned").
    extraTokenClaims: async (_ctx: KoaContext, token: { accountId?: string }) => {
      const user = token.accountId ? findUserBySub(token.accountId) : undefined;
      return user ? { email: user.email } : undefined;
    },
    // Entra ID rotates on every refresh; Google never does.
    rotateRefreshToken: (ctx: KoaContext) => layoutOf(ctx) !== 'google',
    ttl: {
      // functions, not numbers: oidc-provider ignores the resource server's accessTokenTTL once these are numbers
      AccessToken: (_ctx: KoaContext, _token: unknown, client: OidcClient) => ttlFor(client),
      ClientCredentials: (_ctx: KoaContext, _token: unknown, client: OidcClient) => ttlFor(client),
      AuthorizationCode: 60,
      DeviceCode: 600,
      IdToken: 3600,
      RefreshToken: options.refreshTokenTtl,
      Grant: Math.max(options.refreshTokenTtl, 3600),
      Session: 24 * 3600,
      Interaction: 600,
    },
    interactions: { url: (_ctx: KoaContext, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    renderError: async (ctx: KoaContext, out: Record<string, unknown>) => {
      ctx.type = 'json';
      ctx.body = out;
    },
  };
}

function devicePage(title: string, formId: string) {
  return async (ctx: KoaContext, form: string) => {
    ctx.body = `<!doctype html><html><body><h1>${title}</h1>${form}<button type="submit" form="${formId}">Continue</button></body></html>`;
  };
}
