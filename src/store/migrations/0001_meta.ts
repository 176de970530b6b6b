// Migration 0001: the `meta` table of installation-wide values (the master key check among them).
import type { Kysely, Migration } from 'kysely';

export const migration0001Meta: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('meta')
      .addColumn('name', 'varchar(100)', (col) => col.primaryKey())
      .addColumn('value', 'text', (col) => col.notNull())
      .addColumn('updated_at', 'varchar(32)', (col) => col.notNull())
      .execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('meta').execute();
  },
};
