// Classifies token-endpoint failures into what Mailgate must do: sign in again, replace the client secret, retry later, or stop.
import * as oidc from 'openid-client';
import { ErrorCode, isMailgateError } from '../errors.js';
import { retryAfterMs } from '../tokens/backoff.js';

export type FailureKind = 'reauthorize' | 'client_secret' | 'transient' | 'refused';

export interface GrantFailure {
  kind: FailureKind;
  /** OAuth `error` (RFC 6749 §5.2), when the provider sent one. */
  error: string | undefined;
  /** Microsoft's numeric AADSTS codes from the `error_codes` array. */
  microsoftCodes: number[];
  status: number | undefined;
  /** For people: what happened and what to do. Never contains a token or secret. */
  message: string;
  /** The endpoint's `Retry-After` (429, 503 …), in milliseconds, when it sent one. */
  retryAfterMs?: number;
  /** The ID-token claim that did not check out (`iss`, `aud`, `nonce` …): the response came, but is not for us. */
  claim?: string;
}

/**
 * Microsoft error codes, decided by number, never by text.
 * @see https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes
 */
const MICROSOFT_CODES: Record<number, { kind: FailureKind; meaning: string }> = {
  7000215: { kind: 'client_secret', meaning: 'the client secret is wrong (AADSTS7000215): create a new secret under Certificates & secrets and paste its Value (not its ID)' },
  7000222: { kind: 'client_secret', meaning: 'the client secret has expired (AADSTS7000222): create a new secret under Certificates & secrets and update the credential' },
  700027: { kind: 'client_secret', meaning: 'Entra ID refused the certificate\'s assertion (AADSTS700027): upload this certificate (its .cer) under Certificates & secrets, or paste the certificate that is uploaded there' },
  700016: { kind: 'client_secret', meaning: 'no application with this client ID exists in the tenant (AADSTS700016): check the client ID and tenant' },
  70008: { kind: 'reauthorize', meaning: 'the refresh token has expired (AADSTS70008): sign in again' },
  700082: { kind: 'reauthorize', meaning: 'the refresh token expired after 90 days without use (AADSTS700082): sign in again' },
  50173: { kind: 'reauthorize', meaning: 'the grant was revoked, usually by a password change (AADSTS50173): sign in again' },
  50076: { kind: 'reauthorize', meaning: 'multi-factor authentication is now required (AADSTS50076): sign in again' },
  50079: { kind: 'reauthorize', meaning: 'the user must register for multi-factor authentication (AADSTS50079): sign in again' },
  50158: { kind: 'reauthorize', meaning: 'a conditional access policy requires an interactive sign-in (AADSTS50158): sign in again' },
  53003: { kind: 'reauthorize', meaning: 'blocked by a conditional access policy (AADSTS53003): ask the tenant admin, then sign in again' },
  65001: { kind: 'reauthorize', meaning: 'consent for the requested permissions was withdrawn or never given (AADSTS65001): sign in again, or have an admin grant consent' },
  70000: { kind: 'reauthorize', meaning: 'the grant is invalid or was revoked (AADSTS70000): sign in again' },
  70043: { kind: 'reauthorize', meaning: 'the refresh token expired under a sign-in frequency policy (AADSTS70043): sign in again' },
  50057: { kind: 'reauthorize', meaning: 'the user account is disabled (AADSTS50057)' },
  50053: { kind: 'transient', meaning: 'the account is temporarily locked (AADSTS50053): retrying later' },
  900144: { kind: 'refused', meaning: 'the token request lacks a parameter Entra ID requires (AADSTS900144; the provider\'s words name it, most often "scope"): check the credential\'s scopes and client ID' },
};

