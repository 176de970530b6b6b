// Validates a message submitted to the outbox (API or CLI): addresses, header injection, attachments and size; names the field of every problem.
import { z } from 'zod';
import { ErrorCode, MailgateError } from '../errors.js';
import { parseAddress } from './addresses.js';
import { PRIORITIES, type Priority } from './priority.js';

const addressList = z.union([z.string(), z.array(z.string())]);

export const messageInputSchema = z.strictObject({
  sender: z.string({ error: 'expected the name of a sender (see GET /api/v1/senders)' }),
  from: z.string().optional(),
  to: addressList,
  cc: addressList.optional(),
  bcc: addressList.optional(),
  replyTo: z.string().optional(),
  subject: z.string({ error: 'expected a subject (it may be empty: "")' }),
  text: z.string().optional(),
  html: z.string().optional(),
  attachments: z
    .array(
      z.strictObject({
        filename: z.string().min(1, { error: 'expected a file name' }),
        content: z.string({ error: 'expected the content, base64-encoded' }),
        contentType: z.string().optional(),
        /** Content-ID, to reference the attachment from HTML as cid:… */
        cid: z.string().optional(),
      }),
    )
    .optional(),
  headers: z.record(z.string(), z.string()).optional(),
  idempotencyKey: z.string().min(1).max(200, { error: 'expected at most 200 characters' }).optional(),
  /** high goes before normal and low, also when a server's sending limits pace the queue. */
  priority: z.enum(PRIORITIES, { error: 'expected one of high, normal, low' }).optional(),
});
export type MessageInput = z.infer<typeof messageInputSchema>;

export interface Mailbox {
  address: string;
  name: string | undefined;
}

/** The accepted message as stored: every address parsed, attachments still base64 (as received). */
export interface OutboxMessage {
  sender: string;
  from: Mailbox | undefined;
  to: Mailbox[];
  cc: Mailbox[];
  bcc: Mailbox[];
  replyTo: Mailbox | undefined;
  subject: string;
  text: string | undefined;
  html: string | undefined;
  attachments: { filename: string; content: string; contentType: string | undefined; cid: string | undefined }[];
  headers: Record<string, string>;
  /** Absent: normal (messages accepted before priorities existed). */
  priority?: Priority;
}

/** Headers Mailgate sets itself; a caller may not set them through `headers` (use the fields instead). */
const RESERVED_HEADERS = new Set(['from', 'to', 'cc', 'bcc', 'reply-to', 'subject', 'message-id', 'date', 'sender', 'return-path', 'content-type', 'content-transfer-encoding', 'mime-version']);
/**
 * Headers that belong to the transport and the receiving side (signatures, trace and resent fields, the top-level
 * disposition): a caller setting them would forge what servers add or break what they check.
 */
