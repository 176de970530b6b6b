// The API key itself: how one is made, how it is recognised, and the hash that is all the store ever keeps.
import { createHash, randomBytes } from 'node:crypto';

/**
 * A fixed, greppable prefix (as GitHub's `ghp_`) lets secret scanners and people spot a leaked key.
 * @see https://github.blog/engineering/platform-security/behind-githubs-new-authentication-token-formats/
 */
export const API_KEY_PREFIX = 'mgk_';

/** 32 random bytes as base64url: exactly 43 characters after the prefix. */
const API_KEY_SHAPE = /^mgk_[A-Za-z0-9_-]{43}$/;

export function generateApiKey(): string {
  return API_KEY_PREFIX + randomBytes(32).toString('base64url');
}

/** Cheap check before touching the store, so random Bearer strings never cost a query. */
export function looksLikeApiKey(text: string): boolean {
  return API_KEY_SHAPE.test(text);
}

/**
 * SHA-256, hex. A fast unsalted hash is right here: the key carries 256 random bits, so there is no
 * dictionary to salt against and nothing to slow down (unlike passwords, which need scrypt/argon2).
 */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}
