// Migration 0003: mail servers, senders (primary + backups), and the durable outbox.
import type { Kysely, Migration } from 'kysely';

export const migration0003Outbound: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('servers')
      .addColumn('name', 'varchar(100)', (c) => c.primaryKey())
      .addColumn('protocol', 'varchar(10)', (c) => c.notNull())
      .addColumn('host', 'varchar(300)', (c) => c.notNull())
      .addColumn('port', 'integer', (c) => c.notNull())
      .addColumn('security', 'varchar(10)', (c) => c.notNull())
      .addColumn('username', 'varchar(320)')
      .addColumn('auth_type', 'varchar(10)', (c) => c.notNull())
      .addColumn('password', 'text') // sealed
      .addColumn('credential', 'varchar(100)')
      .addColumn('tls_ca', 'text')
      .addColumn('tls_reject_unauthorized', 'integer', (c) => c.notNull().defaultTo(1))
      .addColumn('source', 'varchar(10)', (c) => c.notNull())
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('senders')
      .addColumn('name', 'varchar(100)', (c) => c.primaryKey())
      .addColumn('primary_server', 'varchar(100)', (c) => c.notNull())
      .addColumn('backups', 'text', (c) => c.notNull()) // JSON array of server names, in order
      .addColumn('from_address', 'varchar(1000)', (c) => c.notNull())
      .addColumn('reply_to', 'varchar(1000)')
      .addColumn('source', 'varchar(10)', (c) => c.notNull())
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('outbox')
      .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
      .addColumn('sender', 'varchar(100)', (c) => c.notNull())
      .addColumn('idempotency_key', 'varchar(200)', (c) => c.unique())
      .addColumn('message', 'text', (c) => c.notNull()) // JSON of the accepted message
      .addColumn('size', 'integer', (c) => c.notNull())
      .addColumn('status', 'varchar(10)', (c) => c.notNull()) // queued | sending | sent | failed
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('server_index', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('server_attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('next_attempt_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('lease_owner', 'varchar(100)')
      .addColumn('lease_until', 'varchar(32)')
      .addColumn('server_used', 'varchar(100)')
      .addColumn('message_id', 'varchar(1000)', (c) => c.notNull())
      .addColumn('last_error', 'text')
      .addColumn('response', 'text')
      .addColumn('rejected', 'text') // JSON array of recipients the server refused
      .addColumn('history', 'text', (c) => c.notNull()) // JSON array of attempts
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('sent_at', 'varchar(32)')
      .execute();
    await db.schema.createIndex('outbox_due').on('outbox').columns(['status', 'next_attempt_at']).execute();
    await db.schema.createIndex('outbox_message_id').on('outbox').column('message_id').execute();
  },
  async down(db: Kysely<unknown>) {
    for (const table of ['outbox', 'senders', 'servers']) await db.schema.dropTable(table).execute();
  },
};
