// Relay and proxy accounts as the API, the CLI and the web UI see them: validated input and views that never carry a password or its hash.
import { z } from 'zod';
import { ErrorCode, MailgateError } from '../errors.js';

export type AccountKind = 'relay' | 'proxy';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$/;
const nameSchema = z.string({ error: 'expected a name' }).regex(NAME, { error: 'expected 1-100 letters, digits, ".", "_", "@", "+" or "-" starting with a letter or digit (it is the username the program logs in with)' });

/** A password given by the caller, or `generatePassword: true` for one made by Mailgate and shown once. */
const passwordFields = {
  password: z.string({ error: 'expected the password as a string' }).optional(),
  generatePassword: z.boolean({ error: 'expected true or false' }).optional(),
};

export const relayAccountInputSchema = z.strictObject({
  name: nameSchema,
  sender: z.string({ error: 'expected the name of a sender' }).min(1, { error: 'expected the name of a sender' }),
  /** Addresses (alice@example.com) and domains (@example.com) the account may send as, besides its sender's From. */
  allowFrom: z.array(z.string({ error: 'expected an address or @domain' })).max(200, { error: 'expected at most 200 entries' }).optional(),
  ...passwordFields,
});
export const relayAccountPatchSchema = relayAccountInputSchema.omit({ name: true }).partial();

export const proxyAccountInputSchema = z.strictObject({
  name: nameSchema,
  server: z.string({ error: 'expected the name of an IMAP or POP3 server' }).min(1, { error: 'expected the name of an IMAP or POP3 server' }),
  ...passwordFields,
});
export const proxyAccountPatchSchema = proxyAccountInputSchema.omit({ name: true }).partial();

export type RelayAccountInput = z.infer<typeof relayAccountInputSchema>;
export type ProxyAccountInput = z.infer<typeof proxyAccountInputSchema>;

interface AccountViewBase {
  name: string;
  /** `generated`: made by Mailgate (checked with SHA-256); `chosen`: set by a person (scrypt). */
  passwordKind: 'generated' | 'chosen';
  createdAt: string;
  updatedAt: string;
  lastLoginAt: string | null;
}

export interface RelayAccountView extends AccountViewBase {
  sender: string;
  allowFrom: string[];
}

export interface ProxyAccountView extends AccountViewBase {
  server: string;
}

/** What add and password changes answer: the view, and the generated password once (never stored in clear). */
export interface WithPassword<V> {
  account: V;
  generatedPassword: string | undefined;
}

/** The outcome of one login at the relay or a proxy. */
export type LoginResult<A> =
  | { ok: true; account: A }
  /** Unknown account or wrong password (never said which): answer after `delayMs`. */
  | { ok: false; reason: 'invalid'; delayMs: number }
  /** Too many failures: refused without checking, for `retryAfterMs`. */
  | { ok: false; reason: 'locked'; retryAfterMs: number };

/** Zod problems as one INPUT_INVALID naming every field. */
export function inputProblems(issues: readonly z.core.$ZodIssue[]): MailgateError {
  const problems = issues.map((i) => `${i.path.join('.') || 'body'}: ${i.code === 'unrecognized_keys' ? `unknown field ${i.keys.map((k) => JSON.stringify(k)).join(', ')}` : i.message}`);
  return new MailgateError(ErrorCode.INPUT_INVALID, problems.join('; '), { details: { problems } });
}

/** `alice@example.com` or `@example.com`, lower-cased; undefined when it is neither. */
export function normalizeAllowEntry(entry: string): string | undefined {
  const value = entry.trim().toLowerCase();
  if (/^@[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/.test(value)) return value;
  if (/^[^\s@<>()",;:\\[\]]+@[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/.test(value)) return value;
  return undefined;
}

/** Whether `address` is one the account may use: its sender's From address, or an allow-list entry (address or @domain). */
export function addressAllowed(address: string, senderFrom: string, allowFrom: readonly string[]): boolean {
  const a = address.trim().toLowerCase();
  if (a === senderFrom.toLowerCase()) return true;
  const domain = a.slice(a.lastIndexOf('@'));
  return allowFrom.some((entry) => (entry.startsWith('@') ? entry === domain : entry === a));
}
