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
  /** The object exists but its state does not allow the action now (retry a sent message, cancel one being sent); the message says what to do. */
  STATE_CONFLICT: 'STATE_CONFLICT',
  /** An idempotency key this caller used already, within its lifetime, with another request body. */
  IDEMPOTENCY_KEY_REUSED: 'IDEMPOTENCY_KEY_REUSED',
  /** The API caller sent no API key, or one that is not valid. */
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  /** The API key is valid but lacks the scope the route needs. */
  FORBIDDEN: 'FORBIDDEN',
  /** The credential has no tokens yet: someone must connect it (sign in at the provider). */
  CREDENTIAL_NOT_CONNECTED: 'CREDENTIAL_NOT_CONNECTED',
  /** The refresh token is dead (expired, revoked, password changed, MFA required): sign in again. */
  CREDENTIAL_NEEDS_REAUTHORIZATION: 'CREDENTIAL_NEEDS_REAUTHORIZATION',
  /** The provider refused the client itself (wrong or expired client secret, unknown client ID). */
  CREDENTIAL_CLIENT_SECRET_INVALID: 'CREDENTIAL_CLIENT_SECRET_INVALID',
  /** The credential is disabled by an admin. */
  CREDENTIAL_DISABLED: 'CREDENTIAL_DISABLED',
  /** A token request failed for a reason that may pass (network, 5xx, 429); it is retried with backoff. */
  TOKEN_REFRESH_FAILED: 'TOKEN_REFRESH_FAILED',
  /** The provider answered the token request with an error that no retry will fix (invalid_scope, …). */
  TOKEN_REQUEST_REFUSED: 'TOKEN_REQUEST_REFUSED',
  /** The OAuth callback carried an unknown, used or expired state, or the sign-in was started elsewhere. */
  OAUTH_STATE_INVALID: 'OAUTH_STATE_INVALID',
  /** The wrong account signed in at the provider. */
  OAUTH_WRONG_ACCOUNT: 'OAUTH_WRONG_ACCOUNT',
  /** The provider sent the browser back with an error (access_denied, consent_required, …). */
  OAUTH_PROVIDER_ERROR: 'OAUTH_PROVIDER_ERROR',
  /** `server test` found a step that fails (the report says which and why). */
  SERVER_TEST_FAILED: 'SERVER_TEST_FAILED',
  /** A message followed with `send --wait` failed or was cancelled: the command ran, the outcome is bad (exit 3). */
  MESSAGE_FAILED: 'MESSAGE_FAILED',
  /** A sign-in followed by `credential authorize` was refused or went wrong at the provider (exit 3). */
  SIGN_IN_FAILED: 'SIGN_IN_FAILED',
  /** The command waited as long as it was told to and the outcome is still open (exit 4): a queued message, a sign-in nobody completed. */
  WAIT_TIMED_OUT: 'WAIT_TIMED_OUT',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Process exit codes of the CLI: 2 for anything the operator must fix before Mailgate can start. */
export const EXIT_USAGE = 2;
/** The command ran and what it followed ended badly (a message failed, a sign-in was refused). */
export const EXIT_OUTCOME_FAILED = 3;
/** The command ran and gave up waiting for an outcome that is still open. */
export const EXIT_TIMED_OUT = 4;

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
