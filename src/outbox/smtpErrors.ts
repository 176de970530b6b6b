// Decides what a failed SMTP attempt means for the message: retry on this server, move to the next one, or fail it — by codes, never by text.
import { isMailgateError } from '../errors.js';

export type SendFailureKind =
  /** The connection or the server failed for now (network, TLS handshake timeouts, 4xx): back off, same server. */
  | 'transient'
  /** This server will not take mail from us as configured (authentication, token): try the next server. */
  | 'server'
  /** The message itself was refused (5xx to every recipient or to the data): fail it, keep the reply. */
  | 'permanent';

export interface SendFailure {
  kind: SendFailureKind;
  message: string;
  responseCode: number | undefined;
  response: string | undefined;
  rejected: string[];
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
