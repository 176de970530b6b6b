// The authorization code flow with PKCE: starts a sign-in (single-use state), and completes it on the callback, refusing the wrong account.
import crypto from 'node:crypto';
import * as oidc from 'openid-client';
import { ErrorCode, MailgateError } from '../errors.js';
import type { CredentialRepository } from '../credentials/repository.js';
import { settingsOf } from '../credentials/repository.js';
import type { CredentialSettings } from '../credentials/model.js';
import { google, microsoft } from '../credentials/presets.js';
import type { Logger } from '../log.js';
import type { Keyring } from '../secrets/keyring.js';
import type { Store } from '../store/store.js';
import { clientConfiguration } from './clientConfig.js';
import { CALLBACK_ERRORS, classifyGrantError } from './grantErrors.js';
import { acceptUserGrant, type GrantOutcome } from './userGrant.js';

/** How long a sign-in link stays valid. */
export const STATE_TTL_MS = 10 * 60_000;

export interface AuthorizationStart {
  authorizationUrl: string;
  expiresAt: string;
}

export type CallbackOutcome = GrantOutcome;

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
    const config = await clientConfiguration(settings, this.repo.clientAuthOf(row));
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
    const config = await clientConfiguration(settings, this.repo.clientAuthOf(row));
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
      const failure = await classifyGrantError(err);
      const detail = err instanceof oidc.ResponseBodyError || failure.claim !== undefined ? failure.message : err instanceof Error ? err.message : String(err);
      await this.repo.recordError(row.name, `sign-in failed: ${detail}`);
      this.logger.warn({ credential: row.name, kind: failure.kind, error: failure.error }, 'authorization code exchange failed');
      return { ok: false, code: ErrorCode.OAUTH_PROVIDER_ERROR, credential: row.name, title: 'The provider refused to issue tokens', message: detail };
    }

    return acceptUserGrant(this.repo, this.logger, row, config, response);
  }

  /** Deletes and returns the pending state in one statement, so a state works once even with two callbacks racing. */
  async #consumeState(state: string) {
    const row = await this.store.db.deleteFrom('oauth_states').where('state_hash', '=', hashState(state)).returningAll().executeTakeFirst();
    if (!row || Date.parse(row.expires_at) < Date.now()) return undefined;
    return row;
  }
}

function presetAuthParams(settings: CredentialSettings): Record<string, string> {
  if (settings.provider === 'microsoft') return microsoft.authParams;
  if (settings.provider === 'google') return google.authParams;
  return {};
}

