// Migration 0006: alerts with a lifecycle (raised, repeated with back-off, resolved when the cause is gone).
import type { Kysely, Migration } from 'kysely';

export const migration0006Alerts: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('alerts')
      .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
      .addColumn('kind', 'varchar(40)', (c) => c.notNull())
      .addColumn('subject', 'varchar(200)', (c) => c.notNull())
      .addColumn('status', 'varchar(10)', (c) => c.notNull()) // active | resolved
      .addColumn('message', 'text', (c) => c.notNull())
      .addColumn('link', 'varchar(2000)')
      .addColumn('raised_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('notified_count', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('last_notified_at', 'varchar(32)')
      .addColumn('next_notify_at', 'varchar(32)')
      .addColumn('resolved_at', 'varchar(32)')
      .execute();
    await db.schema.createIndex('alerts_by_subject').on('alerts').columns(['kind', 'subject', 'status']).execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('alerts').execute();
  },
};
