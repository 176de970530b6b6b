// Reads and writes credentials in the store, sealing every secret (client secret, tokens) with the keyring on the way in.
import type { Selectable, Updateable } from 'kysely';
import { ErrorCode, MailgateError } from '../errors.js';
import type { Keyring } from '../secrets/keyring.js';
import { Secret } from '../secrets/secret.js';
import { writeInGroup } from '../store/groupCommit.js';
import { assignments, runStatement, statement, type SqlValue } from '../store/statements.js';
import type { Store } from '../store/store.js';
import type { CredentialsTable } from '../store/tables.js';
import type { CredentialSettings, CredentialStatus, CredentialView, CredentialWarning, SignedInIdentity } from './model.js';

/** A client's authentication at the token endpoint: the kind, and the opened material. */
export interface ClientAuthMaterial {
  kind: CredentialSettings['clientAuth'];
  material: Secret;
}

export type CredentialRow = Selectable<CredentialsTable>;

/** Tokens from a grant, ready to store; a missing refresh token keeps the stored one (Google does not rotate). */
export interface TokenSet {
  accessToken: Secret;
  refreshToken: Secret | undefined;
  tokenType: string;
  expiresAt: string | undefined;
  grantedScopes: string[] | undefined;
}

export interface StatusChange {
  status: CredentialStatus;
  reason: string | undefined;
  lastError?: string | null;
  failureCount?: number;
  nextAttemptAt?: string | null;
}

const context = (name: string, field: 'clientSecret' | 'accessToken' | 'refreshToken') => `credential:${name}:${field}`;
const now = () => new Date().toISOString();

export class CredentialRepository {
  constructor(
    private readonly store: Store,
    private readonly keyring: Keyring,
  ) {}

