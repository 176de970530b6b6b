// Outbox messages as a person recognises them — subject, addresses, attachment names and sizes — read inside the database from the message JSON, so bodies never leave it.
import { sql } from 'kysely';
import type { Store } from '../store/store.js';
import type { Mailbox } from './message.js';

/** A stored message without its body: what a person needs to recognise it. `from` null: the sender's From is used. */
export interface MessageSummary {
  subject: string;
  from: Mailbox | null;
  to: Mailbox[];
  cc: Mailbox[];
  bcc: Mailbox[];
  attachments: { filename: string; contentType: string | null; bytes: number }[];
  hasText: boolean;
  hasHtml: boolean;
  /** Bytes of subject, bodies and decoded attachments, as counted at acceptance. */
  size: number;
  /** A relay submission, kept as raw MIME: who handed it in. Null for API and CLI messages. */
  relayed: { account: string; client: string } | null;
  /** The body was dropped under retention (subject, addresses and history stay). */
  bodyDropped: boolean;
}

/**
 * Subject, addresses and attachment names of messages, for the web UI's lists: read inside the database (SQLite's
 * or PostgreSQL's JSON functions) so that bodies and attachments, which may be megabytes each, never leave it.
 */
export async function messageSummaries(store: Store, ids: readonly string[]): Promise<Map<string, MessageSummary>> {
  if (ids.length === 0) return new Map();
  const rows = await store.db
    .selectFrom('outbox')
    .select(store.kind === 'postgres' ? postgresSummaryColumns() : [
      'id',
      'size',
      sql<string | null>`json_extract(message, '$.subject')`.as('subject'),
      sql<string | null>`json_extract(message, '$.from')`.as('from_json'),
      sql<string | null>`json_extract(message, '$.to')`.as('to_json'),
      sql<string | null>`json_extract(message, '$.cc')`.as('cc_json'),
      sql<string | null>`json_extract(message, '$.bcc')`.as('bcc_json'),
      sql<string | null>`json_type(message, '$.text')`.as('text_type'),
      sql<string | null>`json_type(message, '$.html')`.as('html_type'),
      sql<string | null>`json_extract(message, '$.submittedBy')`.as('submitted_json'),
      sql<number | null>`json_extract(message, '$.bodyDropped')`.as('body_dropped'),
      sql<string>`(select json_group_array(json_object('filename', json_extract(a.value, '$.filename'), 'contentType', json_extract(a.value, '$.contentType'), 'bytes', length(json_extract(a.value, '$.content')) * 3 / 4)) from json_each(outbox.message, '$.attachments') as a)`.as('attachments_json'),
    ] as const)
    .where('id', 'in', [...ids])
    .execute();
  const list = (json: string | null): Mailbox[] => (json ? (JSON.parse(json) as Mailbox[]) : []);
  return new Map(
    rows.map((r) => [
      r.id,
      {
        subject: r.subject ?? '',
        from: r.from_json ? (JSON.parse(r.from_json) as Mailbox) : null,
        to: list(r.to_json),
        cc: list(r.cc_json),
        bcc: list(r.bcc_json),
        attachments: JSON.parse(r.attachments_json ?? '[]') as MessageSummary['attachments'],
        hasText: r.text_type === 'text',
        hasHtml: r.html_type === 'text',
        size: r.size,
        relayed: r.submitted_json ? (JSON.parse(r.submitted_json) as { account: string; client: string }) : null,
        bodyDropped: Boolean(r.body_dropped),
      },
    ]),
  );
}

/** The same columns as SQLite's json_extract/json_type/json_each give, from PostgreSQL's jsonb operators. */
function postgresSummaryColumns() {
  const message = sql`outbox.message::jsonb`;
  const json = (key: string) => sql<string | null>`nullif(${message} -> ${sql.lit(key)}, 'null'::jsonb)::text`;
  const textType = (key: string) => sql<string | null>`case jsonb_typeof(${message} -> ${sql.lit(key)}) when 'string' then 'text' end`;
  return [
    'id',
    'size',
    sql<string | null>`${message} ->> 'subject'`.as('subject'),
    json('from').as('from_json'),
    json('to').as('to_json'),
    json('cc').as('cc_json'),
    json('bcc').as('bcc_json'),
    textType('text').as('text_type'),
    textType('html').as('html_type'),
    json('submittedBy').as('submitted_json'),
    sql<number | null>`case when ${message} -> 'bodyDropped' = 'true'::jsonb then 1 else 0 end`.as('body_dropped'),
    sql<string>`(select coalesce(json_agg(json_build_object('filename', a.v ->> 'filename', 'contentType', a.v ->> 'contentType', 'bytes', length(a.v ->> 'content') * 3 / 4) order by a.i), '[]'::json)::text from jsonb_array_elements(case when jsonb_typeof(${message} -> 'attachments') = 'array' then ${message} -> 'attachments' else '[]'::jsonb end) with ordinality as a(v, i))`.as('attachments_json'),
  ] as const;
}
