// An Entra ID-shaped authority on loopback for tests: oidc-provider (the test bed's configuration, login page and
// Microsoft layout) whose issuer is `{origin}/{tenant GUID}/v2.0` and whose ID tokens carry `tid`, behind Entra's
// discovery documents for a tenant by GUID, by domain, and as "organizations"/"common" (the `{tenantid}` template).
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Configuration, KoaContext } from 'oidc-provider';
import { interactionHandler } from '../testbed/auth/interaction.js';
import { layoutMiddleware } from '../testbed/auth/layouts.js';
import { loadOidcProvider } from '../testbed/auth/loadProvider.js';
import { MapStore } from '../testbed/auth/mapStore.js';
import { buildProviderConfiguration } from '../testbed/auth/providerConfig.js';
import { findUserBySub, TEST_USERS } from '../testbed/auth/users.js';
import { getFreePort } from '../testbed/ports.js';

export interface EntraAuthorityOptions {
  /** The tenant's GUID: its issuer is `{issuerOrigin}/{tenantId}/v2.0`. */
  tenantId: string;
  /** Domains the tenant answers to (`/contoso.example/v2.0/…`), as verified domains do at Entra ID. */
  domains: string[];
  /**
   * Domains whose discovery document names another tenant's issuer while their token requests reach this tenant: what a
   * credential pointed at the wrong tenant (or a proxy mixing tenants up) sees.
   */
  misnamedDomains?: Record<string, string>;
}

export interface EntraAuthority {
  /** `http://127.0.0.1:<port>`: put where `https://login.microsoftonline.us` would be. */
  authority: string;
  issuer: string;
  tenantId: string;
  addClient(client: { clientId: string; clientSecret: string; redirectUri: string }): void;
  /** Whether authorization responses carry RFC 9207's `iss`, as oidc-provider does by itself (Entra ID does not). */
  sendIssParameter(send: boolean): void;
  /** The `tid` ID tokens carry from now on for this user (undefined: none at all). */
  setTokenTenant(email: string, tid: string | undefined): void;
  /** One line per request: method, path, status. */
  logs(): string;
  stop(): Promise<void>;
}

const TENANT_ALIASES = new Set(['organizations', 'common']);

