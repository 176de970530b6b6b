// Proves the message input rules a caller meets at POST /api/v1/messages: transport headers refused, attachment types and Content-IDs validated, each problem named with its field.
import { describe, expect, it } from 'vitest';
import { isMailgateError } from '../errors.js';
import { parseMessageInput } from './message.js';

const base = { sender: 'alerts', to: 'duty@example.test', subject: 'Door open', text: 'Zone 3' };
const problemsOf = (input: unknown): string[] => {
  try {
    parseMessageInput(input, 1024 * 1024);
    return [];
  } catch (err) {
    if (isMailgateError(err, 'INPUT_INVALID')) return err.details.problems as string[];
    throw err;
  }
};

describe('parseMessageInput', () => {
  it('refuses headers that belong to the transport (signatures, trace, resent, top-level disposition) and keeps ordinary ones', () => {
    for (const name of ['DKIM-Signature', 'Received', 'Resent-From', 'ARC-Seal', 'Authentication-Results', 'Content-Disposition']) {
      expect(problemsOf({ ...base, headers: { [name]: 'x' } })).toEqual([`headers: ${name} belongs to the mail servers on the way (signatures, trace and resent fields), not to a submitted message`]);
    }
    const { message } = parseMessageInput({ ...base, headers: { 'X-Alarm-Id': 'A-42', 'List-Unsubscribe': '<mailto:stop@example.test>', 'Auto-Submitted': 'auto-generated' } }, 1024 * 1024);
    expect(message.headers).toEqual({ 'X-Alarm-Id': 'A-42', 'List-Unsubscribe': '<mailto:stop@example.test>', 'Auto-Submitted': 'auto-generated' });
  });

  it('validates attachment content types and Content-IDs instead of handing them to the MIME builder', () => {
    const content = Buffer.from('x').toString('base64');
    expect(problemsOf({ ...base, attachments: [{ filename: 'a.pdf', content, contentType: 'application/pdf' }, { filename: 'b.csv', content, contentType: 'text/csv; charset="utf-8"' }, { filename: 'logo.png', content, contentType: 'image/png', cid: 'logo@example.test' }] })).toEqual([]);
    expect(problemsOf({ ...base, attachments: [{ filename: 'a', content, contentType: 'text/html\r\nX-Injected: 1' }] })).toEqual(['attachments[0].contentType: expected a MIME type such as "application/pdf" or "text/csv; charset=utf-8"']);
    expect(problemsOf({ ...base, attachments: [{ filename: 'a', content, contentType: 'pdf' }] })[0]).toMatch(/^attachments\[0\]\.contentType:/);
    expect(problemsOf({ ...base, attachments: [{ filename: 'a', content, cid: '<logo>' }, { filename: 'b', content, cid: 'two words' }] })).toEqual([
      'attachments[0].cid: expected a Content-ID such as "logo" or "logo@example.com" (letters, digits and .-_, no spaces or angle brackets)',
      'attachments[1].cid: expected a Content-ID such as "logo" or "logo@example.com" (letters, digits and .-_, no spaces or angle brackets)',
    ]);
  });
});
