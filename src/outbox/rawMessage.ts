// A message submitted as raw MIME (the SMTP relay): its header section read without parsing the body, the headers Mailgate adds when missing, and the summary people see.
import addressparser from 'nodemailer/lib/addressparser';
import type { Mailbox } from './message.js';

/** The header section of a message may not be longer than this; a message whose headers never end is refused. */
export const MAX_HEADER_BYTES = 256 * 1024;

export interface HeaderField {
  /** Lower-cased. */
  name: string;
  /** Unfolded, untrimmed of inner spaces, as it came (encoded words still encoded). */
  value: string;
}

/** SMTP envelope: what the relay was told in MAIL FROM and RCPT TO — the real recipients, Bcc included. */
export interface RawEnvelope {
  /** Empty for a null reverse-path (`MAIL FROM:<>`). */
  from: string;
  to: string[];
}

/** What the outbox keeps in `message` (JSON) for a raw message: enough for lists and the detail page, never the body. */
export interface RawMessageSummary {
  format: 'raw';
  sender: string;
  subject: string;
  from: Mailbox | undefined;
  to: Mailbox[];
  cc: Mailbox[];
  /** Envelope recipients named in no header (Bcc): delivered, never written into the message. */
  bcc: Mailbox[];
  /** Who handed it in: the relay account (or `unauthenticated`) and the client address. */
  submittedBy: { account: string; client: string };
}

/**
 * Where the header section ends: the offset of the first byte of the body (after the empty line), or -1 while the
 * empty line has not arrived. A message with no body at all ends its headers with the last CRLF.
 */
export function headerEnd(buffer: Buffer): number {
  const crlf = buffer.indexOf('\r\n\r\n');
  const lf = buffer.indexOf('\n\n');
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return crlf + 4;
  if (lf >= 0) return lf + 2;
  return -1;
}

/** Header fields of a header section (RFC 5322 §2.2.3 unfolding); lines that are not fields are skipped. */
export function parseHeaderSection(section: Buffer): HeaderField[] {
  const fields: HeaderField[] = [];
  // latin1 keeps every byte as one character: 8-bit header bytes survive to the decoder instead of becoming U+FFFD.
  for (const line of section.toString('latin1').split(/\r?\n/)) {
    if (line === '') continue;
    if ((line.startsWith(' ') || line.startsWith('\t')) && fields.length > 0) {
      fields[fields.length - 1]!.value += line;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    fields.push({ name: line.slice(0, colon).trim().toLowerCase(), value: line.slice(colon + 1).trim() });
  }
  return fields;
}

export function headerValue(fields: readonly HeaderField[], name: string): string | undefined {
  return fields.find((f) => f.name === name)?.value;
}

/** Addresses of an address header (`From`, `To`, `Cc`), groups flattened, display names decoded. */
export function headerMailboxes(value: string | undefined): Mailbox[] {
  if (value === undefined) return [];
  return addressparser(decodeUtf8(value), { flatten: true })
    .filter((a) => a.address)
    .map((a) => ({ address: a.address, name: a.name ? decodeWords(a.name) : undefined }));
}

/**
 * The header lines Mailgate puts in front of a raw message: Message-ID and Date, each only when the message has
 * none (RFC 5322 §3.6 requires Date; a Message-ID is what reply tracking follows).
 */
export function missingHeaders(fields: readonly HeaderField[], values: { messageId: string; date: Date }): string {
  let lines = '';
  if (headerValue(fields, 'message-id') === undefined) lines += `Message-ID: ${values.messageId}\r\n`;
  if (headerValue(fields, 'date') === undefined) lines += `Date: ${values.date.toUTCString().replace('GMT', '+0000')}\r\n`;
  return lines;
}

/** `<id@host>` from a Message-ID header value, or undefined when it holds none. */
export function messageIdOf(value: string | undefined): string | undefined {
  const match = value === undefined ? null : /<[^<>\s]+>/.exec(value);
  return match?.[0];
}

export function summarize(fields: readonly HeaderField[], envelope: RawEnvelope, sender: string, submittedBy: RawMessageSummary['submittedBy']): RawMessageSummary {
  const to = headerMailboxes(headerValue(fields, 'to'));
  const cc = headerMailboxes(headerValue(fields, 'cc'));
  const named = new Set([...to, ...cc].map((m) => m.address.toLowerCase()));
  return {
    format: 'raw',
    sender,
    subject: decodeWords(decodeUtf8(headerValue(fields, 'subject') ?? '')),
    from: headerMailboxes(headerValue(fields, 'from'))[0],
    to,
    cc,
    bcc: envelope.to.filter((address) => !named.has(address.toLowerCase())).map((address) => ({ address, name: undefined })),
    submittedBy,
  };
}

/** Header text read as latin1 back to UTF-8 (SMTPUTF8 headers are raw UTF-8; pure ASCII is unchanged). */
function decodeUtf8(latin1: string): string {
  return /[\u0080-\u00ff]/.test(latin1) ? Buffer.from(latin1, 'latin1').toString('utf8') : latin1;
}

/**
 * RFC 2047 encoded words (`=?UTF-8?B?…?=`, `=?ISO-8859-1?Q?…?=`) to text; whitespace between adjacent encoded words
 * is dropped (§6.2). An unknown charset leaves the word as it was.
 */
export function decodeWords(text: string): string {
  return text.replace(/(=\?[^?\s]+\?[BbQq]\?[^?\s]*\?=)\s+(?==\?[^?\s]+\?[BbQq]\?[^?\s]*\?=)/g, '$1').replace(/=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=/g, (word, charset: string, encoding: string, data: string) => {
    try {
      const bytes =
        encoding.toUpperCase() === 'B'
          ? Buffer.from(data, 'base64')
          : Buffer.from(data.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1');
      return new TextDecoder(charset.split('*')[0]!.toLowerCase()).decode(bytes);
    } catch {
      return word;
    }
  });
}
