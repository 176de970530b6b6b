// Migration 0004: how a credential's client authenticates — a client secret, a certificate (Entra ID), or a service-account key (Google).
import type { Kysely, Migration } from 'kysely';

export const migration0004ClientAuth: Migration = {
  async up(db: Kysely<unknown>) {
    // The sealed material stays in credentials.client_secret; this says what it is.
    await db.schema.alterTable('credentials').addColumn('client_auth', 'varchar(20)', (c) => c.notNull().defaultTo('secret')).execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.alterTable('credentials').dropColumn('client_auth').execute();
  },
};
