// Decides what a failed SMTP attempt means for the message: retry on this server, move to the next one, or fail it — by codes, never by text.
import { isMailgateError } from '../errors.js';
import type { LimitName } from '../servers/model.js';

export type SendFailureKind =
  /** The connection or the server failed for now (network, TLS handshake timeouts, 4xx): back off, same server. */
  | 'transient'
  /** This server will not take mail from us as configured (authentication, token): try the next server. */
  | 'server'
  /** The message itself was refused (5xx to every recipient or to the data): fail it, keep the reply. */
  | 'permanent'
  /** The provider says a sending limit of the mailbox was reached: wait for its window; no attempt is spent. */
  | 'throttled';

export interface SendFailure {
  kind: SendFailureKind;
  message: string;
  responseCode: number | undefined;
  response: string | undefined;
  rejected: string[];
  /** For `throttled`: which limit the reply names (its window says how long to wait). */
  limit?: LimitName;
}

/**
 * The providers' throttling replies, recognised by code (text only where the code alone is ambiguous):
 * - Microsoft 365: `432 4.3.2` too many concurrent submissions; `554 5.2.0 … SubmissionQuotaExceeded` the message
 *   rate; `5.1.90` the daily recipient limit;
 * - Gmail / Google Workspace: `421 4.7.0` try again later (rate), `454 4.7.0` too many logins (rate),
 *   `550 5.4.5` the daily sending limit.
 */
export function throttlingLimit(responseCode: number | undefined, response: string): LimitName | undefined {
  if (responseCode === undefined) return undefined;
  const enhanced = /\b([245])\.(\d{1,3})\.(\d{1,3})\b/.exec(response)?.[0];
  if (enhanced === '5.1.90') return 'recipientsPerDay';
  if (responseCode === 432 && enhanced === '4.3.2') return 'connections';
  if (responseCode === 554 && enhanced === '5.2.0' && /SubmissionQuotaExceeded/i.test(response)) return 'messagesPerMinute';
  if (responseCode === 421 && enhanced === '4.7.0') return 'messagesPerMinute';
  if (responseCode === 454 && enhanced === '4.7.0' && /too many/i.test(response)) return 'messagesPerMinute';
  if (responseCode === 550 && enhanced === '5.4.5') return 'messagesPerDay';
  return undefined;
}

/** nodemailer's error codes (lib/errors) that are about reaching the server, not about the message. */
const CONNECTION_CODES = new Set(['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EDNS', 'ETLS', 'EPROTOCOL', 'ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE']);

export function classifySendError(err: unknown): SendFailure {
  if (isMailgateError(err)) {
    // The token could not be had: dead grant → other servers may use other credentials; provider down → later.
    const kind: SendFailureKind = err.code === 'TOKEN_REFRESH_FAILED' ? 'transient' : 'server';
    return { kind, message: err.message, responseCode: undefined, response: undefined, rejected: [] };
  }
  const e = err as { code?: string; responseCode?: number; response?: string; rejected?: unknown; message?: string; command?: string };
  const responseCode = typeof e.responseCode === 'number' ? e.responseCode : undefined;
  const rejected = Array.isArray(e.rejected) ? e.rejected.map(String) : [];
  const message = oneLine(e.response ?? e.message ?? String(err));
  const base = { responseCode, response: e.response ? oneLine(e.response) : undefined, rejected };
  const limit = throttlingLimit(responseCode, e.response ?? '');
  if (limit) return { kind: 'throttled', message: `the provider is throttling this mailbox (${limit}): ${message}`, ...base, limit };
  if (e.code === 'EAUTH' || e.code === 'ENOAUTH' || e.code === 'EOAUTH2') return { kind: 'server', message: `authentication failed: ${message}`, ...base };
  if (e.code === 'EENVELOPE' || e.code === 'EMESSAGE') {
    if (responseCode !== undefined && responseCode >= 500) return { kind: 'permanent', message: `the server refused the message: ${message}`, ...base };
    return { kind: 'transient', message: `the server deferred the message: ${message}`, ...base };
  }
  if (responseCode !== undefined && responseCode >= 400 && responseCode < 500) return { kind: 'transient', message: `the server answered ${message}`, ...base };
  if (responseCode !== undefined && responseCode >= 500) {
    // 5xx outside the envelope/data (e.g. to EHLO or MAIL FROM policy): this server will not take it; another may.
    return { kind: 'server', message: `the server answered ${message}`, ...base };
  }
  if (e.code && CONNECTION_CODES.has(e.code)) return { kind: 'transient', message: `cannot reach the server (${e.code}): ${message}`, ...base };
  return { kind: 'transient', message: `sending failed: ${message}`, ...base };
}

function oneLine(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > 500 ? `${line.slice(0, 497)}...` : line;
}
