// Proves the sealing of secrets at rest: AES-256-GCM with its full tag, a fresh nonce per value, the key id beside it, and the field bound in.
import { describe, expect, it } from 'vitest';
import { isMailgateError } from '../errors.js';
import { generateMasterKey, Keyring, parseMasterKey } from './keyring.js';

const keyA = parseMasterKey(generateMasterKey(), 'key A');
const keyB = parseMasterKey(generateMasterKey(), 'key B');

describe('Keyring', () => {
  it('opens what it sealed, and never seals the same value to the same text twice', () => {
    const ring = new Keyring([keyA]);
    const one = ring.seal('client-secret-value', 'credential:m365:clientSecret');
    const two = ring.seal('client-secret-value', 'credential:m365:clientSecret');
    expect(one).not.toBe(two);
    expect(one).not.toContain('client-secret-value');
    expect(one.split('.')[1]).toBe(keyA.id);
    expect(ring.open(one, 'credential:m365:clientSecret')).toBe('client-secret-value');
  });

  it('refuses a value moved to another field, or altered by one character', () => {
    const ring = new Keyring([keyA]);
    const sealed = ring.seal('refresh-token', 'credential:a:refreshToken');
    expect(() => ring.open(sealed, 'credential:b:refreshToken')).toThrow(/integrity check/);
    const parts = sealed.split('.');
    parts[3] = (parts[3]![0] === 'A' ? 'B' : 'A') + parts[3]!.slice(1);
    expect(() => ring.open(parts.join('.'), 'credential:a:refreshToken')).toThrow(/integrity check/);
  });

  it('refuses a value whose authentication tag was cut short, though the short tag is a true prefix of the real one', () => {
    const ring = new Keyring([keyA]);
    const sealed = ring.seal('refresh-token', 'credential:a:refreshToken');
    const parts = sealed.split('.');
    expect(Buffer.from(parts[4]!, 'base64url')).toHaveLength(16);
    for (const bytes of [4, 8, 12, 15]) {
      parts[4] = Buffer.from(sealed.split('.')[4]!, 'base64url').subarray(0, bytes).toString('base64url');
      expect(() => ring.open(parts.join('.'), 'credential:a:refreshToken'), `${bytes}-byte tag`).toThrow(/integrity check/);
    }
  });

  it('keeps opening values sealed under an older key after rotation, and names a key it does not have', () => {
    const old = new Keyring([keyA]).seal('v', 'ctx');
    const rotated = new Keyring([keyB, keyA]);
    expect(rotated.open(old, 'ctx')).toBe('v');
    expect(rotated.seal('v', 'ctx').split('.')[1]).toBe(keyB.id);
    try {
      new Keyring([keyB]).open(old, 'ctx');
      expect.unreachable();
    } catch (err) {
      expect(isMailgateError(err, 'SECRET_UNDECRYPTABLE')).toBe(true);
      expect((err as Error).message).toContain(keyA.id);
    }
  });

  it('accepts hex and base64 keys and refuses anything else without echoing it', () => {
    expect(parseMasterKey('ab'.repeat(32), 'x').key).toHaveLength(32);
    expect(parseMasterKey(Buffer.alloc(32, 7).toString('base64url'), 'x').key).toHaveLength(32);
    expect(() => parseMasterKey('not-a-key-but-a-password', 'MAILGATE_MASTER_KEY')).toThrow(/MAILGATE_MASTER_KEY is not a 256-bit key/);
    try {
      parseMasterKey('not-a-key-but-a-password', 'MAILGATE_MASTER_KEY');
    } catch (err) {
      expect((err as Error).message).not.toContain('not-a-key-but-a-password');
    }
  });
});
