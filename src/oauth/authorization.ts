// The authorization code flow with PKCE: starts a sign-in (single-use state), and completes it on the callback, refusing the wrong account.
import crypto from 'node:crypto';
import * as oidc from 'openid-client';
import { ErrorCode, MailgateError } from '../errors.js';
import type { CredentialRepository, CredentialRow } from '../credentials/repository.js';
import { settingsOf } from '../credentials/repository.js';
import type { CredentialSettings, CredentialWarning, SignedInIdentity } from '../credentials/model.js';
import { google, microsoft } from '../credentials/presets.js';
import type { Logger } from '../log.js';
import type { Keyring } from '../secrets/keyring.js';
import type { Store } from '../store/store.js';
import { tokenSetFrom } from '../tokens/tokenManager.js';
import { clientConfiguration } from './clientConfig.js';
import { CALLBACK_ERRORS, classifyGrantError } from './grantErrors.js';

/** How long a sign-in link stays valid. */
export const STATE_TTL_MS = 10 * 60_000;

export interface AuthorizationStart {
  authorizationUrl: string;
  expiresAt: string;
}

export type CallbackOutcome =
  | { ok: true; credential: string; signedInAs: string | undefined; warnings: CredentialWarning[] }
  | { ok: false; code: string; credential: string | undefined; title: string; message: string; expected?: string; signedInAs?: string };

const hashState = (state: string) => crypto.createHash('sha256').update(state).digest('hex');
const verifierContext = (stateHash: string) => `oauth-state:${stateHash}:codeVerifier`;

export class AuthorizationFlow {
  constructor(
    private readonly store: Store,
    private readonly keyring: Keyring,
    private readonly repo: CredentialRepository,
    private readonly redirectUri: string,
    private readonly logger: Logger,
  ) {}

  /** Builds the provider's sign-in URL for `name` and remembers its state, PKCE verifier and nonce (single use, 10 minutes). */
  async start(name: string, options: { browserBinding?: string } = {}): Promise<AuthorizationStart> {
    const row = await this.repo.get(name);
    const settings = settingsOf(row);
    if (settings.grant !== 'authorization_code') {
      throw new MailgateError(ErrorCode.INPUT_INVALID, `credential ${name} uses the ${settings.grant} grant: there is no browser sign-in to start${settings.grant === 'device_code' ? ' (run `mailgate credential authorize` for the device code)' : ''}`);
    }
    const config = await clientConfiguration(settings, this.repo.clientSecretOf(row));
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const stateHash = hashState(state);
    const now = Date.now();
    const expiresAt = new Date(now + STATE_TTL_MS).toISOString();

    await this.store.db.deleteFrom('oauth_states').where('expires_at', '<', new Date(now).toISOString()).execute();
    await this.store.db
      .insertInto('oauth_states')
      .values({
        state_hash: stateHash,
        credential_name: name,
        code_verifier: this.keyring.seal(verifier, verifierContext(stateHash)),
        nonce,
        redirect_uri: this.redirectUri,
        browser_binding: options.browserBinding ? hashState(options.browserBinding) : null,
        created_at: new Date(now).toISOString(),
        expires_at: expiresAt,
      })
      .execute();

    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.redirectUri,
      scope: settings.scopes.join(' '),
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      login_hint: settings.email,
      ...presetAuthParams(settings),
      ...settings.authParams,
    });
    return { authorizationUrl: url.href, expiresAt };
  }

  /** Handles the redirect back from the provider. Never throws for provider or user errors: they become an outcome page. */
  async complete(query: URLSearchParams, options: { browserBinding?: string } = {}): Promise<CallbackOutcome> {
    const state = query.get('state');
    const pending = state ? await this.#consumeState(state) : undefined;
    const providerError = query.get('error');
    if (providerError) {
      const description = (query.get('error_description') ?? '').split(/\r?\n/)[0]!.slice(0, 300);
      const meaning = CALLBACK_ERRORS[providerError] ?? 'The provider reported an error.';
      const message = `${meaning}${description ? ` (provider says: ${description})` : ''}`;
      if (pending) await this.repo.recordError(pending.credential_name, `sign-in failed: ${providerError}: ${meaning}`);
      return { ok: false, code: ErrorCode.OAUTH_PROVIDER_ERROR, credential: pending?.credential_name, title: `Sign-in failed: ${providerError}`, message };
    }
    if (!pending) {
      return { ok: false, code: ErrorCode.OAUTH_STATE_INVALID, credential: undefined, title: 'This sign-in link is not valid any more', message: 'It was already used, it expired (links last 10 minutes), or it was altered. Start again with Connect.' };
    }
    if (pending.browser_binding && (!options.browserBinding || hashState(options.browserBinding) !== pending.browser_binding)) {
      return { ok: false, code: ErrorCode.OAUTH_STATE_INVALID, credential: pending.credential_name, title: 'This sign-in was started in another browser', message: 'For your safety the sign-in must finish in the browser session that started it. Start again with Connect.' };
    }

    const row = await this.repo.find(pending.credential_name);
    if (!row) return { ok: false, code: ErrorCode.NOT_FOUND, credential: pending.credential_name, title: 'The credential was removed', message: 'The credential this sign-in was for no longer exists.' };
    const settings = settingsOf(row);
    const config = await clientConfiguration(settings, this.repo.clientSecretOf(row));
    const callbackUrl = new URL(pending.redirect_uri);
    callbackUrl.search = query.toString();

    let response: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;
    try {
      response = await oidc.authorizationCodeGrant(
        config,
        callbackUrl,
        {
          pkceCodeVerifier: this.keyring.open(pending.code_verifier, verifierContext(pending.state_hash)),
          expectedState: state!,
          expectedNonce: pending.nonce,
          idTokenExpected: settings.scopes.includes('openid'),
        },
        { redirect_uri: pending.redirect_uri },
      );
    } catch (err) {
      const failure = classifyGrantError(err);
      const detail = err instanceof oidc.ResponseBodyError ? failure.message : err instanceof Error ? err.message : String(err);
      await this.repo.recordError(row.name, `sign-in failed: ${detail}`);
      this.logger.warn({ credential: row.name, kind: failure.kind, error: failure.error }, 'authorization code exchange failed');
      return { ok: false, code: ErrorCode.OAUTH_PROVIDER_ERROR, credential: row.name, title: 'The provider refused to issue tokens', message: detail };
    }

    const identity = await this.#identityOf(config, response);
    const signedInAs = identity.email?.toLowerCase();
    if (signedInAs !== undefined && signedInAs !== settings.email.toLowerCase()) {
      await this.#revoke(config, response);
      const message = `${signedInAs} signed in, but this credential is for ${settings.email}. The browser probably reused a session of another account. Try again in a private (incognito) window and sign in as ${settings.email}.`;
      await this.repo.recordError(row.name, `wrong account: ${signedInAs} signed in, expected ${settings.email}`);
      this.logger.warn({ credential: row.name, expected: settings.email, signedInAs }, 'wrong account signed in: tokens refused and revoked');
      return { ok: false, code: ErrorCode.OAUTH_WRONG_ACCOUNT, credential: row.name, title: 'Wrong account', message, expected: settings.email, signedInAs };
    }

    const tokens = tokenSetFrom(response);
    const warnings = grantWarnings(settings, response, tokens.refreshToken !== undefined, signedInAs !== undefined);
    await this.repo.saveTokens(row.name, tokens, { identity, warnings: [...keptWarnings(row), ...warnings], reason: `connected as ${signedInAs ?? 'an unverified account'}` });
    this.logger.info({ credential: row.name, signedInAs, refreshToken: tokens.refreshToken !== undefined }, 'credential connected');
    return { ok: true, credential: row.name, signedInAs, warnings };
  }

  /** Deletes and returns the pending state in one statement, so a state works once even with two callbacks racing. */
  async #consumeState(state: string) {
    const row = await this.store.db.deleteFrom('oauth_states').where('state_hash', '=', hashState(state)).returningAll().executeTakeFirst();
    if (!row || Date.parse(row.expires_at) < Date.now()) return undefined;
    return row;
  }

  /** Who signed in, from the server-to-server token response (ID token), else from userinfo; never from the browser. */
  async #identityOf(config: oidc.Configuration, response: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers): Promise<SignedInIdentity> {
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
        this.logger.warn({ err: (err as Error).message }, 'userinfo lookup failed');
      }
    }
    return { email, subject, name };
  }

  async #revoke(config: oidc.Configuration, response: oidc.TokenEndpointResponse): Promise<void> {
    if (!config.serverMetadata().revocation_endpoint) return;
    for (const [token, hint] of [[response.refresh_token, 'refresh_token'], [response.access_token, 'access_token']] as const) {
      if (!token) continue;
      try {
        await oidc.tokenRevocation(config, token, { token_type_hint: hint });
      } catch (err) {
        this.logger.warn({ err: (err as Error).message }, 'revoking the refused grant failed');
      }
    }
  }
}

