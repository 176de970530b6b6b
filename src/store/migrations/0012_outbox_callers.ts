// Migration 0012: who submitted each outbox message, and idempotency keys that belong to one caller, bind one request and expire.
import type { Kysely, Migration } from 'kysely';

export const migration0012OutboxCallers: Migration = {
  async up(db: Kysely<unknown>) {
    // `apikey:<id>`, `cli`, `alerts`, `relay:<account>`: a `send` key reads only its own messages.
    await db.schema.alterTable('outbox').addColumn('created_by', 'varchar(200)').execute();
    // The key as the caller gave it; `idempotency_key` now holds SHA-256(caller, key), so two callers never collide.
    await db.schema.alterTable('outbox').addColumn('idempotency_label', 'varchar(200)').execute();
    // SHA-256 of the request without its key: the same key with another body is refused, not silently replayed.
    await db.schema.alterTable('outbox').addColumn('request_hash', 'varchar(64)').execute();
    await db.schema.alterTable('outbox').addColumn('idempotency_expires_at', 'varchar(32)').execute();
  },
  async down(db: Kysely<unknown>) {
    for (const column of ['idempotency_expires_at', 'request_hash', 'idempotency_label', 'created_by']) await db.schema.alterTable('outbox').dropColumn(column).execute();
  },
};
