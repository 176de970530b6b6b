// In-process OAuth2 / OpenID Connect authorization server for tests: oidc-provider on 127.0.0.1:<free port>,
// answering on the Microsoft Entra ID and Google URL layouts, with its own login page and test users.
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { KoaContext } from 'oidc-provider';
import { generateTestCertificate, type TestCertificate } from './auth/certificates.js';
import { interactionHandler } from './auth/interaction.js';
import { GOOGLE_PATHS, layoutMiddleware, microsoftPath, recordOidcError, type RecordedOidcError } from './auth/layouts.js';
import { loadOidcProvider } from './auth/loadProvider.js';
import { MapStore, type ClientAuthMethod } from './auth/mapStore.js';
import { buildProviderConfiguration, GOOGLE_MAIL_SCOPE, MAIL_RESOURCE, MAIL_SCOPES, MICROSOFT_SCOPES } from './auth/providerConfig.js';
import { JWT_BEARER_GRANT, jwtBearerGrant, ServiceAccounts, UNKNOWN_SERVICE_ACCOUNT_CLIENT } from './auth/serviceAccounts.js';
import { TEST_USERS } from './auth/users.js';
import { TestbedError, TestbedErrorCode } from './errors.js';
import { getFreePort } from './ports.js';

export type { Layout } from './auth/layouts.js';
export type { ClientAuthMethod } from './auth/mapStore.js';
export type { TestUser } from './auth/users.js';
export { GOOGLE_MAIL_SCOPE, MAIL_RESOURCE, MICROSOFT_SCOPES } from './auth/providerConfig.js';
export { TEST_USERS } from './auth/users.js';
export { generateTestCertificate, type TestCertificate } from './auth/certificates.js';
export { JWT_BEARER_GRANT } from './auth/serviceAccounts.js';

/** A fixed, GUID-shaped test tenant: Entra ID paths are `/{tenant}/oauth2/v2.0/…`. */
export const TEST_TENANT_ID = '9c0e5b1a-7f3d-4c2e-8a61-2d4b3f5e6a70';

export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

export interface AuthServerOptions {
  /** Access-token lifetime in seconds (default 60). Per client: `addClient({ accessTokenTtl })`. */
  accessTokenTtl?: number;
  /** Refresh-token lifetime in seconds (default 14 days). */
  refreshTokenTtl?: number;
  /** Tenant id of the Microsoft layout (default TEST_TENANT_ID). */
  tenant?: string;
}

export interface TestClientRegistration {
  clientId: string;
  /** Required unless tokenEndpointAuthMethod is `none`. */
  clientSecret?: string;
  redirectUris?: string[];
  /** Default: authorization_code (when there are redirect URIs), refresh_token, client_credentials and the device-code grant. */
  grantTypes?: string[];
  /** Default `any`: secret accepted as HTTP Basic or in the form body, as Entra ID and Google do. */
  tokenEndpointAuthMethod?: ClientAuthMethod;
  /** Access-token lifetime in seconds for this client only, e.g. 3 to test expiry. */
  accessTokenTtl?: number;
  clientName?: string;
}

export interface TestClient {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
}

export interface ServiceAccountRegistration {
  /** Default `mailgate-<n>@mailgate-testbed.iam.gserviceaccount.com`. */
  clientEmail?: string;
  /** Scopes the Workspace admin allowed for it under domain-wide delegation (default: the Gmail scope). */
  delegatedScopes?: string[];
  /** Access-token lifetime in seconds for this service account's tokens. */
  accessTokenTtl?: number;
}

export interface TestServiceAccount {
  /** The key file as Google ships it; `token_uri` is the Google layout's token URL. */
  keyJson: string;
  clientEmail: string;
  /** The numeric client id (`client_id` in the key file, the `client_id` tokens introspect with). */
  clientId: string;
}

export interface CertificateClientRegistration {
  clientId: string;
  /** Default: client_credentials only (an app-only registration). */
  grantTypes?: string[];
  accessTokenTtl?: number;
  clientName?: string;
}

export interface TestCertificateClient extends TestCertificate {
  clientId: string;
}

/** What Dovecot's oauth2 passdb needs; spread it into startMailServer(). */
export interface IntrospectionAccess {
  introspectionUrl: string;
  introspectionClientId: string;
  introspectionClientSecret: string;
}