export async function startEntraAuthority(options: EntraAuthorityOptions): Promise<EntraAuthority> {
  const { default: Provider, errors } = await loadOidcProvider();
  const port = await getFreePort();
  const authority = `http://127.0.0.1:${port}`;
  const issuer = `${authority}/${options.tenantId}/v2.0`;
  const logLines: string[] = [];
  const tokenTenant = new Map<string, string | undefined>();
  let issParameter = false;

  const store = new MapStore(() => Provider.ctx);
  const base = buildProviderConfiguration({
    store,
    accessTokenTtl: 60,
    accessTokenTtlByClient: new Map(),
    refreshTokenTtl: 24 * 3600,
    throwInvalidTarget: () => {
      throw new errors.InvalidTarget();
    },
    throwInvalidClientAuth: (detail) => {
      throw new errors.InvalidClientAuth(detail);
    },
  });
  const configuration: Configuration = {
    ...base,
    // Entra ID's ID tokens name the tenant the user signed in to: `tid`, also the GUID in `iss`.
    async findAccount(_ctx: KoaContext, sub: string) {
      const user = findUserBySub(sub);
      if (!user) return undefined;
      const tid = tokenTenant.has(user.email) ? tokenTenant.get(user.email) : options.tenantId;
      return {
        accountId: user.sub,
        async claims() {
          return { sub: user.sub, email: user.email, email_verified: true, preferred_username: user.email, name: user.name, ...(tid !== undefined ? { tid } : {}) };
        },
      };
    },
    claims: { ...(base.claims as Record<string, string[]>), openid: [...((base.claims as Record<string, string[]>).openid ?? []), 'tid'] },
  };
  const provider = new Provider(issuer, configuration);
  provider.use(async (ctx, next) => {
    const asked = `${ctx.method} ${ctx.path}`;
    // A domain answers as its tenant (Entra ID resolves verified domains to the tenant).
    const byDomain = /^\/([^/]+)(\/oauth2\/v2\.0\/.+)$/.exec(ctx.path);
    if (byDomain && (options.domains.includes(byDomain[1]!) || byDomain[1]! in (options.misnamedDomains ?? {}))) ctx.path = `/${options.tenantId}${byDomain[2]}`;
    await next();
    // Entra ID's authorization response carries code and state but no RFC 9207 `iss`, which oidc-provider always adds.
    const location = (ctx as unknown as { response: { get(header: string): string } }).response.get('location');
    if (!issParameter && location && URL.canParse(location) && new URL(location).searchParams.has('iss')) {
      const redirect = new URL(location);
      redirect.searchParams.delete('iss');
      ctx.set('location', redirect.href);
    }
    logLines.push(`${asked} -> ${ctx.status}`);
  });
  provider.use(
    layoutMiddleware({
      tenant: options.tenantId,
      revokeGoogleToken: async () => false,
      jwtBearerClientId: () => '',
    }),
  );

  /**
   * Entra ID's discovery: a tenant by GUID or domain names its own issuer and GUID endpoints; "organizations"/"common" name
   * the `{tenantid}` template and their alias endpoints. An unknown tenant is AADSTS90002.
   * @see https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc#find-your-apps-openid-configuration-document-uri
   */
  const discovery = (tenant: string): Record<string, unknown> | undefined => {
    const misnamed = options.misnamedDomains?.[tenant];
    const known = tenant === options.tenantId || options.domains.includes(tenant) || misnamed !== undefined;
    if (!known && !TENANT_ALIASES.has(tenant)) return undefined;
    const pathTenant = known ? options.tenantId : tenant;
    const issuerTenant = known ? (misnamed ?? options.tenantId) : '{tenantid}';
    return {
      issuer: `${authority}/${issuerTenant}/v2.0`,
      authorization_endpoint: `${authority}/${pathTenant}/oauth2/v2.0/authorize`,
      token_endpoint: `${authority}/${pathTenant}/oauth2/v2.0/token`,
      device_authorization_endpoint: `${authority}/${pathTenant}/oauth2/v2.0/devicecode`,
      jwks_uri: `${authority}/jwks`,
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'nonce', 'preferred_username', 'name', 'tid', 'email'],
    };
  };

  const providerCallback = provider.callback();
  const interaction = interactionHandler(provider, (err) => logLines.push(`interaction failed: ${String(err)}`));
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const wellKnown = /^\/([^/]+)\/v2\.0\/\.well-known\/openid-configuration$/.exec(path);
    if (wellKnown) {
      const document = discovery(decodeURIComponent(wellKnown[1]!));
      logLines.push(`GET ${path} -> ${document ? 200 : 400}`);
      res.writeHead(document ? 200 : 400, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify(document ?? { error: 'invalid_tenant', error_description: `AADSTS90002: Tenant '${wellKnown[1]}' not found.`, error_codes: [90002] }));
    } else if (path.startsWith('/interaction/')) interaction(req, res);
    else providerCallback(req, res);
  });
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });

  return {
    authority,
    issuer,
    tenantId: options.tenantId,
    addClient({ clientId, clientSecret, redirectUri }) {
      store.clients.set(clientId, {
        authMethod: 'any',
        metadata: { client_id: clientId, client_secret: clientSecret, client_name: clientId, redirect_uris: [redirectUri], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] },
      });
    },
    sendIssParameter(send) {
      issParameter = send;
    },
    setTokenTenant(email, tid) {
      if (!Object.values(TEST_USERS).some((u) => u.email === email)) throw new Error(`no test user ${email}`);
      tokenTenant.set(email, tid);
    },
    logs: () => logLines.join('\n'),
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}
