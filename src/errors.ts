// The one catalog of Mailgate's error codes, and the error class that carries them.
// Decisions (retry? re-authorize? exit code?) are made on `code`, never on message text.

export const ErrorCode = {
  /** The configuration file or environment holds a value that fails validation. */
  CONFIG_INVALID: 'CONFIG_INVALID',
  /** The configuration file cannot be read or parsed as YAML. */
  CONFIG_UNREADABLE: 'CONFIG_UNREADABLE',
  /** No master key could be found (neither MAILGATE_MASTER_KEY nor the key file). */
  MASTER_KEY_MISSING: 'MASTER_KEY_MISSING',
  /** The master key is malformed (not 32 bytes of base64 / hex). */
  MASTER_KEY_MALFORMED: 'MASTER_KEY_MALFORMED',
  /** The master key does not match the key check value kept in the store. */
  MASTER_KEY_MISMATCH: 'MASTER_KEY_MISMATCH',
  /** An encrypted value cannot be decrypted (tampered, or written under an unknown key id). */
  SECRET_UNDECRYPTABLE: 'SECRET_UNDECRYPTABLE',
  /** The database cannot be opened or reached. */
  STORE_UNAVAILABLE: 'STORE_UNAVAILABLE',
  /** The database schema is newer than this build of Mailgate knows. */
  STORE_SCHEMA_TOO_NEW: 'STORE_SCHEMA_TOO_NEW',
  /** The listen address is taken or not bindable. */
  LISTEN_FAILED: 'LISTEN_FAILED',
  /** Input from an API caller or the CLI failed validation. */
  INPUT_INVALID: 'INPUT_INVALID',
  /** The named object does not exist. */
  NOT_FOUND: 'NOT_FOUND',
  /** The named object exists already. */
  ALREADY_EXISTS: 'ALREADY_EXISTS',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Process exit codes of the CLI: 2 for anything the operator must fix before Mailgate can start. */
export const EXIT_USAGE = 2;

export interface MailgateErrorOptions {
  cause?: unknown;
  /** Facts for logs and API callers (never secrets): the field, the provider's `error`, a reply code … */
  details?: Record<string, unknown>;
}

/** Every error Mailgate raises on purpose: a stable `code`, a message that names the problem and the fix. */
export class MailgateError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: MailgateErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MailgateError';
    this.code = code;
    this.details = options.details ?? {};
  }
}

export function isMailgateError(err: unknown, code?: ErrorCode): err is MailgateError {
  return err instanceof MailgateError && (code === undefined || err.code === code);
}
