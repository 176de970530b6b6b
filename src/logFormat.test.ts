// Proves the readable log format: one line per entry with time, level, message and the fields, secrets still redacted.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, formatLogLine, textDestination } from './log.js';

describe('text log format', () => {
  it('writes time, level, message and fields on one line, with the redaction JSON logs have', () => {
    let out = '';
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        out += chunk.toString();
        callback();
      },
    });
    const logger = createLogger('info', textDestination(sink));
    logger.info({ url: 'http://127.0.0.1:8025', password: 'hunter2-hunter2', note: 'two words' }, 'mailgate is serving');
    expect(out).toMatch(/^\d\d:\d\d:\d\d INFO  mailgate is serving {2}url=http:\/\/127\.0\.0\.1:8025 password="?\[redacted\]"? note="two words"\n$/);
    expect(out).not.toContain('hunter2');
  });

  it('leaves a line that is not JSON as it is', () => {
    expect(formatLogLine('plain words')).toBe('plain words');
  });
});
