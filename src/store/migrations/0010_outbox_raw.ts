// Migration 0010: the outbox carries raw MIME messages (from the SMTP relay) with their SMTP envelope, beside the JSON ones of the API.
import type { Kysely, Migration } from 'kysely';
import { bytesType } from './portable.js';

export const migration0010OutboxRaw: Migration = {
  async up(db: Kysely<unknown>) {
    // The message exactly as submitted (plus Message-ID/Date when it had none): bytes, since 8-bit bodies in other
    // charsets must go out unchanged. NULL for API messages, whose `message` JSON is composed at send time.
    await db.schema.alterTable('outbox').addColumn('raw', bytesType(db)).execute();
    // JSON {"from": "…", "to": ["…"]}: MAIL FROM and every RCPT TO, Bcc recipients included.
    await db.schema.alterTable('outbox').addColumn('envelope', 'text').execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.alterTable('outbox').dropColumn('envelope').execute();
    await db.schema.alterTable('outbox').dropColumn('raw').execute();
  },
};
