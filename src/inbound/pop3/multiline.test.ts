// Proves the multi-line decoder on every way TCP can cut a body: dot-unstuffing, the terminator, raw bytes kept.
import { describe, expect, it } from 'vitest';
import { MultilineDecoder } from './multiline.js';

/** Feeds `wire` cut at the given offsets; returns the body and what came after the terminator. */
function decode(wire: Buffer, cuts: number[] = []): { body: Buffer; rest: Buffer | undefined } {
  const decoder = new MultilineDecoder();
  let rest: Buffer | undefined;
  let from = 0;
  for (const at of [...cuts, wire.length]) {
    rest = decoder.push(wire.subarray(from, at));
    from = at;
    if (rest !== undefined) {
      rest = Buffer.concat([rest, wire.subarray(from)]);
      break;
    }
  }
  return { body: decoder.result(), rest };
}

describe('MultilineDecoder', () => {
  // the message has a line ".leading dot" and a line "." of its own: both arrive stuffed
  const wire = Buffer.from('Subject: x\r\n\r\n..leading dot\r\n..\r\nend\r\n.\r\nNEXT', 'latin1');
  const body = 'Subject: x\r\n\r\n.leading dot\r\n.\r\nend\r\n';

  it('removes the stuffed dot, keeps CRLF, and stops at CRLF.CRLF leaving the next bytes', () => {
    const { body: got, rest } = decode(wire);
    expect(got.toString('latin1')).toBe(body);
    expect(rest?.toString()).toBe('NEXT');
  });

  it('gives the same bytes however the body is cut into chunks', () => {
    const expected = decode(wire).body;
    for (let a = 0; a <= wire.length; a++) {
      for (let b = a; b <= wire.length; b += 3) {
        expect(decode(wire, [a, b]).body.equals(expected)).toBe(true);
      }
    }
    expect(decode(wire, Array.from({ length: wire.length }, (_, i) => i)).body.equals(expected)).toBe(true);
  });

  it('ends an empty body at once', () => {
    const { body: got, rest } = decode(Buffer.from('.\r\n'));
    expect(got.length).toBe(0);
    expect(rest?.length).toBe(0);
  });

  it('keeps 8-bit bytes and bare CRs untouched', () => {
    const raw = Buffer.from([0xff, 0x00, 0x0d, 0x41, 0x0d, 0x0a, 0x2e, 0x0d, 0x42, 0x0d, 0x0a, 0x2e, 0x0d, 0x0a]);
    // ".\rB" is a stuffed line starting with CR: its dot goes, the CR stays
    expect([...decode(raw).body]).toEqual([0xff, 0x00, 0x0d, 0x41, 0x0d, 0x0a, 0x0d, 0x42, 0x0d, 0x0a]);
  });

  it('waits for more when the body has not ended', () => {
    const decoder = new MultilineDecoder();
    expect(decoder.push(Buffer.from('line\r\n.'))).toBeUndefined();
    expect(decoder.push(Buffer.from('\r'))).toBeUndefined();
    expect(decoder.push(Buffer.from('\n'))?.length).toBe(0);
    expect(decoder.result().toString()).toBe('line\r\n');
  });

  it('decodes a 20 MB body without line breaks in linear time', () => {
    const big = Buffer.alloc(20 * 1024 * 1024, 0x61);
    const decoder = new MultilineDecoder();
    const started = performance.now();
    for (let i = 0; i < big.length; i += 16 * 1024) decoder.push(big.subarray(i, i + 16 * 1024));
    decoder.push(Buffer.from('\r\n.\r\n'));
    expect(decoder.done).toBe(true);
    expect(decoder.result().length).toBe(big.length + 2);
    expect(performance.now() - started).toBeLessThan(10_000); // quadratic decoding of 20 MB would take minutes
  });
});
