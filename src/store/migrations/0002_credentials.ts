// Migration 0002: OAuth2 credentials, their state history, pending authorization states, and API keys.
import type { Kysely, Migration } from 'kysely';
import { autoIncrementKey } from './portable.js';

export const migration0002Credentials: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('credentials')
      .addColumn('name', 'varchar(100)', (c) => c.primaryKey())
      .addColumn('provider', 'varchar(20)', (c) => c.notNull())
      .addColumn('grant_type', 'varchar(30)', (c) => c.notNull())
      .addColumn('tenant', 'varchar(200)')
      .addColumn('client_id', 'varchar(300)', (c) => c.notNull())
      // Sealed secrets (Keyring.seal): client secret, or a Google service account key / certificate key.
      .addColumn('client_secret', 'text')
      .addColumn('email', 'varchar(320)', (c) => c.notNull())
      .addColumn('scopes', 'text', (c) => c.notNull()) // JSON array
      .addColumn('protocols', 'text', (c) => c.notNull()) // JSON array
      .addColumn('authority', 'varchar(500)')
      .addColumn('authorization_url', 'varchar(1000)')
      .addColumn('token_url', 'varchar(1000)')
      .addColumn('issuer', 'varchar(1000)')
      .addColumn('device_authorization_url', 'varchar(1000)')
      .addColumn('revocation_url', 'varchar(1000)')
      .addColumn('userinfo_url', 'varchar(1000)')
      .addColumn('auth_params', 'text', (c) => c.notNull()) // JSON object
      .addColumn('status', 'varchar(30)', (c) => c.notNull())
      .addColumn('status_reason', 'text')
      .addColumn('status_changed_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('access_token', 'text') // sealed
      .addColumn('refresh_token', 'text') // sealed
      .addColumn('token_type', 'varchar(40)')
      .addColumn('expires_at', 'varchar(32)')
      .addColumn('granted_scopes', 'text') // JSON array
      .addColumn('identity', 'text') // JSON { email, subject, name }
      .addColumn('last_refreshed_at', 'varchar(32)')
      .addColumn('last_used_at', 'varchar(32)')
      .addColumn('last_error', 'text')
      .addColumn('warnings', 'text', (c) => c.notNull()) // JSON array of { code, message }
      .addColumn('client_secret_expires_at', 'varchar(32)')
      .addColumn('failure_count', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('next_attempt_at', 'varchar(32)')
      // A lease so that one refresh per credential runs at a time across instances sharing the database.
      .addColumn('refresh_lease_owner', 'varchar(100)')
      .addColumn('refresh_lease_until', 'varchar(32)')
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('credential_events')
      .addColumn('id', 'integer', autoIncrementKey(db))
      .addColumn('credential_name', 'varchar(100)', (c) => c.notNull())
      .addColumn('at', 'varchar(32)', (c) => c.notNull())
      .addColumn('from_status', 'varchar(30)')
      .addColumn('to_status', 'varchar(30)', (c) => c.notNull())
      .addColumn('reason', 'text')
      .execute();
    await db.schema.createIndex('credential_events_by_name').on('credential_events').columns(['credential_name', 'id']).execute();

    await db.schema
      .createTable('oauth_states')
      .addColumn('state_hash', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('credential_name', 'varchar(100)', (c) => c.notNull())
      .addColumn('code_verifier', 'text', (c) => c.notNull()) // sealed
      .addColumn('nonce', 'varchar(100)', (c) => c.notNull())
      .addColumn('redirect_uri', 'varchar(1000)', (c) => c.notNull())
      .addColumn('browser_binding', 'varchar(64)') // hash of the admin's session, when started from the web UI
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('expires_at', 'varchar(32)', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('api_keys')
      .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
      .addColumn('name', 'varchar(100)', (c) => c.notNull().unique())
      .addColumn('key_hash', 'varchar(64)', (c) => c.notNull().unique())
      .addColumn('scopes', 'text', (c) => c.notNull()) // JSON array
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('last_used_at', 'varchar(32)')
      .addColumn('revoked_at', 'varchar(32)')
      .execute();
  },
  async down(db: Kysely<unknown>) {
    for (const table of ['api_keys', 'oauth_states', 'credential_events', 'credentials']) await db.schema.dropTable(table).execute();
  },
};
