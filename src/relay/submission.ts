// Reads a DATA stream: counts it against the size limit, keeps the bytes, and parses only the header section (the body is never parsed).
import type { Readable } from 'node:stream';
import type { Mailbox } from '../outbox/message.js';
import { MAX_HEADER_BYTES, headerEnd, headerMailboxes, headerValue, parseHeaderSection, type HeaderField } from '../outbox/rawMessage.js';

export type Submission =
  | { kind: 'ok'; raw: Buffer; headers: HeaderField[]; from: Mailbox[] }
  | { kind: 'too_large' }
  | { kind: 'bad_headers'; problem: string };

/**
 * Consumes the whole stream (smtp-server answers only once it ended). Bytes past `maxBytes` are counted, not kept:
 * an oversized message costs the relay its limit in memory, never more.
 */
export async function readSubmission(stream: Readable & { sizeExceeded?: boolean }, maxBytes: number): Promise<Submission> {
  const chunks: Buffer[] = [];
  let size = 0;
  let head: Buffer | undefined = Buffer.alloc(0);
  let bodyAt = -1;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes || stream.sizeExceeded) {
      chunks.length = 0;
      head = undefined;
      continue;
    }
    chunks.push(chunk);
    if (head !== undefined && bodyAt < 0) {
      // Only the start of the message is looked at, and only until the empty line that ends the header section.
      head = Buffer.concat([head, chunk]);
      bodyAt = headerEnd(head);
      if (bodyAt < 0 && head.length > MAX_HEADER_BYTES) head = undefined;
    }
  }
  if (size > maxBytes || stream.sizeExceeded) return { kind: 'too_large' };
  const raw = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
  let section: Buffer;
  if (bodyAt >= 0) section = head!.subarray(0, bodyAt);
  else if (head !== undefined) section = head; // a message of headers only
  else return { kind: 'bad_headers', problem: `The header section is longer than ${MAX_HEADER_BYTES / 1024} KB or never ends` };
  const headers = parseHeaderSection(section);
  return { kind: 'ok', raw, headers, from: headerMailboxes(headerValue(headers, 'from')) };
}