export interface AuthServer {
  port: number;
  /** `http://127.0.0.1:<port>`; also the issuer of ID tokens on every layout. */
  issuer: string;
  discoveryUrl: string;
  /** The provider's own (generic OIDC) endpoints. Refresh tokens rotate here. */
  authorizationUrl: string;
  tokenUrl: string;
  revocationUrl: string;
  introspectionUrl: string;
  userinfoUrl: string;
  jwksUrl: string;
  deviceAuthorizationUrl: string;
  microsoft: {
    /** Put where the gateway expects `https://login.microsoftonline.com`. */
    authority: string;
    tenant: string;
    authorizationUrl: string;
    tokenUrl: string;
    deviceAuthorizationUrl: string;
    scopes: typeof MICROSOFT_SCOPES;
  };
  google: {
    authorizationUrl: string;
    tokenUrl: string;
    revocationUrl: string;
    deviceAuthorizationUrl: string;
    scope: string;
  };
  users: typeof TEST_USERS;
  introspection: IntrospectionAccess;
  /** Registered at start: confidential, redirect URI never contacted. Used by obtainTokens(). */
  testClient: TestClient;
  addClient(registration: TestClientRegistration): TestClient;
  /**
   * A Google service account with domain-wide delegation: the Google token URL then accepts its RFC 7523 jwt-bearer
   * assertions (sub = a test user's email) and issues access tokens for that user, without refresh tokens.
   */
  addServiceAccount(registration?: ServiceAccountRegistration): Promise<TestServiceAccount>;
  /**
   * An app registration that authenticates with a certificate (private_key_jwt, key found by the header's x5t), as on
   * Entra ID. Answers AADSTS700027 on the Microsoft layout for an assertion the certificate does not verify.
   */
  addCertificateClient(registration: CertificateClientRegistration): Promise<TestCertificateClient>;
  /** Client secret rotation: the old secret stops working at once. */
  setClientSecret(clientId: string, secret: string): void;
  /** The secret stays the same but has expired (Entra ID answers AADSTS7000222). */
  expireClientSecret(clientId: string): void;
  /** Revokes every grant of the user (optionally only for one client): refresh then fails with invalid_grant. Returns how many. */
  revokeGrants(email: string, options?: { clientId?: string }): number;
  /** Stops answering (closes the listener, destroys open connections); state is kept. */
  suspend(): Promise<void>;
  /** Listens again on the same port with the same state. */
  resume(): Promise<void>;
  /** One line per request (method, path, status, oidc-provider's error detail); never bodies or secrets. */
  logs(): string;
  stop(): Promise<void>;
}

const secret = () => randomBytes(18).toString('base64url');

export async function startAuthServer(options: AuthServerOptions = {}): Promise<AuthServer> {
  const accessTokenTtl = options.accessTokenTtl ?? 60;
  if (!Number.isInteger(accessTokenTtl) || accessTokenTtl < 1) {
    throw new TestbedError(TestbedErrorCode.BAD_OPTION, `accessTokenTtl must be a positive integer of seconds, got ${accessTokenTtl}`);
  }
  let lastError: unknown;
  // Another process may take the free port before we bind it: try again with a new one.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnPort(await getFreePort(), { ...options, accessTokenTtl });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      lastError = err;
    }
  }
  throw new TestbedError(TestbedErrorCode.START_FAILED, 'authorization server found no free port', { cause: lastError });
}

