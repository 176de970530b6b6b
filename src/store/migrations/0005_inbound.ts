// Migration 0005: watchers (inbound mailboxes → webhooks), their checkpoints, and every inbound delivery.
import type { Kysely, Migration } from 'kysely';

export const migration0005Inbound: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('watchers')
      .addColumn('name', 'varchar(100)', (c) => c.primaryKey())
      .addColumn('server', 'varchar(100)', (c) => c.notNull())
      .addColumn('folder', 'varchar(500)', (c) => c.notNull())
      .addColumn('mode', 'varchar(10)', (c) => c.notNull())
      .addColumn('poll_interval_seconds', 'integer', (c) => c.notNull())
      .addColumn('after', 'varchar(500)', (c) => c.notNull())
      .addColumn('webhook_url', 'varchar(2000)', (c) => c.notNull())
      .addColumn('webhook_secret', 'text', (c) => c.notNull()) // sealed
      .addColumn('filter_from', 'varchar(500)')
      .addColumn('filter_subject', 'varchar(500)')
      .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
      .addColumn('source', 'varchar(10)', (c) => c.notNull())
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('watcher_state')
      .addColumn('watcher', 'varchar(100)', (c) => c.primaryKey())
      .addColumn('uidvalidity', 'varchar(20)') // IMAP UIDVALIDITY (32-bit unsigned; kept as text)
      .addColumn('last_uid', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('state', 'varchar(20)', (c) => c.notNull())
      .addColumn('connected_at', 'varchar(32)')
      .addColumn('last_message_at', 'varchar(32)')
      .addColumn('last_error', 'text')
      .addColumn('last_error_at', 'varchar(32)')
      .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('inbound_deliveries')
      .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
      .addColumn('watcher', 'varchar(100)', (c) => c.notNull())
      // Where the message is upstream: "imap:<uidvalidity>:<uid>" or "pop3:<uidl>"; unique per watcher.
      .addColumn('mailbox_key', 'varchar(300)', (c) => c.notNull())
      .addColumn('uid', 'integer')
      .addColumn('status', 'varchar(10)', (c) => c.notNull()) // pending | delivered | parked | skipped
      .addColumn('event', 'varchar(10)')
      .addColumn('message_id', 'varchar(1000)')
      .addColumn('subject', 'varchar(1000)')
      .addColumn('from_address', 'varchar(500)')
      .addColumn('size', 'integer')
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('next_attempt_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('last_error', 'text')
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('delivered_at', 'varchar(32)')
      .execute();
    await db.schema.createIndex('inbound_deliveries_key').on('inbound_deliveries').columns(['watcher', 'mailbox_key']).unique().execute();
    await db.schema.createIndex('inbound_deliveries_due').on('inbound_deliveries').columns(['watcher', 'status', 'next_attempt_at']).execute();
  },
  async down(db: Kysely<unknown>) {
    for (const table of ['inbound_deliveries', 'watcher_state', 'watchers']) await db.schema.dropTable(table).execute();
  },
};
