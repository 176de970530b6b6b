// Migration 0011: the change log every running instance polls, so a change made by the CLI, another instance or the config file reaches them all.
import type { Kysely, Migration } from 'kysely';
import { autoIncrementKey } from './portable.js';

export const migration0011Changes: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('changes')
      .addColumn('seq', 'integer', autoIncrementKey(db))
      .addColumn('topic', 'varchar(30)', (c) => c.notNull()) // credentials | servers | senders | watchers
      .addColumn('name', 'varchar(200)', (c) => c.notNull())
      .addColumn('origin', 'varchar(64)', (c) => c.notNull()) // the process that made the change
      .addColumn('at', 'varchar(32)', (c) => c.notNull())
      .execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('changes').execute();
  },
};