const OAUTH_ERRORS: Record<string, { kind: FailureKind; meaning: string }> = {
  invalid_grant: { kind: 'reauthorize', meaning: 'the provider no longer accepts the refresh token (invalid_grant: expired, revoked, or the password changed): sign in again' },
  invalid_client: { kind: 'client_secret', meaning: 'the provider refused the client (invalid_client): the client secret is wrong or expired, or the client ID is wrong; create a new secret and update the credential' },
  unauthorized_client: { kind: 'client_secret', meaning: 'the client is not allowed to use this grant (unauthorized_client): check the app registration' },
  invalid_scope: { kind: 'refused', meaning: 'the provider refused a requested scope (invalid_scope): check the API permissions of the app registration' },
  unsupported_grant_type: { kind: 'refused', meaning: 'the provider does not allow this grant for the app (unsupported_grant_type): enable it in the app registration (for the device code flow, Entra ID\'s "Allow public client flows"), or give the credential a grant the app allows' },
  invalid_request: { kind: 'refused', meaning: 'the provider refused the token request as incomplete or invalid (invalid_request): its words below name the parameter or setting; check the credential\'s client ID, scopes and grant against the app registration' },
  temporarily_unavailable: { kind: 'transient', meaning: 'the provider is temporarily unavailable: retrying with backoff' },
  server_error: { kind: 'transient', meaning: 'the provider had an internal error: retrying with backoff' },
  slow_down: { kind: 'transient', meaning: 'the provider asks to slow down: retrying with backoff' },
};

/** The facts of an OAuth error response, wherever openid-client put them. */
interface ErrorFacts {
  error: string;
  description: string | undefined;
  status: number;
  body: Record<string, unknown>;
}

/**
 * openid-client raises ResponseBodyError for a JSON error body, but WWWAuthenticateChallengeError for a 401 that
 * carries a WWW-Authenticate header (as invalid_client answers do), leaving the body unread: read it here.
 */
async function errorFacts(err: unknown): Promise<ErrorFacts | undefined> {
  if (err instanceof oidc.ResponseBodyError) {
    return { error: err.error, description: err.error_description, status: err.status, body: (err.cause ?? {}) as Record<string, unknown> };
  }
  if (err instanceof oidc.WWWAuthenticateChallengeError) {
    let body: Record<string, unknown> = {};
    try {
      body = (await err.response.clone().json()) as Record<string, unknown>;
    } catch {
      body = {};
    }
    const challengeError = err.cause.map((c) => c.parameters.error).find((e): e is string => typeof e === 'string');
    const error = typeof body.error === 'string' ? body.error : (challengeError ?? (err.status === 401 ? 'invalid_client' : 'invalid_request'));
    const description = typeof body.error_description === 'string' ? body.error_description : undefined;
    return { error, description, status: err.status, body };
  }
  return undefined;
}

export async function classifyGrantError(err: unknown): Promise<GrantFailure> {
  const failure = await classify(err);
  const asked = retryAfterMs(responseOf(err)?.headers.get('retry-after'));
  return asked === undefined ? failure : { ...failure, retryAfterMs: asked };
}

/** The token endpoint's HTTP response, wherever openid-client keeps it. */
function responseOf(err: unknown): Response | undefined {
  if (err instanceof oidc.ResponseBodyError || err instanceof oidc.WWWAuthenticateChallengeError) return err.response;
  const cause = (err as { cause?: unknown })?.cause;
  return cause instanceof Response ? cause : undefined;
}

