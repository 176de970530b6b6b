// The master keys: parsing, key ids, and AES-256-GCM sealing of secrets at rest with the key id stored beside each value.
import crypto from 'node:crypto';
import { ErrorCode, MailgateError } from '../errors.js';

/** Sealed format: `mg1.<keyId>.<nonce>.<ciphertext>.<tag>`, base64url parts. The version prefix leaves room for change. */
const FORMAT = 'mg1';
const NONCE_BYTES = 12; // 96-bit nonce: the GCM default (NIST SP 800-38D §8.2), random per value
const KEY_BYTES = 32;
// The full 128-bit GCM tag, pinned when opening: otherwise Node accepts a tag cut down to 4 bytes, and a forger then
// needs about 2^32 tries instead of 2^128 (NIST SP 800-38D §5.2.1.2, Appendix C; Node's DEP0182).
const TAG_BYTES = 16;

export interface MasterKey {
  readonly id: string;
  readonly key: Buffer;
}

/** Parses one key written as 64 hex characters or base64/base64url of 32 bytes. `origin` names where it came from, for errors. */
export function parseMasterKey(text: string, origin: string): MasterKey {
  const trimmed = text.trim();
  let key: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) key = Buffer.from(trimmed, 'hex');
  else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(trimmed)) key = Buffer.from(trimmed.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (!key || key.length !== KEY_BYTES) {
    // Never echo the value: it may be a real key with a typo.
    throw new MailgateError(
      ErrorCode.MASTER_KEY_MALFORMED,
      `${origin} is not a 256-bit key: expected 64 hex characters or 44 base64 characters (make one with \`openssl rand -base64 32\`)`,
    );
  }
  return { id: keyIdOf(key), key };
}

/** A short fingerprint that names a key without revealing it (HMAC, so it says nothing about the key's bits). */
export function keyIdOf(key: Buffer): string {
  return 'k' + crypto.createHmac('sha256', key).update('mailgate master key id').digest('hex').slice(0, 10);
}

export function generateMasterKey(): string {
  return crypto.randomBytes(KEY_BYTES).toString('base64');
}

/**
 * The current key seals new values; older keys (after a rotation) still open what they sealed.
 * `context` is bound as GCM additional data, so a sealed value moved to another field or row fails to open.
 */
export class Keyring {
  readonly current: MasterKey;
  readonly #byId: Map<string, MasterKey>;

  constructor(keys: readonly MasterKey[]) {
    if (keys.length === 0) throw new MailgateError(ErrorCode.MASTER_KEY_MISSING, 'no master key was given');
    this.current = keys[0]!;
    this.#byId = new Map(keys.map((k) => [k.id, k]));
  }

  has(keyId: string): boolean {
    return this.#byId.has(keyId);
  }

  seal(plaintext: string, context: string): string {
    const nonce = crypto.randomBytes(NONCE_BYTES);
    const cipher = crypto.createCipheriv('aes-256-gcm', this.current.key, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [FORMAT, this.current.id, nonce.toString('base64url'), body.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
  }

  open(sealed: string, context: string): string {
    const parts = sealed.split('.');
    const [format, keyId, nonce, body, tag] = parts;
    if (parts.length !== 5 || format !== FORMAT || !keyId || nonce === undefined || body === undefined || !tag) {
      throw new MailgateError(ErrorCode.SECRET_UNDECRYPTABLE, `a stored secret (${context}) is not in Mailgate's sealed format`);
    }
    const key = this.#byId.get(keyId);
    if (!key) {
      throw new MailgateError(
        ErrorCode.SECRET_UNDECRYPTABLE,
        `a stored secret (${context}) was sealed with master key ${keyId}, which is not configured: add that key after the current one in MAILGATE_MASTER_KEY or the key file`,
        { details: { keyId } },
      );
    }
    try {
      const decipher = crypto.createDecipheriv('aes-256-gcm', key.key, Buffer.from(nonce, 'base64url'), { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(context, 'utf8'));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
    } catch (cause) {
      throw new MailgateError(ErrorCode.SECRET_UNDECRYPTABLE, `a stored secret (${context}) failed its integrity check (altered in the database, or moved from another field)`, { cause });
    }
  }

  /** The key id a sealed value names, without opening it. */
  static keyIdOfSealed(sealed: string): string | undefined {
    const parts = sealed.split('.');
    return parts[0] === FORMAT ? parts[1] : undefined;
  }
}
