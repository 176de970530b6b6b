// The HTTP status of each Mailgate error code, shared by the API's JSON errors and the web UI's error pages.
import { ErrorCode, type ErrorCode as Code, type MailgateError } from '../errors.js';

export const STATUS_BY_CODE: Partial<Record<Code, number>> = {
  [ErrorCode.INPUT_INVALID]: 400,
  [ErrorCode.NOT_FOUND]: 404,
  [ErrorCode.ALREADY_EXISTS]: 409,
  [ErrorCode.STATE_CONFLICT]: 409,
  [ErrorCode.IDEMPOTENCY_KEY_REUSED]: 409,
  [ErrorCode.STORE_UNAVAILABLE]: 503,
  [ErrorCode.UNAUTHENTICATED]: 401,
  [ErrorCode.FORBIDDEN]: 403,
  [ErrorCode.CREDENTIAL_NOT_CONNECTED]: 409,
  [ErrorCode.CREDENTIAL_NEEDS_REAUTHORIZATION]: 409,
  [ErrorCode.CREDENTIAL_CLIENT_SECRET_INVALID]: 409,
  [ErrorCode.CREDENTIAL_DISABLED]: 409,
  [ErrorCode.TOKEN_REQUEST_REFUSED]: 409,
  // The provider could not be reached or failed: the gateway itself is fine, its upstream is not.
  [ErrorCode.TOKEN_REFRESH_FAILED]: 502,
};

/** Errors from an upstream: their message is about the provider, not about us, and safe to show. */
export const UPSTREAM_CODES = new Set<Code>([ErrorCode.TOKEN_REFRESH_FAILED]);

export function statusOfError(err: MailgateError): number {
  return STATUS_BY_CODE[err.code] ?? 500;
}
