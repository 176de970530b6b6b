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

export type { Logger };

export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'mailgate' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
