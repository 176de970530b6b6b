// Retention: drops the bodies of finished messages after some days, and deletes old outbox rows, inbound deliveries and audit entries — run hourly by `serve` and by `mailgate prune`.
import type { Config } from '../config/load.js';
import type { Store } from '../store/store.js';
import type { OutboxMessage } from '../outbox/message.js';

/** Statuses after which a message no longer needs its body (a failed one can be retried until the body is dropped). */
const FINISHED = ['sent', 'failed', 'cancelled'];
const BATCH = 200;

export interface PruneReport {
  /** Messages whose text, HTML, attachments and raw MIME were dropped (subject, addresses and history stay). */
  bodiesDropped: number;
  messagesDeleted: number;
  /** Inbound delivery rows deleted (IMAP), or cleared of subject and sender (POP3: the row remembers the UIDL as delivered). */
  inboundDeleted: number;
  inboundCleared: number;
  auditDeleted: number;
}

export async function prune(store: Store, retention: Config['retention'], now = Date.now()): Promise<PruneReport> {
  const before = (ms: number) => new Date(now - ms).toISOString();
  const report: PruneReport = { bodiesDropped: 0, messagesDeleted: 0, inboundDeleted: 0, inboundCleared: 0, auditDeleted: 0 };
  const db = store.db;

  // Bodies, in batches: a 25 MB message is read and rewritten one at a time, not all at once.
  for (;;) {
    const rows = await db
      .selectFrom('outbox')
      .select(['id', 'message'])
      .where('status', 'in', FINISHED)
      .where('body_pruned_at', 'is', null)
      .where('updated_at', '<', before(retention.messageBodyMs))
      .limit(BATCH)
      .execute();
    if (rows.length === 0) break;
    const at = new Date(now).toISOString();
    for (const row of rows) {
      await db.updateTable('outbox').set({ message: withoutBody(row.message), raw: null, body_pruned_at: at }).where('id', '=', row.id).execute();
    }
    report.bodiesDropped += rows.length;
  }

  const messages = await db.deleteFrom('outbox').where('status', 'in', FINISHED).where('updated_at', '<', before(retention.messageMs)).executeTakeFirst();
  report.messagesDeleted = Number(messages.numDeletedRows);

  // IMAP deliveries are found again by UID checkpoint, so old finished rows can go; a POP3 row is how Mailgate knows a
  // UIDL was delivered while the message may still be in the mailbox: it stays, without subject and sender.
  const inboundCutoff = before(retention.inboundMs);
  const inbound = await db.deleteFrom('inbound_deliveries').where('status', 'in', ['delivered', 'skipped']).where('updated_at', '<', inboundCutoff).where('mailbox_key', 'not like', 'pop3:%').executeTakeFirst();
  report.inboundDeleted = Number(inbound.numDeletedRows);
  const cleared = await db
    .updateTable('inbound_deliveries')
    .set({ subject: null, from_address: null, message_id: null })
    .where('status', 'in', ['delivered', 'skipped'])
    .where('updated_at', '<', inboundCutoff)
    .where('mailbox_key', 'like', 'pop3:%')
    .where((eb) => eb.or([eb('subject', 'is not', null), eb('from_address', 'is not', null), eb('message_id', 'is not', null)]))
    .executeTakeFirst();
  report.inboundCleared = Number(cleared.numUpdatedRows);

  const audit = await db.deleteFrom('audit_log').where('at', '<', before(retention.auditMs)).executeTakeFirst();
  report.auditDeleted = Number(audit.numDeletedRows);
  return report;
}

/** The stored JSON without what the message said: subject, addresses and attachment names stay for people to recognise it. */
function withoutBody(json: string): string {
  const message = JSON.parse(json) as Partial<OutboxMessage> & Record<string, unknown>;
  const { text: _text, html: _html, ...rest } = message;
  return JSON.stringify({ ...rest, ...(Array.isArray(message.attachments) ? { attachments: message.attachments.map((a) => ({ ...a, content: '' })) } : {}), bodyDropped: true });
}
