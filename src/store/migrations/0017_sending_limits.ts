// Migration 0017: provider sending limits — each server's limits, a log of what was sent through it (the budget), pauses a provider imposed, and message priorities.
import type { Kysely, Migration } from 'kysely';
import { autoIncrementKey } from './portable.js';

export const migration0017SendingLimits: Migration = {
  async up(db: Kysely<unknown>) {
    // JSON { messagesPerMinute?, recipientsPerMinute?, messagesPerDay?, recipientsPerDay?, connections? } as configured
    // (null values switch a preset's limit off); null: the preset for the host, if any.
    await db.schema.alterTable('servers').addColumn('limits', 'text').execute();
    // 0 high, 1 normal, 2 low: claims take high first, then by age.
    await db.schema.alterTable('outbox').addColumn('priority', 'integer', (c) => c.notNull().defaultTo(1)).execute();
    await db.schema.dropIndex('outbox_due').execute();
    await db.schema.createIndex('outbox_due').on('outbox').columns(['status', 'priority', 'next_attempt_at']).execute();
    // One row per message handed to a server with limits: the sliding windows are counted from it (rows older than a
    // day are pruned as new ones come).
    await db.schema
      .createTable('send_log')
      .addColumn('id', 'integer', autoIncrementKey(db))
      .addColumn('server', 'varchar(100)', (c) => c.notNull())
      .addColumn('sent_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('recipients', 'integer', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('send_log_by_server').on('send_log').columns(['server', 'sent_at']).execute();
    // A pause the provider imposed (a throttling reply) or a daily budget spent: nothing goes to the server before `until`.
    await db.schema
      .createTable('server_pauses')
      .addColumn('server', 'varchar(100)', (c) => c.primaryKey())
      .addColumn('until', 'varchar(32)', (c) => c.notNull())
      .addColumn('limit_name', 'varchar(40)', (c) => c.notNull()) // messagesPerMinute, recipientsPerDay, connections, …
      .addColumn('reason', 'text', (c) => c.notNull())
      .addColumn('paused_at', 'varchar(32)', (c) => c.notNull())
      .execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('server_pauses').execute();
    await db.schema.dropTable('send_log').execute();
    await db.schema.dropIndex('outbox_due').execute();
    await db.schema.createIndex('outbox_due').on('outbox').columns(['status', 'next_attempt_at']).execute();
    await db.schema.alterTable('outbox').dropColumn('priority').execute();
    await db.schema.alterTable('servers').dropColumn('limits').execute();
  },
};
