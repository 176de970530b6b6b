// PostgreSQL connections: the URL's TLS and pool settings, a pool that returns numbers as numbers, and errors that name the fix.
import fs from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import { ErrorCode, MailgateError } from '../errors.js';
import { redactDatabaseUrl } from './databaseUrl.js';

/** libpq's sslmode values Mailgate honours; `prefer`/`allow` (try TLS, fall back to plain) have no safe equivalent. */
const SSL_MODES = ['disable', 'require', 'verify-ca', 'verify-full'] as const;
type SslMode = (typeof SSL_MODES)[number];

export const DEFAULT_POOL_SIZE = 10;

export interface PostgresSettings {
  /** What pg gets: the URL without the parameters Mailgate handles itself. */
  connectionString: string;
  ssl: false | ConnectionOptions;
  sslMode: SslMode;
  poolSize: number;
  /** The URL with its password replaced, for messages and logs. */
  redacted: string;
}

function invalid(redacted: string, text: string): MailgateError {
  return new MailgateError(ErrorCode.CONFIG_INVALID, `MAILGATE_DATABASE_URL ${redacted}: ${text}`);
}

/**
 * Reads the parameters libpq users know — `sslmode`, `sslrootcert` (a CA file, or `system` for the system's roots),
 * `sslcert`/`sslkey` (a client certificate) — and Mailgate's `pool_size`, and leaves the rest of the URL to pg.
 * Without `sslmode` the connection is plain, as pg does by default (fine for a local socket or 127.0.0.1).
 */
export function postgresSettings(url: string): PostgresSettings {
  const redacted = redactDatabaseUrl(url);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalid(redacted, 'not a valid URL; expected postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=verify-full (percent-encode special characters in the password)');
  }
  const params = parsed.searchParams;
  for (const key of ['ssl', 'uselibpqcompat', 'sslpassword']) {
    if (params.has(key)) throw invalid(redacted, `the parameter "${key}" is not supported: use sslmode=${SSL_MODES.join('|')} (with sslrootcert=FILE for a private CA)`);
  }
  const modeText = params.get('sslmode') ?? 'disable';
  if (!(SSL_MODES as readonly string[]).includes(modeText)) {
    throw invalid(redacted, `sslmode=${modeText} is not supported: use one of ${SSL_MODES.join(', ')} (verify-full for a server reached over a network)`);
  }
  const sslMode = modeText as SslMode;
  const rootCert = params.get('sslrootcert');
  const clientCert = params.get('sslcert');
  const clientKey = params.get('sslkey');
  if (sslMode === 'disable' && (rootCert || clientCert || clientKey)) {
    throw invalid(redacted, 'sslrootcert/sslcert/sslkey are given but TLS is off: add sslmode=verify-full (or require / verify-ca)');
  }
  if (sslMode === 'verify-ca' && (!rootCert || rootCert === 'system')) {
    throw invalid(redacted, 'sslmode=verify-ca needs sslrootcert=FILE, the CA that signed the server certificate (with a public CA use verify-full, which also checks the name)');
  }
  if (Boolean(clientCert) !== Boolean(clientKey)) throw invalid(redacted, 'a client certificate needs both sslcert=FILE and sslkey=FILE');

  const poolText = params.get('pool_size');
  const poolSize = poolText === null ? DEFAULT_POOL_SIZE : Number(poolText);
  if (!Number.isInteger(poolSize) || poolSize < 1 || poolSize > 200) throw invalid(redacted, `pool_size=${poolText} is not a whole number from 1 to 200`);

  let ssl: false | ConnectionOptions = false;
  if (sslMode !== 'disable') {
    ssl = {};
    if (rootCert && rootCert !== 'system') ssl.ca = readPem(redacted, 'sslrootcert', rootCert);
    if (clientCert && clientKey) {
      ssl.cert = readPem(redacted, 'sslcert', clientCert);
      ssl.key = readPem(redacted, 'sslkey', clientKey);
    }
    if (sslMode === 'require' && !ssl.ca) {
      // libpq: require encrypts without checking who answers — unless a CA is given, then it checks like verify-ca.
      ssl.rejectUnauthorized = false;
    } else if (sslMode === 'verify-ca' || sslMode === 'require') {
      ssl.rejectUnauthorized = true;
      ssl.checkServerIdentity = () => undefined;
    } else {
      ssl.rejectUnauthorized = true;
    }
  }
  for (const key of ['sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'pool_size']) params.delete(key);
  return { connectionString: parsed.toString(), ssl, sslMode, poolSize, redacted };
}

function readPem(redacted: string, param: string, file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (cause) {
    throw new MailgateError(ErrorCode.CONFIG_INVALID, `MAILGATE_DATABASE_URL ${redacted}: cannot read ${param}=${file} (${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}): check the path and that Mailgate's user may read it`, { cause });
  }
}

const INT8_OID = 20;
const NUMERIC_OID = 1700;

/**
 * count(*), sum() and bigint columns come back from PostgreSQL as text (they may exceed 2^53); SQLite gives numbers.
 * Mailgate's counts never come near 2^53, so both parse as numbers here, once, for every query on every connection.
 */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID || oid === NUMERIC_OID) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format ?? 'text');
  },
};