  async insert(settings: CredentialSettings, clientSecret: string | undefined, warnings: CredentialWarning[]): Promise<void> {
    const at = now();
    const exists = await this.store.db.selectFrom('credentials').select('name').where('name', '=', settings.name).executeTakeFirst();
    if (exists) throw new MailgateError(ErrorCode.ALREADY_EXISTS, `credential ${JSON.stringify(settings.name)} exists already: choose another name, or change it with PATCH / remove it first`);
    await this.store.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('credentials')
        .values({
          ...settingsColumns(settings),
          client_secret: clientSecret === undefined ? null : this.keyring.seal(clientSecret, context(settings.name, 'clientSecret')),
          status: 'pending',
          status_reason: settings.grant === 'client_credentials' ? 'not used yet' : 'waiting for someone to connect (sign in at the provider)',
          status_changed_at: at,
          warnings: JSON.stringify(warnings),
          created_at: at,
          updated_at: at,
        })
        .execute();
      await trx.insertInto('credential_events').values({ credential_name: settings.name, at, from_status: null, to_status: 'pending', reason: 'created' }).execute();
    });
    await this.store.changes.record('credentials', settings.name);
  }

  /** Replaces the settings; `clientSecret` undefined keeps the stored one. Tokens are kept unless `dropTokens`. */
  async updateSettings(settings: CredentialSettings, clientSecret: string | undefined, warnings: CredentialWarning[], dropTokens: boolean): Promise<void> {
    const values: Updateable<CredentialsTable> = { ...settingsColumns(settings), warnings: JSON.stringify(warnings), updated_at: now() };
    if (clientSecret !== undefined) values.client_secret = this.keyring.seal(clientSecret, context(settings.name, 'clientSecret'));
    if (dropTokens) Object.assign(values, { access_token: null, refresh_token: null, expires_at: null, granted_scopes: null, identity: null });
    await this.store.db.updateTable('credentials').set(values).where('name', '=', settings.name).execute();
    if (dropTokens) await this.setStatus(settings.name, { status: 'pending', reason: 'settings changed: connect again' });
    await this.store.changes.record('credentials', settings.name);
  }

  async find(name: string): Promise<CredentialRow | undefined> {
    return this.store.db.selectFrom('credentials').selectAll().where('name', '=', name).executeTakeFirst();
  }

  async get(name: string): Promise<CredentialRow> {
    const row = await this.find(name);
    if (!row) throw new MailgateError(ErrorCode.NOT_FOUND, `no credential named ${JSON.stringify(name)} (list them with \`mailgate credential list\`)`);
    return row;
  }

  async list(): Promise<CredentialRow[]> {
    return this.store.db.selectFrom('credentials').selectAll().orderBy('name').execute();
  }

  /** Names and statuses of the credentials in any of `statuses` (the web UI's banner), by name. */
  async withStatus(statuses: readonly CredentialStatus[]): Promise<Array<{ name: string; status: CredentialStatus }>> {
    const rows = await this.store.db.selectFrom('credentials').select(['name', 'status']).where('status', 'in', [...statuses]).orderBy('name').execute();
    return rows.map((r) => ({ name: r.name, status: r.status as CredentialStatus }));
  }

  async remove(name: string): Promise<void> {
    const result = await this.store.db.deleteFrom('credentials').where('name', '=', name).executeTakeFirst();
    if (result.numDeletedRows === 0n) throw new MailgateError(ErrorCode.NOT_FOUND, `no credential named ${JSON.stringify(name)}`);
    await this.store.db.deleteFrom('oauth_states').where('credential_name', '=', name).execute();
    await this.store.db.insertInto('credential_events').values({ credential_name: name, at: now(), from_status: null, to_status: 'removed', reason: 'removed' }).execute();
    await this.store.changes.record('credentials', name);
  }

  /** The sealed client-authentication material (a secret, a certificate PEM, or a service-account key), opened. */
  clientSecretOf(row: CredentialRow): Secret | undefined {
    return row.client_secret ? new Secret(this.keyring.open(row.client_secret, context(row.name, 'clientSecret'))) : undefined;
  }

  /** What the client authenticates with at the token endpoint. */
  clientAuthOf(row: CredentialRow): ClientAuthMaterial | undefined {
    const material = this.clientSecretOf(row);
    if (!material) return undefined;
    return { kind: row.client_auth as ClientAuthMaterial['kind'], material };
  }

  accessTokenOf(row: CredentialRow): Secret | undefined {
    return row.access_token ? new Secret(this.keyring.open(row.access_token, context(row.name, 'accessToken'))) : undefined;
  }

  refreshTokenOf(row: CredentialRow): Secret | undefined {
    return row.refresh_token ? new Secret(this.keyring.open(row.refresh_token, context(row.name, 'refreshToken'))) : undefined;
  }

  /**
   * Stores a grant's tokens in one statement, committed with the other hot writes of the moment (a refresh storm's
   * token writes share transactions: store/groupCommit.ts) and awaited until committed: a rotated refresh token is
   * durable before anyone sees the new access token (DESIGN.md invariant). The credential becomes active.
   * `previousStatus` (when the caller read the row) lets an active credential stay active without a second statement;
   * `releaseLeaseOf` frees the refresh lease in the same write.
   */
  async saveTokens(
    name: string,
    tokens: TokenSet,
    extra: { identity?: SignedInIdentity; warnings?: CredentialWarning[]; reason: string; previousStatus?: string; releaseLeaseOf?: string },
  ): Promise<{ leaseLost: boolean }> {
    const at = now();
    const values: Updateable<CredentialsTable> = {
      access_token: this.keyring.seal(tokens.accessToken.reveal(), context(name, 'accessToken')),
      token_type: tokens.tokenType,
      expires_at: tokens.expiresAt ?? null,
      last_refreshed_at: at,
      updated_at: at,
      failure_count: 0,
      next_attempt_at: null,
      last_error: null,
    };
    if (tokens.refreshToken) values.refresh_token = this.keyring.seal(tokens.refreshToken.reveal(), context(name, 'refreshToken'));
    if (tokens.grantedScopes) values.granted_scopes = JSON.stringify(tokens.grantedScopes);
    if (extra.identity) values.identity = JSON.stringify(extra.identity);
    if (extra.warnings) values.warnings = JSON.stringify(extra.warnings);
    if (extra.releaseLeaseOf) Object.assign(values, { refresh_lease_owner: null, refresh_lease_until: null });
    // Written once per set of columns (a refresh storm writes thousands of these): see store/statements.ts.
    const columns = Object.keys(values) as (keyof typeof values)[];
    const lease = extra.releaseLeaseOf ? ' and ("refresh_lease_owner" = ? or "refresh_lease_owner" is null)' : '';
    const update = statement(this.store.kind, `credentials tokens:${columns.join(',')}${lease}`, () => `update "credentials" set ${assignments(columns)} where "name" = ?${lease}`);
    const changed = await writeInGroup(this.store, update, [...columns.map((c) => (values[c] ?? null) as SqlValue), name, ...(extra.releaseLeaseOf ? [extra.releaseLeaseOf] : [])]);
    let leaseLost = false;
    if (extra.releaseLeaseOf && changed === 0) {
      leaseLost = true;
      // The lease ran out during the request and someone else holds it now. These tokens came from the refresh token
      // that was current, which the provider may have just rotated away: dropping them could lose the only valid
      // refresh token. They are stored anyway (the other holder's refresh then fails or yields newer ones).
      if (tokens.refreshToken) {
        const { refresh_lease_owner: _owner, refresh_lease_until: _until, ...rest } = values as Record<string, unknown>;
        await this.store.db.updateTable('credentials').set(rest as Updateable<CredentialsTable>).where('name', '=', name).execute();
      }
    }
    if (extra.previousStatus !== 'active') await this.setStatus(name, { status: 'active', reason: extra.reason });
    return { leaseLost };
  }

  /** Changes the status and records the change (time, from, to, reason) when the status really changes. */
  async setStatus(name: string, change: StatusChange): Promise<void> {
    const at = now();
    await this.store.db.transaction().execute(async (trx) => {
      const current = await trx.selectFrom('credentials').select(['status']).where('name', '=', name).executeTakeFirst();
      if (!current) return;
      const values: Updateable<CredentialsTable> = { updated_at: at };
      if (change.lastError !== undefined) values.last_error = change.lastError;
      if (change.failureCount !== undefined) values.failure_count = change.failureCount;
      if (change.nextAttemptAt !== undefined) values.next_attempt_at = change.nextAttemptAt;
      if (current.status !== change.status) {
        Object.assign(values, { status: change.status, status_reason: change.reason ?? null, status_changed_at: at });
        await trx.insertInto('credential_events').values({ credential_name: name, at, from_status: current.status, to_status: change.status, reason: change.reason ?? null }).execute();
      } else if (change.reason !== undefined) {
        values.status_reason = change.reason;
      }
      await trx.updateTable('credentials').set(values).where('name', '=', name).execute();
    });
  }

  /** Notes a failure that does not change the status (a refused sign-in keeps the old grant working). */
  async recordError(name: string, lastError: string): Promise<void> {
    await this.store.db.updateTable('credentials').set({ last_error: lastError, updated_at: now() }).where('name', '=', name).execute();
  }

  async touchLastUsed(name: string): Promise<void> {
    await this.store.db.updateTable('credentials').set({ last_used_at: now() }).where('name', '=', name).execute();
  }

  async events(name: string): Promise<{ at: string; from: string | null; to: string; reason: string | null }[]> {
    const rows = await this.store.db.selectFrom('credential_events').selectAll().where('credential_name', '=', name).orderBy('id').execute();
    return rows.map((r) => ({ at: r.at, from: r.from_status, to: r.to_status, reason: r.reason }));
  }

  /**
   * Takes the refresh lease if nobody holds a live one: one refresh per credential at a time, also across
   * instances sharing the database. Returns the row as it is under the lease, or undefined when another
   * holder is refreshing.
   */
  async acquireLease(name: string, owner: string, ttlMs: number): Promise<CredentialRow | undefined> {
    const at = new Date();
    const acquire = statement(this.store.kind, 'credentials lease', () => 'update "credentials" set "refresh_lease_owner" = ?, "refresh_lease_until" = ? where "name" = ? and ("refresh_lease_until" is null or "refresh_lease_until" < ? or "refresh_lease_owner" = ?) returning *');
    const result = await runStatement<CredentialRow>(this.store.db, acquire, [owner, new Date(at.getTime() + ttlMs).toISOString(), name, at.toISOString(), owner]);
    return result.rows[0];
  }

  async releaseLease(name: string, owner: string): Promise<void> {
    await this.store.db.updateTable('credentials').set({ refresh_lease_owner: null, refresh_lease_until: null }).where('name', '=', name).where('refresh_lease_owner', '=', owner).execute();
  }

  /** Credentials the scheduler should refresh now: expiring soon, idle too long, or due for a retry. */
  async dueForRefresh(expiringBefore: string, idleSince: string, at: string): Promise<CredentialRow[]> {
    return this.store.db
      .selectFrom('credentials')
      .selectAll()
      .where('refresh_token', 'is not', null)
      .where('status', 'in', ['active', 'refresh_failing'])
      .where((eb) =>
        eb.and([
          eb.or([eb('next_attempt_at', 'is', null), eb('next_attempt_at', '<=', at)]),
          eb.or([eb('expires_at', 'is', null), eb('expires_at', '<', expiringBefore), eb('last_refreshed_at', '<', idleSince), eb('status', '=', 'refresh_failing')]),
        ]),
      )
      .execute();
  }

  toView(row: CredentialRow, redirectUri: string): CredentialView {
    return {
      ...settingsOf(row),
      hasClientSecret: row.client_secret !== null,
      hasRefreshToken: row.refresh_token !== null,
      status: row.status as CredentialStatus,
      statusReason: row.status_reason ?? undefined,
      statusChangedAt: row.status_changed_at,
      expiresAt: row.expires_at ?? undefined,
      grantedScopes: row.granted_scopes ? (JSON.parse(row.granted_scopes) as string[]) : undefined,
      identity: row.identity ? (JSON.parse(row.identity) as SignedInIdentity) : undefined,
      lastRefreshedAt: row.last_refreshed_at ?? undefined,
      lastUsedAt: row.last_used_at ?? undefined,
      lastError: row.last_error ?? undefined,
      warnings: JSON.parse(row.warnings) as CredentialWarning[],
      redirectUri,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    };
  }
}

