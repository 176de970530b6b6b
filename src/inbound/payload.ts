// Turns a raw inbound message into the JSON a webhook receives: parsed as far as it parses, attachments inline up to a limit, and reply acknowledgements recognised.
import { simpleParser, type AddressObject, type ParsedMail } from 'mailparser';
import type { OutboxRepository } from '../outbox/repository.js';

/** Attachments up to this total size travel inline (base64); larger ones are listed with their metadata only. */
export const INLINE_ATTACHMENT_LIMIT = 1024 * 1024;
/** Longest header value carried in `headers` (a hostile message may carry megabytes of headers). */
const MAX_HEADER_VALUE = 8 * 1024;
const MAX_BODY = 2 * 1024 * 1024;

export interface Mailbox {
  name: string;
  address: string;
}

export interface InboundMessage {
  messageId: string | null;
  date: string | null;
  subject: string | null;
  from: Mailbox[];
  to: Mailbox[];
  cc: Mailbox[];
  replyTo: Mailbox[];
  inReplyTo: string | null;
  references: string[];
  headers: Record<string, string>;
  text: string | null;
  html: string | null;
  attachments: { filename: string | null; contentType: string; size: number; contentId: string | null; content?: string; omitted?: 'too_large' }[];
  /** Size of the raw message in bytes, as fetched from the server. */
  size: number;
  /** Set when the MIME structure could not be parsed in full; the fields above hold what could be read. */
  parseError?: string;
}

export interface AckInfo {
  /** The outbox id of the message replied to, and what the sender gave when submitting it. */
  originalId: string;
  originalMessageId: string;
  idempotencyKey: string | null;
  replier: Mailbox | null;
  firstLine: string | null;
}

export interface WebhookBody {
  event: 'message' | 'ack';
  deliveryId: string;
  watcher: string;
  mailbox: { server: string; folder: string; uid: number | null; uidValidity: string | null };
  message: InboundMessage;
  ack?: AckInfo;
}

/** Parses what it can. mailparser copes with broken MIME and unknown charsets; anything it throws is reported, not fatal. */
export async function parseInbound(raw: Buffer): Promise<InboundMessage> {
  let parsed: ParsedMail | undefined;
  let parseError: string | undefined;
  try {
    parsed = await simpleParser(raw, { skipImageLinks: true, skipTextToHtml: true, skipTextLinks: true });
  } catch (err) {
    parseError = (err as Error).message?.slice(0, 300) ?? 'unparseable message';
  }
  if (!parsed) return { ...emptyMessage(raw.length), ...headerFallback(raw), ...(parseError ? { parseError } : {}) };

  let inlineBudget = INLINE_ATTACHMENT_LIMIT;
  const attachments = parsed.attachments.map((a) => {
    const base = { filename: a.filename ?? null, contentType: a.contentType, size: a.size, contentId: a.contentId ?? null };
    if (a.size <= inlineBudget) {
      inlineBudget -= a.size;
      return { ...base, content: a.content.toString('base64') };
    }
    return { ...base, omitted: 'too_large' as const };
  });
  const headers: Record<string, string> = {};
  for (const line of parsed.headerLines) {
    const value = line.line.slice(line.line.indexOf(':') + 1).trim();
    headers[line.key] = headers[line.key] ? `${headers[line.key]}, ${value}`.slice(0, MAX_HEADER_VALUE) : value.slice(0, MAX_HEADER_VALUE);
  }
  return {
    messageId: parsed.messageId ?? null,
    date: parsed.date && !Number.isNaN(parsed.date.getTime()) ? parsed.date.toISOString() : null,
    subject: parsed.subject ?? null,
    from: addresses(parsed.from),
    to: addresses(parsed.to),
    cc: addresses(parsed.cc),
    replyTo: addresses(parsed.replyTo),
    inReplyTo: parsed.inReplyTo ?? null,
    references: typeof parsed.references === 'string' ? [parsed.references] : (parsed.references ?? []),
    headers,
    text: parsed.text ? parsed.text.slice(0, MAX_BODY) : null,
    html: typeof parsed.html === 'string' ? parsed.html.slice(0, MAX_BODY) : null,
    attachments,
    size: raw.length,
    ...(parseError ? { parseError } : {}),
  };
}

/**
 * A reply to a message sent through the outbox names it in In-Reply-To or References (RFC 5322 §3.6.4); its
 * Message-ID is `<mg.<outbox id>@…>`. Returns the acknowledgement when one of them is ours.
 */
export async function findAcknowledgement(message: InboundMessage, outbox: OutboxRepository): Promise<AckInfo | undefined> {
  const candidates = [message.inReplyTo, ...message.references].filter((id): id is string => typeof id === 'string' && /^<mg\.[0-9a-z]+@/.test(id));
  if (candidates.length === 0) return undefined;
  const originals = await outbox.findByMessageIds([...new Set(candidates)]);
  // In-Reply-To names the message replied to directly; prefer it over older ones in References.
  const original = originals.find((o) => o.message_id === message.inReplyTo) ?? originals[0];
  if (!original) return undefined;
  return { originalId: original.id, originalMessageId: original.message_id, idempotencyKey: original.idempotency_label ?? (original.created_by === null ? original.idempotency_key : null), replier: message.from[0] ?? null, firstLine: firstReplyLine(message.text) };
}

/** The first line the replier wrote: above the quoted original, signature markers and "On … wrote:" lines excluded. */
export function firstReplyLine(text: string | null): string | null {
  if (!text) return null;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('>') || /^-{2,}\s*(Original Message|Ursprüngliche Nachricht)?/i.test(line) || /^(On|Am|Le) .+(wrote|schrieb|a écrit)\s*:$/i.test(line) || /^From: /i.test(line)) return null;
    return line.slice(0, 500);
  }
  return null;
}

export function matchesFilter(message: InboundMessage, filter: { from: string | undefined; subject: string | undefined }): boolean {
  if (filter.from) {
    const wanted = filter.from.toLowerCase();
    if (!message.from.some((m) => m.address.toLowerCase().includes(wanted))) return false;
  }
  if (filter.subject) {
    let pattern: RegExp;
    try {
      pattern = new RegExp(filter.subject, 'i');
    } catch {
      return false;
    }
    if (!pattern.test(message.subject ?? '')) return false;
  }
  return true;
}

function addresses(value: AddressObject | AddressObject[] | undefined): Mailbox[] {
  const list = value === undefined ? [] : Array.isArray(value) ? value : [value];
  return list.flatMap((a) => a.value).filter((v) => v.address).map((v) => ({ name: v.name ?? '', address: v.address! }));
}

function emptyMessage(size: number): InboundMessage {
  return { messageId: null, date: null, subject: null, from: [], to: [], cc: [], replyTo: [], inReplyTo: null, references: [], headers: {}, text: null, html: null, attachments: [], size };
}

/** When MIME parsing fails outright, the header block is still plain text: read Subject, Message-ID and From from it. */
function headerFallback(raw: Buffer): Partial<InboundMessage> {
  const head = raw.subarray(0, Math.min(raw.length, 64 * 1024)).toString('latin1').split(/\r?\n\r?\n/)[0] ?? '';
  const header = (name: string) => new RegExp(`^${name}:[ \\t]*(.*)$`, 'im').exec(head)?.[1]?.trim() ?? null;
  return { subject: header('Subject'), messageId: header('Message-ID') };
}
