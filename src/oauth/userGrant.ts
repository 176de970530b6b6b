// Accepts or refuses the tokens of a user sign-in (code or device flow): checks who signed in, revokes a wrong account's grant, stores the rest.
import * as oidc from 'openid-client';
import { ErrorCode } from '../errors.js';
import type { CredentialSettings, CredentialWarning, SignedInIdentity } from '../credentials/model.js';
import { settingsOf, type CredentialRepository, type CredentialRow } from '../credentials/repository.js';
import type { Logger } from '../log.js';
import { tokenSetFrom } from '../tokens/tokenManager.js';

export type GrantOutcome =
  | { ok: true; credential: string; signedInAs: string | undefined; warnings: CredentialWarning[] }
  | { ok: false; code: string; credential: string | undefined; title: string; message: string; expected?: string; signedInAs?: string };

type TokenResponse = oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;

/**
 * The classic failure of the products we replace: the browser's cookies sign in another account and its tokens
 * are stored. Here the account named by the provider's own server-to-server response must be the credential's email.
 */
export async function acceptUserGrant(repo: CredentialRepository, logger: Logger, row: CredentialRow, config: oidc.Configuration, response: TokenResponse): Promise<GrantOutcome> {
  const settings = settingsOf(row);
  const identity = await identityOf(config, response, logger);
  const signedInAs = identity.email?.toLowerCase();
  if (signedInAs !== undefined && signedInAs !== settings.email.toLowerCase()) {
    await revokeGrant(config, response, logger);
    const message = `${signedInAs} signed in, but this credential is for ${settings.email}. The browser probably reused a session of another account. Try again in a private (incognito) window and sign in as ${settings.email}.`;
    await repo.recordError(row.name, `wrong account: ${signedInAs} signed in, expected ${settings.email}`);
    logger.warn({ credential: row.name, expected: settings.email, signedInAs }, 'wrong account signed in: tokens refused and revoked');
    return { ok: false, code: ErrorCode.OAUTH_WRONG_ACCOUNT, credential: row.name, title: 'Wrong account', message, expected: settings.email, signedInAs };
  }
  const tokens = tokenSetFrom(response);
  const warnings = grantWarnings(settings, response, tokens.refreshToken !== undefined, signedInAs !== undefined);
  await repo.saveTokens(row.name, tokens, { identity, warnings: [...keptWarnings(row), ...warnings], reason: `connected as ${signedInAs ?? 'an unverified account'}` });
  logger.info({ credential: row.name, signedInAs, refreshToken: tokens.refreshToken !== undefined }, 'credential connected');
  return { ok: true, credential: row.name, signedInAs, warnings };
}

/** Who signed in, from the server-to-server token response (ID token), else from userinfo; never from the browser. */
async function identityOf(config: oidc.Configuration, response: TokenResponse, logger: Logger): Promise<SignedInIdentity> {
  const claims = response.claims();
  let email = stringClaim(claims, 'email') ?? stringClaim(claims, 'preferred_username') ?? stringClaim(claims, 'upn');
  let name = stringClaim(claims, 'name');
  const subject = claims?.sub;
  if (email === undefined && config.serverMetadata().userinfo_endpoint) {
    try {
      const info = await oidc.fetchUserInfo(config, response.access_token, subject ?? oidc.skipSubjectCheck);
      email = typeof info.email === 'string' ? info.email : undefined;
      name ??= typeof info.name === 'string' ? info.name : undefined;
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'userinfo lookup failed');
    }
  }
  return { email, subject, name };
}

/**
 * Revokes a refused grant where the provider offers revocation (Google does; Microsoft has no endpoint for it).
 * Revoking the refresh token ends the whole grant at Google, so the access token is only tried when there is none.
 */
async function revokeGrant(config: oidc.Configuration, response: oidc.TokenEndpointResponse, logger: Logger): Promise<void> {
  if (!config.serverMetadata().revocation_endpoint) return;
  for (const [token, hint] of [[response.refresh_token, 'refresh_token'], [response.access_token, 'access_token']] as const) {
    if (!token) continue;
    try {
      await oidc.tokenRevocation(config, token, { token_type_hint: hint });
      return;
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'revoking the refused grant failed');
    }
  }
}

function stringClaim(claims: oidc.IDToken | undefined, name: string): string | undefined {
  const value = claims?.[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

const GRANT_WARNING_CODES = new Set(['NO_REFRESH_TOKEN', 'GOOGLE_TESTING_APP', 'IDENTITY_UNVERIFIED']);

/** Warnings from configuration time stay; those from an earlier grant are replaced by this grant's. */
function keptWarnings(row: CredentialRow): CredentialWarning[] {
  return (JSON.parse(row.warnings) as CredentialWarning[]).filter((w) => !GRANT_WARNING_CODES.has(w.code));
}

function grantWarnings(settings: CredentialSettings, response: oidc.TokenEndpointResponse, hasRefreshToken: boolean, identityVerified: boolean): CredentialWarning[] {
  const warnings: CredentialWarning[] = [];
  if (!hasRefreshToken) {
    const cause =
      settings.provider === 'google'
        ? "Google issues a refresh token only with access_type=offline and prompt=consent; the account may have consented before without them. Remove Mailgate's access at https://myaccount.google.com/permissions and connect again."
        : settings.provider === 'microsoft'
          ? 'the offline_access permission was not granted (check the API permissions of the app registration and that consent was given).'
          : "ask for offline_access (or the provider's equivalent) and, if the provider needs it, prompt=consent (--auth-param prompt=consent).";
    warnings.push({ code: 'NO_REFRESH_TOKEN', message: `the provider returned no refresh token, so this access token cannot be renewed when it expires: ${cause}` });
  }
  if (settings.provider === 'google' && typeof (response as Record<string, unknown>)['refresh_token_expires_in'] === 'number') {
    warnings.push({ code: 'GOOGLE_TESTING_APP', message: 'Google limited this refresh token\'s lifetime, as it does for apps whose OAuth consent screen is in "Testing": it dies after 7 days. Publish the app ("In production") in the Google Cloud console.' });
  }
  if (!identityVerified) {
    warnings.push({ code: 'IDENTITY_UNVERIFIED', message: "the provider did not say which account signed in (no ID token email, no userinfo), so Mailgate could not check it against the credential's email" });
  }
  return warnings;
}
