// Classifies token-endpoint failures into what Mailgate must do: sign in again, replace the client secret, retry later, or stop.
import * as oidc from 'openid-client';
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