const TRANSPORT_HEADERS = new Set(['dkim-signature', 'domainkey-signature', 'authentication-results', 'received', 'received-spf', 'content-disposition', 'content-id', 'delivered-to', 'x-original-to']);
const TRANSPORT_HEADER_PREFIXES = ['resent-', 'arc-'];
/** `type/subtype` with optional parameters, no line breaks (RFC 2045 §5.1 token characters). */
const CONTENT_TYPE = /^[A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.+-]+(\s*;\s*[A-Za-z0-9!#$&^_.+-]+=("[^"\r\n]*"|[A-Za-z0-9!#$&^_.+-]+))*$/;
/** A Content-ID without its angle brackets: dot-atom text, optionally @domain (RFC 2392, RFC 5322 §3.6.4). */
const CONTENT_ID = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,200}(@[A-Za-z0-9.-]{1,200})?$/;
const HEADER_NAME = /^[!-9;-~]+$/; // RFC 5322 §2.2: printable ASCII except colon
const MAX_RECIPIENTS = 500;

export function parseMessageInput(raw: unknown, maxBytes: number): { message: OutboxMessage; idempotencyKey: string | undefined; size: number } {
  const parsed = messageInputSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.code === 'unrecognized_keys' ? `unknown field ${i.keys.map((k) => JSON.stringify(k)).join(', ')}` : i.message}`);
    throw new MailgateError(ErrorCode.INPUT_INVALID, problems.join('; '), { details: { problems } });
  }
  const input = parsed.data;
  const problems: string[] = [];
  const list = (field: string, value: string | string[] | undefined): Mailbox[] => {
    const items = value === undefined ? [] : Array.isArray(value) ? value : splitAddressList(value);
    return items.flatMap((item, i) => {
      const result = parseAddress(item);
      if (!result.ok) {
        problems.push(`${field}${Array.isArray(value) ? `[${i}]` : ''}: ${result.problem}`);
        return [];
      }
      return [{ address: result.address, name: result.name }];
    });
  };
  const one = (field: string, value: string | undefined): Mailbox | undefined => {
    if (value === undefined) return undefined;
    const result = parseAddress(value);
    if (!result.ok) {
      problems.push(`${field}: ${result.problem}`);
      return undefined;
    }
    return { address: result.address, name: result.name };
  };

  const to = list('to', input.to);
  const cc = list('cc', input.cc);
  const bcc = list('bcc', input.bcc);
  if (to.length + cc.length + bcc.length === 0 && problems.length === 0) problems.push('to: expected at least one recipient');
  if (to.length + cc.length + bcc.length > MAX_RECIPIENTS) problems.push(`to: at most ${MAX_RECIPIENTS} recipients per message`);
  const from = one('from', input.from);
  const replyTo = one('replyTo', input.replyTo);
  if (/[\r\n]/.test(input.subject)) problems.push('subject: contains a line break (header injection is refused)');
  if (input.text === undefined && input.html === undefined && !input.attachments?.length) problems.push('text: expected text, html or attachments');

  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(input.headers ?? {})) {
    if (!HEADER_NAME.test(name)) problems.push(`headers: ${JSON.stringify(name)} is not a valid header name`);
    else if (RESERVED_HEADERS.has(name.toLowerCase())) problems.push(`headers: ${name} is set by Mailgate; use the message's own field instead`);
    else if (TRANSPORT_HEADERS.has(name.toLowerCase()) || TRANSPORT_HEADER_PREFIXES.some((p) => name.toLowerCase().startsWith(p)))
      problems.push(`headers: ${name} belongs to the mail servers on the way (signatures, trace and resent fields), not to a submitted message`);
    else if (/[\r\n]/.test(value)) problems.push(`headers.${name}: contains a line break (header injection is refused)`);
    else headers[name] = value;
  }

  let size = Buffer.byteLength(input.subject) + Buffer.byteLength(input.text ?? '') + Buffer.byteLength(input.html ?? '');
  const attachments = (input.attachments ?? []).map((a, i) => {
    if (!/^[A-Za-z0-9+/\r\n]*={0,2}[\r\n]*$/.test(a.content)) problems.push(`attachments[${i}].content: expected base64`);
    if (/[\r\n"]/.test(a.filename)) problems.push(`attachments[${i}].filename: contains a line break or a quote`);
    if (a.contentType !== undefined && !CONTENT_TYPE.test(a.contentType)) problems.push(`attachments[${i}].contentType: expected a MIME type such as "application/pdf" or "text/csv; charset=utf-8"`);
    if (a.cid !== undefined && !CONTENT_ID.test(a.cid)) problems.push(`attachments[${i}].cid: expected a Content-ID such as "logo" or "logo@example.com" (letters, digits and .-_, no spaces or angle brackets)`);
    size += Math.floor((a.content.replace(/[\r\n=]/g, '').length * 3) / 4);
    return { filename: a.filename, content: a.content, contentType: a.contentType, cid: a.cid };
  });
  if (size > maxBytes) problems.push(`message: ${(size / 1048576).toFixed(1)} MB is over the ${(maxBytes / 1048576).toFixed(0)} MB limit (outbox.maxMessageMegabytes)`);

  if (problems.length > 0) throw new MailgateError(ErrorCode.INPUT_INVALID, problems.join('; '), { details: { problems } });
  return {
    message: { sender: input.sender, from, to, cc, bcc, replyTo, subject: input.subject, text: input.text, html: input.html, attachments, headers, ...(input.priority && input.priority !== 'normal' ? { priority: input.priority } : {}) },
    idempotencyKey: input.idempotencyKey,
    size,
  };
}

/** "a@x, B <b@y>" → two items; commas inside quotes or angle brackets do not split. */
function splitAddressList(value: string): string[] {
  const items: string[] = [];
  let current = '';
  let quoted = false;
  let angle = 0;
  for (const ch of value) {
    if (ch === '"') quoted = !quoted;
    else if (ch === '<' && !quoted) angle += 1;
    else if (ch === '>' && !quoted) angle -= 1;
    if ((ch === ',' || ch === ';') && !quoted && angle === 0) {
      if (current.trim()) items.push(current.trim());
      current = '';
    } else current += ch;
  }
  if (current.trim()) items.push(current.trim());
  return items;
}
