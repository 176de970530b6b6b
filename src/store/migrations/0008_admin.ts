// Migration 0008: the web UI's admin accounts, their sessions, and the one-time setup link of a fresh install.
import type { Kysely, Migration } from 'kysely';
import { autoIncrementKey } from './portable.js';

export const migration0008Admin: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('admin_users')
      .addColumn('id', 'integer', autoIncrementKey(db))
      .addColumn('username', 'varchar(100)', (c) => c.notNull().unique())
      .addColumn('password_hash', 'varchar(300)', (c) => c.notNull()) // scrypt$N$r$p$salt$hash
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('last_login_at', 'varchar(32)')
      .execute();
    await db.schema
      .createTable('admin_sessions')
      .addColumn('id_hash', 'varchar(64)', (c) => c.primaryKey()) // sha256 of the cookie value
      .addColumn('user_id', 'integer', (c) => c.notNull().references('admin_users.id').onDelete('cascade'))
      .addColumn('csrf_token', 'varchar(64)', (c) => c.notNull())
      .addColumn('flash', 'text') // JSON { kind, title, message }: shown once on the next page
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('last_seen_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('expires_at', 'varchar(32)', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('admin_setup_tokens')
      .addColumn('token_hash', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('expires_at', 'varchar(32)', (c) => c.notNull())
      .execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('admin_setup_tokens').execute();
    await db.schema.dropTable('admin_sessions').execute();
    await db.schema.dropTable('admin_users').execute();
  },
};