async function classify(err: unknown): Promise<GrantFailure> {
  const invalid = invalidIdToken(err);
  if (invalid) return invalid;
  // Refusals Mailgate words itself before any token request (clientConfig.ts: a tenant the authority does not know).
  if (isMailgateError(err) && err.code === ErrorCode.TOKEN_REQUEST_REFUSED) {
    const codes = Array.isArray(err.details.microsoftCodes) ? (err.details.microsoftCodes as unknown[]).filter((c): c is number => typeof c === 'number') : [];
    return { kind: 'refused', error: undefined, microsoftCodes: codes, status: undefined, message: err.message };
  }
  const facts = await errorFacts(err);
  if (facts) {
    const { error, status, body } = facts;
    const microsoftCodes = Array.isArray(body.error_codes) ? body.error_codes.filter((c): c is number => typeof c === 'number') : [];
    const byCode = microsoftCodes.map((c) => MICROSOFT_CODES[c]).find((v) => v !== undefined);
    if (byCode) return { kind: byCode.kind, error, microsoftCodes, status, message: byCode.meaning };
    if (status === 429 || status >= 500) {
      return { kind: 'transient', error, microsoftCodes, status, message: `the token endpoint answered HTTP ${status} (${error}): retrying with backoff` };
    }
    const known = OAUTH_ERRORS[error];
    const detail = facts.description ? ` — provider says: ${truncate(facts.description)}` : '';
    if (known) return { kind: known.kind, error, microsoftCodes, status, message: `${known.meaning}${detail}` };
    return { kind: 'refused', error, microsoftCodes, status, message: `the provider refused the token request (${error})${detail}` };
  }
  const status = responseStatus(err);
  if (status !== undefined) {
    const kind: FailureKind = status === 429 || status >= 500 ? 'transient' : 'refused';
    return { kind, error: undefined, microsoftCodes: [], status, message: `the token endpoint answered HTTP ${status} without an OAuth error body${kind === 'transient' ? ': retrying with backoff' : ''}` };
  }
  // fetch() failures: refused connection, DNS, TLS, timeout. They pass; the current access token stays in use.
  return { kind: 'transient', error: undefined, microsoftCodes: [], status: undefined, message: `cannot reach the token endpoint (${networkReason(err)}): retrying with backoff` };
}

/** oauth4webapi's codes (openid-client passes them on as ClientError.code) for a response that arrived but does not check out. */
const CLAIM_MISMATCH = 'OAUTH_JWT_CLAIM_COMPARISON_FAILED';
const INVALID_RESPONSE = 'OAUTH_INVALID_RESPONSE';

/** What oauth4webapi puts on the error it raises for an ID token: the claim compared, what it expected, the token's claims. */
interface ClaimFacts {
  claim?: unknown;
  expected?: unknown;
  claims?: Record<string, unknown>;
}

/**
 * An ID token that fails validation (another issuer, audience or nonce; a claim missing) is not a network failure: asking
 * again brings the same token. It is refused, naming the claim, what was expected and what came (issuers, client IDs and
 * tenant IDs are not secrets; the token itself is never quoted), and what to change.
 */
function invalidIdToken(err: unknown): GrantFailure | undefined {
  if (!(err instanceof oidc.ClientError) || (err.code !== CLAIM_MISMATCH && err.code !== INVALID_RESPONSE)) return undefined;
  const facts = ((err.cause as { cause?: unknown } | undefined)?.cause ?? {}) as ClaimFacts & { parameters?: unknown };
  const base = { error: undefined, microsoftCodes: [], status: undefined };
  // RFC 9207: the authorization response named its issuer, and it is not the one discovery gave (the code is not quoted).
  if (err.code === INVALID_RESPONSE && facts.parameters instanceof URLSearchParams && facts.parameters.has('iss') && typeof facts.expected === 'string') {
    const iss = facts.parameters.get('iss');
    return { ...base, kind: 'refused', claim: 'iss', message: issuerMismatch(quote(iss), facts.expected, { iss }, "the sign-in response's issuer (iss parameter)") };
  }
  if (facts.claims === undefined || typeof facts.claims !== 'object') return undefined;
  if (err.code === INVALID_RESPONSE) {
    const reason = err.cause instanceof Error ? err.cause.message : 'a required claim is missing or malformed';
    return { ...base, kind: 'refused', claim: 'id_token', message: `the provider's ID token is not valid (${truncate(reason)}): the server does not behave as an OpenID provider should; check the credential's authority and issuer` };
  }
  const claim = typeof facts.claim === 'string' ? facts.claim : 'unknown';
  const got = facts.claims[claim];
  if (claim === 'iss') return { ...base, kind: 'refused', claim, message: issuerMismatch(quote(got), facts.expected, facts.claims) };
  if (claim === 'aud') {
    return { ...base, kind: 'refused', claim, message: `the ID token is for another application: its audience (aud) is ${quote(got)}, expected this credential's client ID ${quote(facts.expected)}; check the client ID (--client-id), the Application (client) ID on the app registration's Overview page` };
  }
  if (claim === 'nonce') {
    return { ...base, kind: 'reauthorize', claim, message: 'the ID token does not belong to this sign-in (its nonce differs): sign in again' };
  }
  return { ...base, kind: 'refused', claim, message: `the ID token's ${claim} claim is not what Mailgate expected${facts.expected !== undefined && claim === 'azp' ? ` (${quote(facts.expected)})` : ''}: check the credential's client ID and issuer` };
}

