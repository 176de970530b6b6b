// Hands out valid access tokens: refreshes ahead of expiry, one refresh per credential at a time, never losing a rotated refresh token.
import crypto from 'node:crypto';
import * as oidc from 'openid-client';
import { ErrorCode, MailgateError } from '../errors.js';
import type { CredentialRepository, CredentialRow, TokenSet } from '../credentials/repository.js';
import { settingsOf } from '../credentials/repository.js';
import type { CredentialStatus } from '../credentials/model.js';
import type { Logger } from '../log.js';
import { clientConfiguration } from '../oauth/clientConfig.js';
import { parseServiceAccountKey, requestServiceAccountToken } from '../oauth/assertions.js';
import type { CredentialSettings } from '../credentials/model.js';
import { classifyGrantError, type FailureKind, type GrantFailure } from '../oauth/grantErrors.js';
import { Secret } from '../secrets/secret.js';
import type { RefreshOutcome } from '../observability/metrics.js';
import { backoffDelay, delayHonouringRetryAfter, REFRESH_BACKOFF } from './backoff.js';

export interface AccessToken {
  accessToken: Secret;
  tokenType: string;
  expiresAt: string | undefined;
}

export interface TokenManagerOptions {
  /** A token expiring within this margin is refreshed before it is handed out (default 5 minutes). */
  refreshMarginMs?: number;
  /** How long one instance may hold a credential's refresh lease (default 60 s). */
  leaseMs?: number;
  /** Link shown with "sign in again" errors: the web UI's page for credentials. */
  reauthorizeLink?: (name: string) => string;
  /** Told the outcome of every token request (metrics). */
  onOutcome?: (outcome: RefreshOutcome) => void;
  /** Told when a token request changed a credential's status (alerts are evaluated at once, not at the next tick). */
  onStatusChange?: (name: string, from: CredentialStatus, to: CredentialStatus) => void;
}

const STATUS_BY_KIND: Record<FailureKind, CredentialStatus> = {
  reauthorize: 'needs_reauthorization',
  client_secret: 'client_secret_invalid',
  transient: 'refresh_failing',
  // invalid_scope, unsupported_grant_type, invalid_request: the app registration or the credential's settings are wrong.
  refused: 'configuration_error',
};

const CODE_BY_KIND: Record<FailureKind, MailgateError['code']> = {
  reauthorize: ErrorCode.CREDENTIAL_NEEDS_REAUTHORIZATION,
  client_secret: ErrorCode.CREDENTIAL_CLIENT_SECRET_INVALID,
  transient: ErrorCode.TOKEN_REFRESH_FAILED,
  refused: ErrorCode.TOKEN_REQUEST_REFUSED,
};

export class TokenManager {
  readonly #inflight = new Map<string, Promise<AccessToken>>();
  readonly #configurations = new Map<string, { key: string; config: oidc.Configuration }>();
  /**
   * Fresh tokens served from memory for at most a second: the token route is the hot path of mail clients and
   * scripts, and a second-old view of a token that stays valid for minutes is still a valid token.
   */
  readonly #recent = new Map<string, { token: AccessToken; until: number }>();
  /** When each credential's last_used_at was last written: a hot token route must not write on every request. */
  readonly #lastTouched = new Map<string, number>();
  /** Until when a token endpoint asked (Retry-After) not to be called again for a credential: callers wait too, not only the scheduler. */
  readonly #notBefore = new Map<string, number>();
  readonly #owner = `instance-${crypto.randomUUID()}`;
  readonly #marginMs: number;
  readonly #leaseMs: number;
  readonly #link: (name: string) => string;
  readonly #onOutcome: (outcome: RefreshOutcome) => void;
  readonly #onStatusChange: (name: string, from: CredentialStatus, to: CredentialStatus) => void;
  /** Counts token-endpoint calls; tests and metrics read it. */
  refreshCount = 0;

  constructor(
    private readonly repo: CredentialRepository,
    private readonly logger: Logger,
    options: TokenManagerOptions = {},
  ) {
    this.#marginMs = options.refreshMarginMs ?? 5 * 60_000;
    this.#leaseMs = options.leaseMs ?? 60_000;
    this.#link = options.reauthorizeLink ?? ((name) => `mailgate credential authorize ${name}`);
    this.#onOutcome = options.onOutcome ?? (() => undefined);
    this.#onStatusChange = options.onStatusChange ?? (() => undefined);
  }