function presetAuthParams(settings: CredentialSettings): Record<string, string> {
  if (settings.provider === 'microsoft') return microsoft.authParams;
  if (settings.provider === 'google') return google.authParams;
  return {};
}

function stringClaim(claims: oidc.IDToken | undefined, name: string): string | undefined {
  const value = claims?.[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Warnings from configuration time stay; those from an earlier grant are replaced by this grant's. */
function keptWarnings(row: CredentialRow): CredentialWarning[] {
  return (JSON.parse(row.warnings) as CredentialWarning[]).filter((w) => !GRANT_WARNING_CODES.has(w.code));
}

const GRANT_WARNING_CODES = new Set(['NO_REFRESH_TOKEN', 'GOOGLE_TESTING_APP', 'IDENTITY_UNVERIFIED']);

function grantWarnings(settings: CredentialSettings, response: oidc.TokenEndpointResponse, hasRefreshToken: boolean, identityVerified: boolean): CredentialWarning[] {
  const warnings: CredentialWarning[] = [];
  if (!hasRefreshToken) {
    const cause =
      settings.provider === 'google'
        ? 'Google issues a refresh token only with access_type=offline and prompt=consent; the account may have consented before without them. Remove Mailgate\'s access at https://myaccount.google.com/permissions and connect again.'
        : settings.provider === 'microsoft'
          ? 'the offline_access permission was not granted (check the API permissions of the app registration and that consent was given).'
          : 'ask for offline_access (or the provider\'s equivalent) and, if the provider needs it, prompt=consent (--auth-param prompt=consent).';
    warnings.push({ code: 'NO_REFRESH_TOKEN', message: `the provider returned no refresh token, so this access token cannot be renewed when it expires: ${cause}` });
  }
  if (settings.provider === 'google' && typeof (response as Record<string, unknown>)['refresh_token_expires_in'] === 'number') {
    warnings.push({ code: 'GOOGLE_TESTING_APP', message: 'Google limited this refresh token\'s lifetime, as it does for apps whose OAuth consent screen is in "Testing": it dies after 7 days. Publish the app ("In production") in the Google Cloud console.' });
  }
  if (!identityVerified) {
    warnings.push({ code: 'IDENTITY_UNVERIFIED', message: 'the provider did not say which account signed in (no ID token email, no userinfo), so Mailgate could not check it against the credential\'s email' });
  }
  return warnings;
}