export function settingsOf(row: CredentialRow): CredentialSettings {
  return {
    name: row.name,
    clientAuth: row.client_auth as CredentialSettings['clientAuth'],
    provider: row.provider as CredentialSettings['provider'],
    grant: row.grant_type as CredentialSettings['grant'],
    tenant: row.tenant ?? undefined,
    clientId: row.client_id,
    email: row.email,
    protocols: JSON.parse(row.protocols) as CredentialSettings['protocols'],
    scopes: JSON.parse(row.scopes) as string[],
    authority: row.authority ?? undefined,
    authorizationUrl: row.authorization_url ?? undefined,
    tokenUrl: row.token_url ?? '',
    issuer: row.issuer ?? undefined,
    deviceAuthorizationUrl: row.device_authorization_url ?? undefined,
    revocationUrl: row.revocation_url ?? undefined,
    userinfoUrl: row.userinfo_url ?? undefined,
    authParams: JSON.parse(row.auth_params) as Record<string, string>,
    clientSecretExpiresAt: row.client_secret_expires_at ?? undefined,
  };
}

function settingsColumns(s: CredentialSettings) {
  return {
    name: s.name,
    client_auth: s.clientAuth,
    provider: s.provider,
    grant_type: s.grant,
    tenant: s.tenant ?? null,
    client_id: s.clientId,
    email: s.email,
    scopes: JSON.stringify(s.scopes),
    protocols: JSON.stringify(s.protocols),
    authority: s.authority ?? null,
    authorization_url: s.authorizationUrl ?? null,
    token_url: s.tokenUrl,
    issuer: s.issuer ?? null,
    device_authorization_url: s.deviceAuthorizationUrl ?? null,
    revocation_url: s.revocationUrl ?? null,
    userinfo_url: s.userinfoUrl ?? null,
    auth_params: JSON.stringify(s.authParams),
    client_secret_expires_at: s.clientSecretExpiresAt ?? null,
  };
}
