// Passwords of relay and proxy accounts: generated ones (high entropy, checked with SHA-256 like API keys) or chosen ones (scrypt, like the admins').
import crypto from 'node:crypto';
import { hashPassword, verifyPassword } from './passwords.js';

/** Letters and digits only: the password fields of alarm panels and scanners refuse punctuation more often than not. */
const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';
/** 24 characters of a 57-letter alphabet: 140 bits, and short enough for devices that cap a password at 32. */
const GENERATED_LENGTH = 24;

export function generateAccountPassword(): string {
  let out = '';
  while (out.length < GENERATED_LENGTH) {
    for (const byte of crypto.randomBytes(32)) {
      // 57 * 4 = 228: bytes from 228 up would bias the first letters, so they are skipped.
      if (byte < 228 && out.length < GENERATED_LENGTH) out += ALPHABET[byte % 57];
    }
  }
  return out;
}

const sha256 = (value: string) => crypto.createHash('sha256').update(value, 'utf8').digest('hex');

/**
 * `sha256$<hex>` for a generated password: its 140 random bits leave nothing to guess, so a fast hash is right and a
 * login costs microseconds (a mail client may log in every minute). A chosen password gets scrypt (~50 ms).
 */
export async function hashAccountPassword(password: string, generated: boolean): Promise<string> {
  return generated ? `sha256$${sha256(password)}` : hashPassword(password);
}

export async function verifyAccountPassword(password: string, stored: string): Promise<boolean> {
  if (stored.startsWith('sha256$')) {
    const expected = Buffer.from(stored.slice('sha256$'.length), 'hex');
    const actual = Buffer.from(sha256(password), 'hex');
    return expected.length === actual.length && crypto.timingSafeEqual(expected, actual);
  }
  return verifyPassword(password, stored);
}

/** Why a chosen password is refused (generated ones always pass), or undefined. */
export function accountPasswordProblem(password: string, name: string): string | undefined {
  if (password.length < 12) return 'use at least 12 characters, or --generate-password';
  if (password.length > 512) return 'use at most 512 characters';
  if (/[\r\n\0]/.test(password)) return 'must not contain line breaks or NUL characters (mail protocols cannot carry them)';
  if (password.toLowerCase() === name.toLowerCase()) return 'must not be the account name';
  return undefined;
}