/** pg's client options for `settings`, shared by the pool and the change feed's LISTEN connection. */
export function clientConfig(settings: PostgresSettings): pg.ClientConfig {
  return {
    connectionString: settings.connectionString,
    ssl: settings.ssl,
    types: types as pg.CustomTypesConfig,
    application_name: 'mailgate',
    connectionTimeoutMillis: 10_000,
    keepAlive: true,
  };
}

export function createPool(settings: PostgresSettings): pg.Pool {
  const pool = new pg.Pool({ ...clientConfig(settings), max: settings.poolSize, idleTimeoutMillis: 30_000 });
  // An idle connection the server dropped (restart, failover) must not crash the process: the pool opens a new one
  // for the next query, and a query that fails says so to its caller.
  pool.on('error', () => {});
  return pool;
}

/** Connects once and disconnects, so a wrong host, password or TLS setting is reported at start with its fix. */
export async function checkConnection(pool: pg.Pool, settings: PostgresSettings): Promise<void> {
  try {
    const client = await pool.connect();
    client.release();
  } catch (cause) {
    throw connectionError(cause, settings);
  }
}

/** A pg connection failure as one line: what went wrong at which (redacted) URL, and what to change. */
export function connectionError(cause: unknown, settings: PostgresSettings): MailgateError {
  const err = cause as Error & { code?: string };
  const where = settings.redacted;
  const message = err?.message ?? String(cause);
  let text: string;
  if (/does not support SSL/i.test(message)) {
    text = `the server does not offer TLS, but sslmode=${settings.sslMode} requires it: enable ssl on the PostgreSQL server, or use sslmode=disable for a connection that stays on this machine`;
  } else if (err?.code === 'ECONNREFUSED') {
    text = 'nothing accepts connections at that host and port: start PostgreSQL, or correct the host and port';
  } else if (err?.code === 'ENOTFOUND' || err?.code === 'EAI_AGAIN') {
    text = 'the host name does not resolve: correct the host';
  } else if (/timeout/i.test(message)) {
    text = 'the server did not answer within 10 seconds: check the host, port and firewall';
  } else if (err?.code === '28P01' || err?.code === '28000') {
    text = `the server refused the login (${message}): check the user and password in the URL, and pg_hba.conf on the server`;
  } else if (err?.code === '3D000') {
    text = `${message}: create it (createdb NAME, or CREATE DATABASE) or correct the database name`;
  } else if (/self[- ]signed|unable to verify|unable to get local issuer|certificate/i.test(message) || /CERT|ALTNAME/.test(err?.code ?? '')) {
    text = `the server's certificate was not accepted (${message}): give its CA with sslrootcert=FILE, or connect by the name the certificate carries`;
  } else {
    text = message;
  }
  return new MailgateError(ErrorCode.STORE_UNAVAILABLE, `cannot connect to PostgreSQL at ${where}: ${text}`, { cause });
}

export interface ListenerEvents {
  /** A notification arrived, or the connection was (re)made and notifications may have been missed: read now. */
  wake(): void;
  problem(err: unknown, retryInMs: number): void;
}

/**
 * One dedicated connection that LISTENs on `channel` (a pooled one would be handed to queries), reconnecting with
 * back-off (1 s doubling to 30 s) when the server restarts or the network drops. Returns the function that stops it.
 */
export function listenForNotifications(settings: PostgresSettings, channel: string, events: ListenerEvents): () => Promise<void> {
  let client: pg.Client | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let delayMs = 1000;

  const retry = (err: unknown) => {
    if (stopped || timer) return;
    const current = client;
    client = undefined;
    current?.removeAllListeners();
    current?.on('error', () => {});
    void current?.end().catch(() => {});
    events.problem(err, delayMs);
    timer = setTimeout(() => {
      timer = undefined;
      void connect();
    }, delayMs);
    timer.unref();
    delayMs = Math.min(delayMs * 2, 30_000);
  };

  const connect = async () => {
    const next = new pg.Client(clientConfig(settings));
    client = next;
    next.on('notification', (message) => {
      if (message.channel === channel) events.wake();
    });
    next.on('error', (err) => retry(err));
    next.on('end', () => retry(new Error('the LISTEN connection closed')));
    try {
      await next.connect();
      await next.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
      if (stopped) return void (await next.end().catch(() => {}));
      delayMs = 1000;
      events.wake();
    } catch (err) {
      if (client === next) retry(connectionError(err, settings));
    }
  };
  void connect();

  return async () => {
    stopped = true;
    clearTimeout(timer);
    const current = client;
    client = undefined;
    current?.removeAllListeners();
    current?.on('error', () => {});
    await current?.end().catch(() => {});
  };
}
