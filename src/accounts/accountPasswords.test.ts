// Proves the passwords of relay and proxy accounts: generated ones are 24 unbiased letters and digits without look-alikes,
// stored as SHA-256; chosen ones go through scrypt; each verifies only its own password; weak chosen ones are refused.
import { describe, expect, it } from 'vitest';
import { accountPasswordProblem, generateAccountPassword, hashAccountPassword, verifyAccountPassword } from './accountPasswords.js';

const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';

describe('generated account passwords', () => {
  it('are 24 characters of the 57-letter alphabet without look-alikes (0 O 1 l I), all different', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const password = generateAccountPassword();
      expect(password).toMatch(/^[A-HJ-NP-Za-km-z2-9]{24}$/);
      seen.add(password);
    }
    expect(seen.size).toBe(1000);
    expect(ALPHABET).toHaveLength(57);
    expect(ALPHABET).not.toMatch(/[0O1lI]/);
    // 24 × log2(57) ≈ 140 bits.
    expect(24 * Math.log2(ALPHABET.length)).toBeGreaterThan(139);
  });

  it('use every letter of the alphabet about equally often (no modulo bias)', () => {
    const counts = new Map<string, number>();
    const n = 10_000;
    for (let i = 0; i < n; i++) for (const c of generateAccountPassword()) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect([...counts.keys()].sort().join('')).toBe([...ALPHABET].sort().join(''));
    // ≈ 4,210 each (σ ≈ 65, so ±6 % is ~4σ); keeping bytes 228-255 would give the first 28 letters ~11 % more, the rest ~11 % less
    const expected = (n * 24) / 57;
    for (const [c, count] of counts) {
      expect(count, c).toBeGreaterThan(expected * 0.94);
      expect(count, c).toBeLessThan(expected * 1.06);
    }
  });
});

describe('account password hashes', () => {
  it('store a generated password as sha256$<hex> that verifies it and nothing else', async () => {
    const password = generateAccountPassword();
    const stored = await hashAccountPassword(password, true);
    expect(stored).toMatch(/^sha256\$[0-9a-f]{64}$/);
    expect(stored).not.toContain(password);
    expect(await verifyAccountPassword(password, stored)).toBe(true);
    expect(await verifyAccountPassword(`${password}x`, stored)).toBe(false);
    expect(await verifyAccountPassword(password.slice(1), stored)).toBe(false);
  });

  it('store a chosen password with salted scrypt (two hashes of one password differ) that verifies it and nothing else', async () => {
    const password = 'correct horse battery staple';
    const stored = await hashAccountPassword(password, false);
    expect(stored).toMatch(/^scrypt\$32768\$8\$1\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$/);
    expect(await hashAccountPassword(password, false)).not.toBe(stored);
    expect(await verifyAccountPassword(password, stored)).toBe(true);
    expect(await verifyAccountPassword('correct horse battery stapler', stored)).toBe(false);
    // A SHA-256 of the same password is not accepted where scrypt is stored, nor the other way round.
    expect(await verifyAccountPassword(password, await hashAccountPassword('another password entirely', true))).toBe(false);
    expect(await verifyAccountPassword(password, 'not-a-hash')).toBe(false);
  });

  it('refuse weak chosen passwords with the reason and the fix', () => {
    expect(accountPasswordProblem('short', 'scanner')).toBe('use at least 12 characters, or --generate-password');
    expect(accountPasswordProblem('Scanner-Office', 'scanner-office')).toBe('must not be the account name');
    expect(accountPasswordProblem('line one\nline two', 'scanner')).toBe('must not contain line breaks or NUL characters (mail protocols cannot carry them)');
    expect(accountPasswordProblem('x'.repeat(513), 'scanner')).toBe('use at most 512 characters');
    expect(accountPasswordProblem('a good long passphrase', 'scanner')).toBeUndefined();
  });
});
