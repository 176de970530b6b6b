// Migration 0007: the audit log of admin actions (who, what, when; never a secret value).
import type { Kysely, Migration } from 'kysely';
import { autoIncrementKey } from './portable.js';

export const migration0007Audit: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('audit_log')
      .addColumn('id', 'integer', autoIncrementKey(db))
      .addColumn('at', 'varchar(32)', (c) => c.notNull())
      .addColumn('actor', 'varchar(200)', (c) => c.notNull())
      .addColumn('action', 'varchar(200)', (c) => c.notNull())
      .addColumn('target', 'varchar(300)')
      .addColumn('details', 'text', (c) => c.notNull()) // JSON: field names and outcomes, never values of secrets
      .execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('audit_log').execute();
  },
};
