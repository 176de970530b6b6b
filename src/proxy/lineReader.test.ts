// Proves the pre-login reader: lines with CRLF or LF, literals by size, a line past the limit refused without growing, and the bytes left over at detach.
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { LineReader, ProtocolInputError } from './lineReader.js';

describe('LineReader', () => {
  it('reads lines split across chunks, CRLF or bare LF, then an announced literal, and returns what is left at detach', async () => {
    const socket = new PassThrough();
    const reader = new LineReader(socket, 1024);
    socket.write('a1 LOGIN {5}\r');
    socket.write('\nalice b2 NOOP\r\nb3 ID NIL\nextra');
    expect((await reader.readLine())?.toString()).toBe('a1 LOGIN {5}');
    expect((await reader.readBytes(5))?.toString()).toBe('alice');
    expect((await reader.readLine())?.toString()).toBe(' b2 NOOP');
    expect((await reader.readLine())?.toString()).toBe('b3 ID NIL');
    expect(reader.pending).toBe(5);
    expect(reader.detach().toString()).toBe('extra');
  });

  it('refuses a line longer than the limit once that much arrived without a line end (it does not keep buffering)', async () => {
    const socket = new PassThrough();
    const reader = new LineReader(socket, 1024);
    const pending = reader.readLine();
    socket.write(Buffer.alloc(4096, 0x41));
    await expect(pending).rejects.toBeInstanceOf(ProtocolInputError);
    await expect(pending).rejects.toMatchObject({ kind: 'line_too_long' });
  });

  it('refuses a complete line that is over the limit', async () => {
    const socket = new PassThrough();
    const reader = new LineReader(socket, 16);
    socket.write(`${'x'.repeat(17)}\r\n`);
    await expect(reader.readLine()).rejects.toMatchObject({ kind: 'line_too_long' });
  });

  it('answers null when the client closes, for a line and for an unterminated literal', async () => {
    const socket = new PassThrough();
    const reader = new LineReader(socket, 1024);
    socket.write('a1 LOGIN {100}\r\nonly-part');
    expect((await reader.readLine())?.toString()).toBe('a1 LOGIN {100}');
    const literal = reader.readBytes(100);
    socket.end();
    expect(await literal).toBeNull();
    expect(await reader.readLine()).toBeNull();
  });
});

describe('LineReader back-pressure', () => {
  it('stops reading the socket while complete lines pile up past the limit, and reads on once they are consumed', async () => {
    const socket = new PassThrough();
    const reader = new LineReader(socket, 1024);
    for (let i = 0; i < 300; i++) socket.write(`a${i} NOOP\r\n`);
    await new Promise((r) => setImmediate(r));
    expect(socket.isPaused()).toBe(true);
    for (let i = 0; i < 300; i++) expect((await reader.readLine())?.toString()).toBe(`a${i} NOOP`);
    expect(socket.isPaused()).toBe(false);
  });
});
