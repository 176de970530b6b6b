// Migration 0014: an inbound delivery's upstream acknowledgement (seen, moved, deleted) as its own recorded step, re-applied after a crash.
import { sql, type Kysely, type Migration } from 'kysely';

export const migration0014InboundAcks: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('inbound_deliveries').addColumn('acknowledged_at', 'varchar(32)').execute();
    // Deliveries before this migration: acknowledged or not, nobody can tell now; re-applying an old "seen" or "move"
    // could undo what a person did since, so they count as acknowledged.
    await sql`update inbound_deliveries set acknowledged_at = coalesce(delivered_at, updated_at) where status = 'delivered'`.execute(db);
  },
  async down(db: Kysely<unknown>) {
    await db.schema.alterTable('inbound_deliveries').dropColumn('acknowledged_at').execute();
  },
};
