// Proves the POP3 proxy's pre-login parsing: keywords in any case, PASS with spaces, AUTH's parts, strict SASL PLAIN, and binary lines told from text.
import { describe, expect, it } from 'vitest';
import { decodePlain, isBinary, parseCommand, waitText } from './commands.js';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

describe('parseCommand', () => {
  it('reads keywords in any case and keeps the whole rest of a PASS line, spaces included', () => {
    expect(parseCommand('capa')).toEqual({ verb: 'CAPA' });
    expect(parseCommand('User scanner-1')).toEqual({ verb: 'USER', name: 'scanner-1' });
    expect(parseCommand('PASS  two words ')).toEqual({ verb: 'PASS', password: ' two words ' });
    expect(parseCommand('auth plain')).toEqual({ verb: 'AUTH', mechanism: 'PLAIN', initialResponse: undefined });
    expect(parseCommand('AUTH PLAIN AGFAYg==')).toEqual({ verb: 'AUTH', mechanism: 'PLAIN', initialResponse: 'AGFAYg==' });
    expect(parseCommand('AUTH')).toEqual({ verb: 'AUTH', mechanism: undefined, initialResponse: undefined });
  });

  it('tells commands that need a login from unknown ones, and names what a malformed one lacks', () => {
    expect(parseCommand('RETR 1')).toEqual({ verb: 'NOT_YET', name: 'RETR' });
    expect(parseCommand('NOOP')).toEqual({ verb: 'NOT_YET', name: 'NOOP' });
    expect(parseCommand('XYZZY')).toEqual({ verb: 'UNKNOWN' });
    expect(parseCommand('USER')).toEqual({ verb: 'MALFORMED', reply: '-ERR USER needs a name: USER <account>' });
    expect(parseCommand('PASS')).toEqual({ verb: 'MALFORMED', reply: '-ERR PASS needs the password: PASS <password>' });
    expect(parseCommand('STLS now')).toEqual({ verb: 'MALFORMED', reply: '-ERR STLS takes no arguments' });
    expect(parseCommand('AUTH PLAIN a b')).toMatchObject({ verb: 'MALFORMED' });
  });
});

describe('decodePlain', () => {
  it('takes authzid NUL user NUL password with an empty or identical authzid', () => {
    expect(decodePlain(b64('\0alice\0pass word'))).toEqual({ ok: true, user: 'alice', password: 'pass word' });
    expect(decodePlain(b64('alice\0alice\0pw'))).toEqual({ ok: true, user: 'alice', password: 'pw' });
  });

  it('refuses another authorization identity, a wrong shape, and base64 that is not strict', () => {
    expect(decodePlain(b64('bob\0alice\0pw'))).toMatchObject({ ok: false, reply: expect.stringContaining('another user') });
    expect(decodePlain(b64('alice\0pw'))).toMatchObject({ ok: false, reply: expect.stringContaining('RFC 4616') });
    expect(decodePlain('=')).toMatchObject({ ok: false });
    expect(decodePlain('AGFsaWNlAHB3')).toMatchObject({ ok: true });
    expect(decodePlain('AGFsaWNlAHB3===')).toMatchObject({ ok: false, reply: '-ERR Invalid base64 in the AUTH PLAIN response' });
    expect(decodePlain('AGFs aWNlAHB3')).toMatchObject({ ok: false, reply: '-ERR Invalid base64 in the AUTH PLAIN response' });
  });
});

describe('isBinary', () => {
  it('accepts text and UTF-8 with tabs, refuses control bytes, DEL and bytes that are not UTF-8', () => {
    expect(isBinary(Buffer.from('USER jürgen\tx'))).toBe(false);
    expect(isBinary(Buffer.from([0x55, 0x00, 0x41]))).toBe(true);
    expect(isBinary(Buffer.from([0x41, 0x7f]))).toBe(true);
    expect(isBinary(Buffer.from([0x41, 0xff, 0xfe]))).toBe(true);
  });
});

it('says a lockout wait as seconds, then minutes, rounded up', () => {
  expect(waitText(1)).toBe('1 second');
  expect(waitText(45_000)).toBe('45 seconds');
  expect(waitText(15 * 60_000 - 10)).toBe('15 minutes');
});
