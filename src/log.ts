// The structured JSON logger (pino), with a redaction list so that secrets never reach a log line.
import pino, { type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from './config/schema.js';

/**
 * Keys whose values are secrets wherever they appear (top level and one level down, plus request headers).
 * Values wrapped in `Secret` are already masked; this list is the net under that.
 */
const SECRET_KEYS = [
  'password',
  'pass',
  'secret',
  'clientSecret',
  'client_secret',
  'accessToken',
  'access_token',
  'refreshToken',
  'refresh_token',
  'idToken',
  'id_token',
  'token',
  'masterKey',
  'authorization',
  'code_verifier',
  'codeVerifier',
  'sasl',
];

export const REDACT_PATHS = [
  ...SECRET_KEYS,
  ...SECRET_KEYS.map((key) => `*.${key}`),
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
];

/**
 * Query parameters whose values are secrets or one-time credentials: the OAuth callback's authorization `code` and
 * `state` (RFC 6749 §4.1.2), the first-run `/setup?token=`, and tokens some clients put in URLs.
 */
const SECRET_QUERY_PARAMS = new Set(['code', 'state', 'token', 'access_token', 'id_token', 'refresh_token', 'client_secret', 'password', 'session_state']);

/** The URL with the values of secret query parameters replaced by `[redacted]` (names kept: they help reading a log). */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const pairs = url.slice(q + 1).split('&').map((pair) => {
    const eq = pair.indexOf('=');
    if (eq < 0) return pair;
    const name = pair.slice(0, eq);
    let decoded = name;
    try {
      decoded = decodeURIComponent(name.replace(/\+/g, ' '));
    } catch {
      // a malformed escape: compare the raw name
    }
    return SECRET_QUERY_PARAMS.has(decoded.toLowerCase()) ? `${name}=[redacted]` : pair;
  });
  return `${url.slice(0, q + 1)}${pairs.join('&')}`;
}

interface LoggedRequest {
  method?: string;
  url?: string;
  host?: string;
  ip?: string;
  socket?: { remotePort?: number } | null;
}

/**
 * The `req` of fastify's request log lines ("incoming request"): its own fields, with secret query values redacted.
 * Fastify lets a logger's own `req` serializer win over its default one.
 */
export function serializeRequest(req: LoggedRequest): Record<string, unknown> {
  return { method: req.method, url: typeof req.url === 'string' ? redactUrl(req.url) : undefined, host: req.host, remoteAddress: req.ip, remotePort: req.socket?.remotePort };
}

export type { Logger };

export type LogFormat = 'json' | 'text';

const TEXT_SKIP = new Set(['level', 'time', 'service', 'msg', 'pid', 'hostname']);

/** A value as a person reads it: bare when it is one word, JSON otherwise. */
function textValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"]+$/.test(value) ? value : JSON.stringify(value);
  if (value && typeof value === 'object' && 'message' in value && typeof (value as { message: unknown }).message === 'string') return JSON.stringify((value as { message: string }).message);
  return JSON.stringify(value);
}

/** One JSON log line as one line for a person at a terminal: `12:00:01 INFO  mailgate is serving url=http://…`. */
export function formatLogLine(json: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const time = typeof entry.time === 'string' ? entry.time.slice(11, 19) : '';
  const level = String(entry.level ?? '').toUpperCase().padEnd(5);
  const fields = Object.entries(entry)
    .filter(([key]) => !TEXT_SKIP.has(key))
    .map(([key, value]) => `${key}=${textValue(value)}`);
  return `${time} ${level} ${String(entry.msg ?? '')}${fields.length ? `  ${fields.join(' ')}` : ''}\n`;
}

/** A pino destination that writes `formatLogLine` lines (the redaction has happened already: it sees what JSON would). */
export function textDestination(out: NodeJS.WritableStream = process.stdout): DestinationStream {
  return { write: (line: string) => void out.write(formatLogLine(line.endsWith('\n') ? line.slice(0, -1) : line)) };
}

export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'mailgate' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: { req: serializeRequest },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
