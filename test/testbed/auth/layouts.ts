// Makes one oidc-provider answer on Microsoft Entra ID's and Google's URL layouts, with each one's quirks:
// paths are rewritten onto the provider's own routes and responses post-processed per layout.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { KoaContext, Middleware } from 'oidc-provider';

export type Layout = 'microsoft' | 'google' | 'generic';

export const GOOGLE_PATHS = {
  authorize: '/o/oauth2/v2/auth',
  token: '/google/token',
  revoke: '/google/revoke',
  deviceCode: '/google/device/code',
} as const;

export const microsoftPath = (tenant: string, endpoint: 'authorize' | 'token' | 'devicecode') => `/${tenant}/oauth2/v2.0/${endpoint}`;

/** Entra ID also answers on these instead of a tenant id. */
const MICROSOFT_TENANT_ALIASES = new Set(['common', 'organizations']);

/** The provider route each layout endpoint is served by. */
const PROVIDER_ROUTE = { authorize: '/auth', token: '/token', devicecode: '/device/auth' } as const;

/** The error oidc-provider raised for this request (its detail says why, e.g. "refresh token is expired"). */
export interface RecordedOidcError {
  error?: string;
  error_detail?: string;
  /** Sent to the client; the log falls back to it when there is no detail (the jwt-bearer grant's Google texts). */
  error_description?: string;
  message?: string;
}

export function layoutOf(ctx: KoaContext): Layout {
  return (ctx.state.layout as Layout | undefined) ?? 'generic';
}

export function recordOidcError(ctx: KoaContext, err: RecordedOidcError): void {
  ctx.state.oidcError = err;
}

export interface LayoutOptions {
  tenant: string;
  /** Google's revocation endpoint: revokes the whole grant of a refresh or access token; false if unknown. */
  revokeGoogleToken(token: string): Promise<boolean>;
  /** The client a Google jwt-bearer request (which carries no client authentication) is served as. */
  jwtBearerClientId(assertion: string): string;
}

export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

export function layoutMiddleware(options: LayoutOptions): Middleware {
  return async (ctx, next) => {
    const microsoft = /^\/([^/]+)\/oauth2\/v2\.0\/(authorize|token|devicecode)$/.exec(ctx.path);
    if (microsoft) {
      const [, tenant, endpoint] = microsoft as unknown as [string, string, keyof typeof PROVIDER_ROUTE];
      ctx.state.layout = 'microsoft';
      if (tenant !== options.tenant && !MICROSOFT_TENANT_ALIASES.has(tenant)) {
        return sendMicrosoftError(ctx, 400, 'invalid_request', 90002, `Tenant '${tenant}' not found.`);
      }
      ctx.path = PROVIDER_ROUTE[endpoint];
      // Entra ID wants a client assertion's aud to be this token URL. oidc-provider accepts its own token URL, which
      // it derives from a mount path; req.originalUrl is where it finds one (express and koa-mount set it).
      if (endpoint === 'token') (ctx.req as IncomingMessage & { originalUrl?: string }).originalUrl = microsoftPath(tenant, 'token');
      if (endpoint === 'authorize') ctx.query = withOfflineConsent(ctx.query, false);
      await next();
      if (endpoint === 'token') postProcessMicrosoftToken(ctx);
      return;
    }
    switch (ctx.path) {
      case GOOGLE_PATHS.authorize:
        ctx.state.layout = 'google';
        ctx.path = PROVIDER_ROUTE.authorize;
        ctx.query = withOfflineConsent(ctx.query, ctx.query.access_type === 'offline');
        return next();
      case GOOGLE_PATHS.token:
        ctx.state.layout = 'google';
        ctx.path = PROVIDER_ROUTE.token;
        if (ctx.method === 'POST' && ctx.is('application/x-www-form-urlencoded')) await nameJwtBearerClient(ctx, options);
        await next();
        return postProcessGoogleToken(ctx);
      case GOOGLE_PATHS.deviceCode:
        ctx.state.layout = 'google';
        ctx.path = PROVIDER_ROUTE.devicecode;
        return next();
      case GOOGLE_PATHS.revoke:
        ctx.state.layout = 'google';
        return googleRevoke(ctx, options);
      default:
        return next();
    }
  };
}

/**
 * oidc-provider drops `offline_access` (so: no refresh token) when a `prompt` without `consent` is present, and it
 * knows no `select_account`. Entra ID (prompt=select_account) and Google (access_type=offline) do issue refresh
 * tokens then, so: select_account becomes login, and consent is added whenever offline access is asked for.
 */
function withOfflineConsent(query: KoaContext['query'], addOfflineScope: boolean): KoaContext['query'] {
  const out = { ...query };
  const scopes = new Set(String(out.scope ?? '').split(' ').filter(Boolean));
  if (addOfflineScope) scopes.add('offline_access');
  if (scopes.size > 0) out.scope = [...scopes].join(' ');
  if (typeof out.prompt === 'string') {
    const prompts = new Set(out.prompt.split(' ').map((p) => (p === 'select_account' ? 'login' : p)));
    if (scopes.has('offline_access') && !prompts.has('none')) prompts.add('consent');
    out.prompt = [...prompts].join(' ');
  }
  return out;
}

type TokenBody = Record<string, unknown> & { error?: string; error_description?: string };

function tokenBody(ctx: KoaContext): TokenBody | undefined {
  return ctx.body !== null && typeof ctx.body === 'object' ? (ctx.body as TokenBody) : undefined;
}

function grantTypeOf(ctx: KoaContext): string {
  return String(ctx.oidc?.params?.grant_type ?? '');
}