  /** A valid access token for `name`, refreshed first when it expires within the margin (or when `forceRefresh`). */
  async getAccessToken(name: string, options: { forceRefresh?: boolean } = {}): Promise<AccessToken> {
    const recent = this.#recent.get(name);
    if (recent && !options.forceRefresh && recent.until > Date.now()) return recent.token;
    this.#recent.delete(name);
    const row = await this.repo.get(name);
    this.#assertUsable(row);
    const current = this.#currentToken(row);
    if (current && !options.forceRefresh && this.#isFresh(row)) {
      await this.#touch(name);
      this.#remember(name, current, row);
      return current;
    }
    try {
      const token = await this.refresh(name, { force: options.forceRefresh ?? false, seenExpiresAt: row.expires_at });
      await this.#touch(name);
      return token;
    } catch (err) {
      // A refresh that failed for a passing reason does not take away a token that still works.
      if (current && row.expires_at && Date.parse(row.expires_at) > Date.now() && (err as MailgateError).code === ErrorCode.TOKEN_REFRESH_FAILED) {
        this.logger.warn({ credential: name, expiresAt: row.expires_at }, 'refresh failed; serving the current access token until it expires');
        return current;
      }
      throw err;
    }
  }

  /**
   * Refreshes now. Concurrent callers in this process share one request; across processes the database
   * lease makes the others wait and then read the stored result. A failure reaches every waiter.
   */
  refresh(name: string, options: { force?: boolean; seenExpiresAt?: string | null } = {}): Promise<AccessToken> {
    this.#recent.delete(name);
    let pending = this.#inflight.get(name);
    if (!pending) {
      pending = this.#refreshUnderLease(name, options.force ?? true, options.seenExpiresAt).finally(() => this.#inflight.delete(name));
      this.#inflight.set(name, pending);
    }
    return pending;
  }

