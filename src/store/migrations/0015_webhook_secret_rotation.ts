// Migration 0015: a watcher's previous webhook secret (sealed) and when it stops signing, for rotation with a grace period.
import type { Kysely, Migration } from 'kysely';

export const migration0015WebhookSecretRotation: Migration = {
  async up(db: Kysely<unknown>) {
    // Nullable, so existing watchers simply have no rotation in progress. One column per statement: SQLite's ALTER
    // TABLE adds one column at a time, PostgreSQL accepts the same.
    await db.schema.alterTable('watchers').addColumn('webhook_previous_secret', 'text').execute(); // sealed, like webhook_secret
    await db.schema.alterTable('watchers').addColumn('webhook_previous_secret_expires_at', 'varchar(32)').execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.alterTable('watchers').dropColumn('webhook_previous_secret_expires_at').execute();
    await db.schema.alterTable('watchers').dropColumn('webhook_previous_secret').execute();
  },
};
