// Migration 0016: the running instances (heartbeats) and the leases that give each watcher and the alert loop to exactly one of them.
import type { Kysely, Migration } from 'kysely';

export const migration0016Instances: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('instances')
      .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('hostname', 'varchar(255)', (c) => c.notNull())
      .addColumn('pid', 'integer', (c) => c.notNull())
      .addColumn('version', 'varchar(40)', (c) => c.notNull())
      .addColumn('started_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('heartbeat_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('stopped_at', 'varchar(32)') // null while it runs (or until its heartbeat goes stale after a crash)
      .execute();
    await db.schema
      .createTable('leases')
      .addColumn('name', 'varchar(250)', (c) => c.primaryKey()) // watcher:<name>, alerts
      .addColumn('owner', 'varchar(64)', (c) => c.notNull()) // an instances.id
      .addColumn('expires_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('acquired_at', 'varchar(32)', (c) => c.notNull())
      .execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('leases').execute();
    await db.schema.dropTable('instances').execute();
  },
};