  async #refreshUnderLease(name: string, force: boolean, seenExpiresAt?: string | null): Promise<AccessToken> {
    const startedAt = Date.now();
    // Another instance replaced the token since the caller looked: take it, even when the provider's tokens live
    // shorter than the refresh margin (else each waiting instance would refresh once more in turn).
    const usable = (r: CredentialRow) => this.#currentToken(r) !== undefined && (this.#isFresh(r) || (seenExpiresAt !== undefined && r.expires_at !== seenExpiresAt && r.expires_at !== null && Date.parse(r.expires_at) > Date.now()));
    let row: CredentialRow | undefined;
    while (!(row = await this.repo.acquireLease(name, this.#owner, this.#leaseMs))) {
      if (Date.now() - startedAt > this.#leaseMs * 2) throw new MailgateError(ErrorCode.TOKEN_REFRESH_FAILED, `credential ${name}: another instance holds the refresh lease for too long`);
      await sleep(100);
      const current = await this.repo.get(name);
      if (!current.refresh_lease_until && usable(current)) return this.#currentToken(current)!;
    }
    let released = false;
    try {
      // An explicit refresh (Refresh, `mailgate credential refresh`) is how an admin retries after fixing a configuration error.
      this.#assertUsable(row, { retryConfiguration: force });
      // Another instance may have refreshed while we waited for the lease.
      if (!force && usable(row)) return this.#currentToken(row)!;
      const token = await this.#requestTokens(row);
      released = true; // saveTokens freed the lease in the same write
      return token;
    } finally {
      if (!released) await this.repo.releaseLease(name, this.#owner);
    }
  }

  async #requestTokens(row: CredentialRow): Promise<AccessToken> {
    const settings = settingsOf(row);
    const refreshToken = this.repo.refreshTokenOf(row);
    if (settings.grant !== 'client_credentials' && !refreshToken) {
      throw new MailgateError(ErrorCode.CREDENTIAL_NEEDS_REAUTHORIZATION, `credential ${row.name} has no refresh token (the provider did not issue one): sign in again — ${this.#link(row.name)}`);
    }
    const notBefore = this.#notBefore.get(row.name);
    if (notBefore !== undefined && notBefore > Date.now()) {
      throw new MailgateError(ErrorCode.TOKEN_REFRESH_FAILED, `credential ${row.name}: the token endpoint asked Mailgate to wait (Retry-After) until ${new Date(notBefore).toISOString()}; not asking again before then`, {
        details: { credential: row.name, retryAt: new Date(notBefore).toISOString() },
      });
    }
    this.#notBefore.delete(row.name);
    let response: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;
    try {
      this.refreshCount += 1;
      if (settings.clientAuth === 'service_account') {
        // Google service accounts: a fresh signed assertion each time, no refresh token (RFC 7523).
        const key = parseServiceAccountKey(this.repo.clientSecretOf(row)!.reveal());
        response = await requestServiceAccountToken(settings.tokenUrl, key, { subject: settings.email, scopes: settings.scopes });
      } else {
        const config = await this.#configurationFor(row);
        response =
          settings.grant === 'client_credentials'
            ? await oidc.clientCredentialsGrant(config, { scope: settings.scopes.join(' ') })
            : await oidc.refreshTokenGrant(config, refreshToken!.reveal());
      }
    } catch (err) {
      throw await this.#recordFailure(row, serviceAccountView(settings, await classifyGrantError(err)), err);
    }
    const tokens = tokenSetFrom(response);
    this.#onOutcome('success');
    await this.repo.saveTokens(row.name, tokens, {
      reason: settings.grant === 'client_credentials' ? 'access token issued (client credentials)' : 'refreshed',
      previousStatus: row.status,
      releaseLeaseOf: this.#owner,
    });
    this.logger.info({ credential: row.name, expiresAt: tokens.expiresAt, rotated: tokens.refreshToken !== undefined }, 'access token refreshed');
    if (row.status !== 'active') this.#onStatusChange(row.name, row.status as CredentialStatus, 'active');
    return { accessToken: tokens.accessToken, tokenType: tokens.tokenType, expiresAt: tokens.expiresAt };
  }

  /**
   * openid-client configurations are reused while the credential's settings are unchanged (`updated_at` of the
   * settings is not touched by token writes, so the key is the settings themselves plus the sealed secret).
   */
  async #configurationFor(row: CredentialRow): Promise<oidc.Configuration> {
    const key = `${row.provider}|${row.tenant}|${row.client_id}|${row.token_url}|${row.authorization_url}|${row.issuer}|${row.authority}|${row.device_authorization_url}|${row.revocation_url}|${row.userinfo_url}|${row.client_secret}`;
    const cached = this.#configurations.get(row.name);
    if (cached?.key === key) return cached.config;
    const config = await clientConfiguration(settingsOf(row), this.repo.clientAuthOf(row));
    this.#configurations.set(row.name, { key, config });
    return config;
  }

  async #recordFailure(row: CredentialRow, failure: GrantFailure, cause: unknown): Promise<MailgateError> {
    const status = STATUS_BY_KIND[failure.kind];
    this.#onOutcome(failure.kind === 'transient' ? 'transient_failure' : failure.kind === 'refused' ? 'refused' : status === 'client_secret_invalid' ? 'client_secret_invalid' : 'needs_reauthorization');
    const failures = row.failure_count + 1;
    // A 429/503 with Retry-After: not sooner than asked (a 429 answered 30 s was retried after 4.6 s), within the ceiling.
    const delay = delayHonouringRetryAfter(backoffDelay(failures, REFRESH_BACKOFF), failure.retryAfterMs, REFRESH_BACKOFF.maxMs);
    const next = failure.kind === 'transient' ? new Date(Date.now() + delay).toISOString() : null;
    if (failure.kind === 'transient' && failure.retryAfterMs !== undefined) this.#notBefore.set(row.name, Date.now() + Math.min(failure.retryAfterMs, REFRESH_BACKOFF.maxMs));
    await this.repo.setStatus(row.name, { status, reason: failure.message, lastError: failure.message, failureCount: failures, nextAttemptAt: next });
    // refresh_failing alerts only after several failures: every failure is a possible change of what should alert.
    this.#onStatusChange(row.name, row.status as CredentialStatus, status);
    this.logger.warn({ credential: row.name, kind: failure.kind, error: failure.error, microsoftCodes: failure.microsoftCodes, status: failure.status, retryAfterMs: failure.retryAfterMs, nextAttemptAt: next }, 'token request failed');
    const fix = failure.kind === 'transient' ? '' : failure.kind === 'refused' ? ` — ${configurationFix(row.name)}` : ` — ${this.#link(row.name)}`;
    return new MailgateError(CODE_BY_KIND[failure.kind], `credential ${row.name}: ${failure.message}${fix}`, {
      cause,
      details: { credential: row.name, error: failure.error, microsoftCodes: failure.microsoftCodes, status },
    });
  }

  /** Drops what this process remembers of a credential (its settings changed, or it was removed). */
  forget(name: string): void {
    this.#recent.delete(name);
    this.#notBefore.delete(name);
    this.#configurations.delete(name);
  }

  #remember(name: string, token: AccessToken, row: CredentialRow): void {
    const freshUntil = token.expiresAt ? Date.parse(token.expiresAt) - this.#marginOf(row) : Infinity;
    if (this.#recent.size >= 10_000) this.#recent.clear();
    this.#recent.set(name, { token, until: Math.min(Date.now() + 1000, freshUntil) });
  }

