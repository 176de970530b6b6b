// Migration 0009: relay accounts (SMTP submission for password-only programs) and proxy accounts (IMAP/POP3).
import type { Kysely, Migration } from 'kysely';

export const migration0009Accounts: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('relay_accounts')
      .addColumn('name', 'varchar(100)', (c) => c.primaryKey())
      .addColumn('sender', 'varchar(100)', (c) => c.notNull())
      .addColumn('allow_from', 'text', (c) => c.notNull()) // JSON array: addresses and @domains besides the sender's From
      .addColumn('password_hash', 'varchar(300)', (c) => c.notNull()) // scrypt$… (chosen) or sha256$… (generated)
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('last_login_at', 'varchar(32)')
      .execute();
    await db.schema
      .createTable('proxy_accounts')
      .addColumn('name', 'varchar(100)', (c) => c.primaryKey())
      .addColumn('server', 'varchar(100)', (c) => c.notNull())
      .addColumn('password_hash', 'varchar(300)', (c) => c.notNull())
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('last_login_at', 'varchar(32)')
      .execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('proxy_accounts').execute();
    await db.schema.dropTable('relay_accounts').execute();
  },
};