async function startOnPort(port: number, options: AuthServerOptions & { accessTokenTtl: number }): Promise<AuthServer> {
  const { default: Provider, errors } = await loadOidcProvider();
  const issuer = `http://127.0.0.1:${port}`;
  const tenant = options.tenant ?? TEST_TENANT_ID;
  const logLines: string[] = [];
  const log = (line: string) => {
    logLines.push(`${new Date().toISOString()} ${line}`);
    if (logLines.length > 2000) logLines.shift();
  };

  const store = new MapStore(() => Provider.ctx);
  const accessTokenTtlByClient = new Map<string, number>();
  const serviceAccounts = new ServiceAccounts();
  const provider = new Provider(
    issuer,
    buildProviderConfiguration({
      store,
      accessTokenTtl: options.accessTokenTtl,
      accessTokenTtlByClient,
      refreshTokenTtl: options.refreshTokenTtl ?? 14 * 24 * 3600,
      throwInvalidTarget: () => {
        throw new errors.InvalidTarget();
      },
      throwInvalidClientAuth: (detail) => {
        throw new errors.InvalidClientAuth(detail);
      },
    }),
  );
  provider.registerGrantType(
    JWT_BEARER_GRANT,
    jwtBearerGrant({
      provider,
      accounts: serviceAccounts,
      audience: issuer + GOOGLE_PATHS.token,
      resourceServer: { identifier: MAIL_RESOURCE, scope: MAIL_SCOPES.join(' ') },
      refuse: (error, description) => new errors.CustomOIDCProviderError(error, description),
    }),
    ['assertion', 'scope'],
  );

  for (const event of ['grant.error', 'introspection.error', 'revocation.error', 'device_authorization.error', 'authorization.error', 'server_error']) {
    provider.on(event, (ctx: KoaContext, err: RecordedOidcError) => recordOidcError(ctx, err));
  }
  provider.use(async (ctx, next) => {
    const asked = `${ctx.method} ${ctx.path}`;
    await next();
    const err = ctx.state.oidcError as RecordedOidcError | undefined;
    const routed = asked.endsWith(` ${ctx.path}`) ? '' : ` (as ${ctx.path})`;
    log(`${asked}${routed} -> ${ctx.status}${err ? ` ${err.error ?? err.message}: ${err.error_detail ?? err.error_description ?? ''}` : ''}`);
  });
  provider.use(
    layoutMiddleware({
      tenant,
      async revokeGoogleToken(token) {
        const found = (await provider.RefreshToken.find(token)) ?? (await provider.AccessToken.find(token));
        if (!found?.grantId) return false;
        store.revokeGrant(found.grantId);
        return true;
      },
      jwtBearerClientId: (assertion) => serviceAccounts.clientIdForAssertion(assertion),
    }),
  );

  const addClient = (registration: TestClientRegistration): TestClient => {
    const authMethod = registration.tokenEndpointAuthMethod ?? 'any';
    const redirectUris = registration.redirectUris ?? [];
    // authorization_code needs a redirect URI; oidc-provider would refuse the client at its first request otherwise
    const grantTypes = registration.grantTypes ?? [
      ...(redirectUris.length > 0 ? ['authorization_code'] : []),
      'refresh_token',
      DEVICE_CODE_GRANT,
      ...(authMethod === 'none' ? [] : ['client_credentials']),
    ];
    const clientSecret = registration.clientSecret ?? '';
    if (authMethod !== 'none' && !clientSecret) {
      throw new TestbedError(TestbedErrorCode.BAD_OPTION, `client ${registration.clientId} needs a clientSecret`);
    }
    store.clients.set(registration.clientId, {
      authMethod,
      metadata: {
        client_id: registration.clientId,
        ...(authMethod === 'none' ? {} : { client_secret: clientSecret }),
        client_name: registration.clientName ?? registration.clientId,
        redirect_uris: redirectUris,
        grant_types: grantTypes,
        response_types: grantTypes.includes('authorization_code') ? ['code'] : [],
      },
    });
    if (registration.accessTokenTtl !== undefined) accessTokenTtlByClient.set(registration.clientId, registration.accessTokenTtl);
    return { clientId: registration.clientId, clientSecret, redirectUri: redirectUris[0] ?? '' };
  };
  const clientRecord = (clientId: string) => {
    const record = store.clients.get(clientId);
    if (!record) throw new TestbedError(TestbedErrorCode.BAD_OPTION, `no test client ${clientId}`);
    return record;
  };

  const introspection: IntrospectionAccess = {
    introspectionUrl: `${issuer}/token/introspection`,
    introspectionClientId: 'dovecot',
    introspectionClientSecret: secret(),
  };
  addClient({
    clientId: introspection.introspectionClientId,
    clientSecret: introspection.introspectionClientSecret,
    grantTypes: [],
  });
  const addNoneClient = (clientId: string, grantTypes: string[]) =>
    store.clients.set(clientId, {
      authMethod: 'none',
      metadata: { client_id: clientId, client_name: clientId, redirect_uris: [], grant_types: grantTypes, response_types: [] },
    });
  addNoneClient(UNKNOWN_SERVICE_ACCOUNT_CLIENT, [JWT_BEARER_GRANT]);
  let serviceAccountCount = 0;

  const addServiceAccount = async (registration: ServiceAccountRegistration = {}): Promise<TestServiceAccount> => {
    const { account, keyJson } = await serviceAccounts.create({
      clientEmail: registration.clientEmail ?? `mailgate-${++serviceAccountCount}@mailgate-testbed.iam.gserviceaccount.com`,
      delegatedScopes: registration.delegatedScopes ?? [GOOGLE_MAIL_SCOPE],
      tokenUri: issuer + GOOGLE_PATHS.token,
      authUri: issuer + GOOGLE_PATHS.authorize,
    });
    addNoneClient(account.clientId, [JWT_BEARER_GRANT]);
    if (registration.accessTokenTtl !== undefined) accessTokenTtlByClient.set(account.clientId, registration.accessTokenTtl);
    return { keyJson, clientEmail: account.clientEmail, clientId: account.clientId };
  };

  const addCertificateClient = async (registration: CertificateClientRegistration): Promise<TestCertificateClient> => {
    const certificate = await generateTestCertificate({ commonName: registration.clientId });
    const grantTypes = registration.grantTypes ?? ['client_credentials'];
    store.clients.set(registration.clientId, {
      authMethod: 'private_key_jwt',
      metadata: {
        client_id: registration.clientId,
        client_name: registration.clientName ?? registration.clientId,
        redirect_uris: [],
        grant_types: grantTypes,
        response_types: [],
        jwks: { keys: [certificate.publicJwk] },
      },
    });
    if (registration.accessTokenTtl !== undefined) accessTokenTtlByClient.set(registration.clientId, registration.accessTokenTtl);
    return { ...certificate, clientId: registration.clientId };
  };

  // Port 9 (discard) on loopback: nothing listens, and the login driver never fetches the redirect anyway.
  const testClient = addClient({ clientId: 'testbed-client', clientSecret: secret(), redirectUris: ['http://127.0.0.1:9/callback'] });

  const providerCallback = provider.callback();
  const interaction = interactionHandler(provider, (err) => log(`interaction failed: ${String(err)}`));
  const server: Server = createServer((req, res) => {
    if (req.url?.startsWith('/interaction/')) {
      res.on('finish', () => log(`${req.method} /interaction/… (login page) -> ${res.statusCode}`));
      interaction(req, res);
    } else providerCallback(req, res);
  });
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  const close = () =>
    new Promise<void>((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    });
  await listen();

  return {
    port,
    issuer,
    discoveryUrl: `${issuer}/.well-known/openid-configuration`,
    authorizationUrl: `${issuer}/auth`,
    tokenUrl: `${issuer}/token`,
    revocationUrl: `${issuer}/token/revocation`,
    introspectionUrl: introspection.introspectionUrl,
    userinfoUrl: `${issuer}/me`,
    jwksUrl: `${issuer}/jwks`,
    deviceAuthorizationUrl: `${issuer}/device/auth`,
    microsoft: {
      authority: issuer,
      tenant,
      authorizationUrl: issuer + microsoftPath(tenant, 'authorize'),
      tokenUrl: issuer + microsoftPath(tenant, 'token'),
      deviceAuthorizationUrl: issuer + microsoftPath(tenant, 'devicecode'),
      scopes: MICROSOFT_SCOPES,
    },
    google: {
      authorizationUrl: issuer + GOOGLE_PATHS.authorize,
      tokenUrl: issuer + GOOGLE_PATHS.token,
      revocationUrl: issuer + GOOGLE_PATHS.revoke,
      deviceAuthorizationUrl: issuer + GOOGLE_PATHS.deviceCode,
      scope: GOOGLE_MAIL_SCOPE,
    },
    users: TEST_USERS,
    introspection,
    testClient,
    addClient,
    addServiceAccount,
    addCertificateClient,
    setClientSecret(clientId, newSecret) {
      clientRecord(clientId).metadata.client_secret = newSecret;
    },
    expireClientSecret(clientId) {
      // an hour ago: oidc-provider allows its clockTolerance (15 s) past expiry
      clientRecord(clientId).metadata.client_secret_expires_at = Math.floor(Date.now() / 1000) - 3600;
    },
    revokeGrants(email, { clientId } = {}) {
      const user = Object.values(TEST_USERS).find((u) => u.email === email);
      if (!user) throw new TestbedError(TestbedErrorCode.BAD_OPTION, `no test user ${email}`);
      let revoked = 0;
      for (const [grantId, grant] of [...store.list('Grant')]) {
        if (grant.accountId !== user.sub || (clientId !== undefined && grant.clientId !== clientId)) continue;
        store.revokeGrant(grantId);
        revoked++;
      }
      return revoked;
    },
    suspend: close,
    async resume() {
      if (!server.listening) await listen();
    },
    logs: () => logLines.join('\n'),
    stop: close,
  };
}