  /** Records use at most once a minute per credential (last_used_at is for people, not an audit trail). */
  async #touch(name: string): Promise<void> {
    const now = Date.now();
    if (now - (this.#lastTouched.get(name) ?? 0) < 60_000) return;
    this.#lastTouched.set(name, now);
    await this.repo.touchLastUsed(name);
  }

  #assertUsable(row: CredentialRow, options: { retryConfiguration?: boolean } = {}): void {
    const link = this.#link(row.name);
    switch (row.status) {
      case 'configuration_error':
        if (!options.retryConfiguration) throw new MailgateError(ErrorCode.TOKEN_REQUEST_REFUSED, `credential ${row.name}: the provider refuses its token requests, and signing in again will not change that (${row.status_reason ?? 'refused'}) — ${configurationFix(row.name)}`);
        break;
      case 'disabled':
        throw new MailgateError(ErrorCode.CREDENTIAL_DISABLED, `credential ${row.name} is disabled`);
      case 'needs_reauthorization':
        throw new MailgateError(ErrorCode.CREDENTIAL_NEEDS_REAUTHORIZATION, `credential ${row.name} needs someone to sign in again (${row.status_reason ?? 'refresh token no longer valid'}) — ${link}`);
      case 'client_secret_invalid':
        throw new MailgateError(ErrorCode.CREDENTIAL_CLIENT_SECRET_INVALID, `credential ${row.name}: ${row.status_reason ?? 'the client secret is no longer accepted'}`);
      case 'pending':
        if (row.grant_type !== 'client_credentials') throw new MailgateError(ErrorCode.CREDENTIAL_NOT_CONNECTED, `credential ${row.name} is not connected yet: sign in at the provider — ${link}`);
    }
  }

  #currentToken(row: CredentialRow): AccessToken | undefined {
    const accessToken = this.repo.accessTokenOf(row);
    return accessToken ? { accessToken, tokenType: row.token_type ?? 'Bearer', expiresAt: row.expires_at ?? undefined } : undefined;
  }

  #isFresh(row: CredentialRow): boolean {
    if (!row.access_token) return false;
    if (!row.expires_at) return true; // the provider gave no lifetime: use it until refused
    return Date.parse(row.expires_at) - Date.now() > this.#marginOf(row);
  }

  #marginOf(row: CredentialRow): number {
    return dueWindowOf(row, this.#marginMs);
  }
}

/**
 * How long before expiry a credential's token counts as due, for a window of `windowMs` (the request margin, or the
 * scheduler's look-ahead): the window, or half the token's lifetime when the provider issues tokens shorter than twice
 * the window (Keycloak's default is five minutes, the margin's own default) — else every request, or every scheduler
 * pass, would refresh such a token.
 */
export function dueWindowOf(row: Pick<CredentialRow, 'expires_at' | 'last_refreshed_at'>, windowMs: number): number {
  const lifetime = row.expires_at && row.last_refreshed_at ? Date.parse(row.expires_at) - Date.parse(row.last_refreshed_at) : NaN;
  return lifetime > 0 ? Math.min(windowMs, lifetime / 2) : windowMs;
}

/** What to do about a configuration error: the fix is at the provider or in the credential, then one explicit retry. */
function configurationFix(name: string): string {
  return `change what the provider names in the app registration (or the credential's settings: \`mailgate credential update ${name}\`), then retry with \`mailgate credential refresh ${name}\` or Refresh in the web UI`;
}

/**
 * For a service account there is nobody to sign in again: Google refusing its assertion (invalid_grant,
 * unauthorized_client) means the key or the domain-wide delegation is wrong, which the admin fixes in the consoles.
 */
function serviceAccountView(settings: CredentialSettings, failure: GrantFailure): GrantFailure {
  if (settings.clientAuth !== 'service_account' || (failure.kind !== 'reauthorize' && failure.kind !== 'client_secret' && failure.kind !== 'refused')) return failure;
  return {
    ...failure,
    kind: 'client_secret',
    message: `Google refused the service account's assertion (${failure.error ?? 'error'}): check that the key is current (IAM & Admin → Service accounts → Keys) and that domain-wide delegation (Workspace admin console → Security → API controls) grants ${settings.scopes.join(' ')} to client ID ${settings.clientId} for ${settings.email}`,
  };
}

/** Turns a validated token response into what we store. A response without refresh_token keeps the stored one. */
export function tokenSetFrom(response: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers): TokenSet {
  const expiresIn = response.expiresIn();
  return {
    accessToken: new Secret(response.access_token),
    refreshToken: response.refresh_token ? new Secret(response.refresh_token) : undefined,
    tokenType: response.token_type ?? 'Bearer',
    expiresAt: expiresIn !== undefined ? new Date(Date.now() + expiresIn * 1000).toISOString() : undefined,
    grantedScopes: response.scope ? response.scope.split(' ').filter(Boolean) : undefined,
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
