// Migration 0013: when a sent, failed or cancelled message's body was dropped under the retention settings.
import type { Kysely, Migration } from 'kysely';

export const migration0013Retention: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('outbox').addColumn('body_pruned_at', 'varchar(32)').execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.alterTable('outbox').dropColumn('body_pruned_at').execute();
  },
};
