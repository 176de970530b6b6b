// Raw MIME helpers: the header section found and unfolded without touching the body, encoded words decoded, Message-ID/Date added only when missing.
import { describe, expect, it } from 'vitest';
import { decodeWords, headerEnd, headerMailboxes, headerValue, missingHeaders, parseHeaderSection, summarize } from './rawMessage.js';

const raw = Buffer.from('From: =?UTF-8?B?SsO8cmdlbg==?= <j@example.com>\r\nTo: a@example.com,\r\n "Doe, B" <b@example.com>\r\nSubject: =?ISO-8859-1?Q?Gr=FC=DFe?= =?UTF-8?Q?_aus_K=C3=B6ln?=\r\n\r\nBody\r\nFrom: not-a-header@example.com\r\n');

describe('raw message headers', () => {
  it('finds the end of the header section and parses folded fields, never the body', () => {
    const end = headerEnd(raw);
    expect(raw.subarray(end).toString()).toBe('Body\r\nFrom: not-a-header@example.com\r\n');
    const fields = parseHeaderSection(raw.subarray(0, end));
    expect(fields.map((f) => f.name)).toEqual(['from', 'to', 'subject']);
    expect(headerMailboxes(headerValue(fields, 'to'))).toEqual([{ address: 'a@example.com', name: undefined }, { address: 'b@example.com', name: 'Doe, B' }]);
    expect(headerMailboxes(headerValue(fields, 'from'))).toEqual([{ address: 'j@example.com', name: 'Jürgen' }]);
    expect(headerEnd(Buffer.from('Subject: still coming\r\n'))).toBe(-1);
  });

  it('decodes RFC 2047 words, joining adjacent ones', () => {
    expect(decodeWords('=?ISO-8859-1?Q?Gr=FC=DFe?= =?UTF-8?Q?_aus_K=C3=B6ln?=')).toBe('Grüße aus Köln');
    expect(decodeWords('=?x-unknown?B?AAA=?= plain')).toBe('=?x-unknown?B?AAA=?= plain');
  });

  it('adds Message-ID and Date only when missing', () => {
    const fields = parseHeaderSection(Buffer.from('Message-ID: <a@b>\r\nSubject: x\r\n'));
    const date = new Date('2026-01-02T03:04:05Z');
    expect(missingHeaders(fields, { messageId: '<mg.1@example.com>', date })).toBe('Date: Fri, 02 Jan 2026 03:04:05 +0000\r\n');
    expect(missingHeaders(parseHeaderSection(Buffer.from('Date: Fri, 02 Jan 2026 03:04:05 +0000\r\n')), { messageId: '<mg.1@example.com>', date })).toBe('Message-ID: <mg.1@example.com>\r\n');
  });

  it('summarizes: envelope recipients named in no header are the Bcc', () => {
    const fields = parseHeaderSection(raw.subarray(0, headerEnd(raw)));
    const summary = summarize(fields, { from: 'j@example.com', to: ['a@example.com', 'B@example.com', 'hidden@example.com'] }, 'alerts', { account: 'scanner', client: '127.0.0.1' });
    expect(summary).toMatchObject({ subject: 'Grüße aus Köln', from: { address: 'j@example.com', name: 'Jürgen' }, bcc: [{ address: 'hidden@example.com' }] });
  });
});