function postProcessMicrosoftToken(ctx: KoaContext): void {
  const body = tokenBody(ctx);
  if (!body) return;
  if (body.error) {
    const detail = (ctx.state.oidcError as RecordedOidcError | undefined)?.error_detail ?? '';
    const usedAssertion = ctx.oidc?.params?.client_assertion !== undefined;
    const { code, text } = microsoftErrorCode(body.error, grantTypeOf(ctx), detail, usedAssertion);
    // Entra ID answers every invalid_client with 401 (oidc-provider uses 400 for an expired secret)
    sendMicrosoftError(ctx, body.error === 'invalid_client' ? 401 : ctx.status, body.error, code, text);
  } else if (typeof body.expires_in === 'number') {
    body.ext_expires_in = body.expires_in; // Entra ID always sends both
  }
}

/**
 * Entra ID's AADSTS codes for the failures the test bed can produce, so the gateway can classify on codes as it
 * must in production. See https://learn.microsoft.com/entra/identity-platform/reference-error-codes
 */
function microsoftErrorCode(error: string, grantType: string, detail: string, usedAssertion: boolean): { code: number; text: string } {
  if (error === 'invalid_client' && usedAssertion && !detail.includes('client not found')) {
    // a certificate (private_key_jwt) client: wrong or unregistered certificate, bad signature, missing x5t
    return { code: 700027, text: `Client assertion failed signature validation. (${detail || 'invalid client assertion'})` };
  }
  if (error === 'invalid_client') {
    if (detail.includes('expired')) return { code: 7000222, text: 'The provided client secret keys for app are expired.' };
    if (detail.includes('client not found')) return { code: 700016, text: 'Application was not found in the directory.' };
    return { code: 7000215, text: 'Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.' };
  }
  if (error === 'invalid_grant') {
    if (grantType === 'refresh_token' && /expired|not found/.test(detail)) {
      // expired and revoked (deleted) refresh tokens: Entra ID's "refresh token has expired due to inactivity" family
      return { code: 700082, text: 'The refresh token has expired due to inactivity or was revoked.' };
    }
    if (grantType === 'authorization_code' && detail.includes('already consumed')) {
      return { code: 54005, text: 'OAuth2 Authorization code was already redeemed, please retry with a new valid code.' };
    }
    if (detail.toLowerCase().includes('pkce') || detail.includes('code_verifier')) {
      return { code: 501481, text: 'The Code_Verifier does not match the code_challenge supplied in the authorization request.' };
    }
    return { code: 70000, text: `The provided grant is invalid or malformed (${detail || 'invalid grant'}).` };
  }
  const byError: Record<string, number> = { invalid_scope: 70011, unsupported_grant_type: 70003, unauthorized_client: 700016 };
  return { code: byError[error] ?? 900144, text: `The request is invalid (${detail || error}).` };
}

function sendMicrosoftError(ctx: KoaContext, status: number, error: string, code: number, text: string): void {
  const traceId = randomUUID();
  const correlationId = randomUUID();
  const timestamp = new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  ctx.status = status;
  ctx.type = 'json';
  ctx.body = {
    error,
    error_description: `AADSTS${code}: ${text} Trace ID: ${traceId} Correlation ID: ${correlationId} Timestamp: ${timestamp}`,
    error_codes: [code],
    timestamp,
    trace_id: traceId,
    correlation_id: correlationId,
  };
}

function postProcessGoogleToken(ctx: KoaContext): void {
  const body = tokenBody(ctx);
  if (!body) return;
  // the jwt-bearer grant answers with Google's own texts already ("Invalid JWT Signature." …)
  if (body.error && grantTypeOf(ctx) === JWT_BEARER_GRANT) return;
  if (body.error === 'invalid_grant') {
    body.error_description = grantTypeOf(ctx) === 'refresh_token' ? 'Token has been expired or revoked.' : 'Bad Request';
  } else if (body.error === 'invalid_client') {
    ctx.status = 401;
    body.error_description = 'Unauthorized';
  } else if (!body.error && grantTypeOf(ctx) === 'refresh_token') {
    // Google never rotates: a refresh response carries no refresh_token, the client keeps the one it has.
    delete body.refresh_token;
  }
}

/**
 * Google's jwt-bearer request has no client authentication, while oidc-provider authenticates a client on every token
 * request: name the service account's client (a `none` client) in the form. oidc-provider parses the body itself; from a
 * consumed request it takes `req.body` instead, its documented path for an upstream body parser.
 */
async function nameJwtBearerClient(ctx: KoaContext, options: LayoutOptions): Promise<void> {
  const form = await readForm(ctx.req);
  if (form.get('grant_type') === JWT_BEARER_GRANT && !form.has('client_id')) {
    form.set('client_id', options.jwtBearerClientId(form.get('assertion') ?? ''));
  }
  (ctx.req as IncomingMessage & { body?: string }).body = form.toString();
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  let body = '';
  for await (const chunk of req) body += chunk;
  return new URLSearchParams(body);
}

/** https://developers.google.com/identity/protocols/oauth2/web-server#tokenrevoke — no client authentication. */
async function googleRevoke(ctx: KoaContext, options: LayoutOptions): Promise<void> {
  const token = typeof ctx.query.token === 'string' ? ctx.query.token : (await readForm(ctx.req)).get('token');
  ctx.type = 'json';
  if (ctx.method !== 'POST' || !token || !(await options.revokeGoogleToken(token))) {
    ctx.status = 400;
    ctx.body = { error: 'invalid_token', error_description: 'Token expired or revoked' };
    return;
  }
  ctx.status = 200;
  ctx.body = {};
}