/**
 * Entra ID names the tenant in the issuer: `{authority}/{tenant GUID}/v2.0`, the GUID also being the token's `tid`.
 * Another host means another cloud (or a proxy re-issuing tokens); the same host, another tenant.
 */
function issuerMismatch(got: string, expected: unknown, claims: Record<string, unknown>, subject = "the ID token's issuer (iss)"): string {
  const tid = typeof claims.tid === 'string' ? claims.tid : undefined;
  const wanted = typeof expected === 'string' ? expected : '';
  // openid-client fills Entra's {tenantid} template with the token's tid; without one the template gets "undefined".
  if (tid === undefined && wanted.includes('/undefined/')) {
    return `the ID token has no tenant ID (tid) claim, so its issuer (iss) ${got} cannot be checked against the tenant's issuer template ${quote(wanted.replace('/undefined/', '/{tenantid}/'))}: the authority does not answer as Entra ID does; check --authority, or set --issuer to the issuer its tokens name`;
  }
  const head = `${subject} is ${got}, expected ${quote(expected)}${tid !== undefined ? ` (its tenant ID, tid, is ${quote(tid)})` : ''}`;
  const origin = (value: unknown) => (typeof value === 'string' && URL.canParse(value) ? new URL(value).origin : undefined);
  if (origin(claims.iss) !== origin(expected)) {
    return `${head}: the token comes from another cloud or server than the credential's authority; for a national cloud set --cloud usgov or --cloud china (or its --authority), and behind a proxy that issues its own tokens set --issuer to ${got}`;
  }
  return `${head}: the token names another tenant than the credential; set --tenant to the Directory (tenant) ID the mailbox belongs to (the app registration's Overview page), or "organizations" for an app used by several tenants`;
}

/** A claim value for a message: JSON-quoted (no control characters), cut short. */
function quote(value: unknown): string {
  const text = JSON.stringify(typeof value === 'string' ? (value.length > 200 ? `${value.slice(0, 197)}...` : value) : (value ?? null)) ?? 'null';
  return text.length > 220 ? `${text.slice(0, 217)}...` : text;
}

function responseStatus(err: unknown): number | undefined {
  const cause = (err as { cause?: unknown })?.cause;
  if (cause instanceof Response) return cause.status;
  return undefined;
}

function networkReason(err: unknown): string {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
    if ((current as { name?: string }).name === 'TimeoutError' || (current as { name?: string }).name === 'AbortError') return 'timeout';
    current = (current as { cause?: unknown }).cause;
  }
  return err instanceof Error ? err.message : 'network error';
}

function truncate(text: string): string {
  const line = text.split(/\r?\n/)[0] ?? '';
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}

/** What the errors on the OAuth callback mean, for the page the admin lands on. */
export const CALLBACK_ERRORS: Record<string, string> = {
  access_denied: 'The sign-in was cancelled or permission was declined. If your organization requires it, an administrator must grant consent to the app first.',
  consent_required: 'The app needs consent for the requested permissions. Sign in again and accept, or ask an administrator to grant tenant-wide consent.',
  interaction_required: 'The provider needs an interactive step (multi-factor authentication or a policy). Sign in again.',
  login_required: 'The provider needs you to sign in. Try again.',
  invalid_scope: 'The provider refused a requested permission: check the API permissions of the app registration (for Microsoft: Office 365 Exchange Online / Microsoft Graph delegated permissions).',
  unauthorized_client: 'The app is not allowed to use this flow: check the app registration (platform "Web" with this redirect URI, and a client secret).',
  invalid_request: 'The provider rejected the request. The most common cause is a redirect URI that is not registered exactly as shown in Mailgate.',
  server_error: 'The provider had an internal error. Try again in a few minutes.',
  temporarily_unavailable: 'The provider is temporarily unavailable. Try again in a few minutes.',
};
