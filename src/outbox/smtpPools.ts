// The SMTP thread's side: one pooled nodemailer transport per server, and the messages the thread and the main thread exchange.
import tls from 'node:tls';
import nodemailer, { type Transporter } from 'nodemailer';
import type SMTPPool from 'nodemailer/lib/smtp-pool/index.js';
import type { ResolvedServer } from '../servers/model.js';

/** Mail options as they cross to the thread (structured clone): a raw message arrives as a Uint8Array. */
export type ThreadMail = SMTPPool.MailOptions;

/** A send error as it crosses back: nodemailer's fields that `classifySendError` reads. */
export interface ThreadSendError {
  message: string;
  code?: string;
  responseCode?: number;
  response?: string;
  command?: string;
  rejected?: string[];
  /** Set when the error is the main thread's own token error, handed to nodemailer at a login: the main thread keeps the original. */
  provisionId?: number;
}

export type ToSmtpThread =
  /** `server` is sent only when the thread has not seen these settings yet (else the thread uses what it has). */
  | { type: 'send'; id: number; name: string; server?: { settings: ResolvedServer; maxConnections: number }; mail: ThreadMail }
  | { type: 'token'; id: number; accessToken: string; expires: number | undefined }
  | { type: 'token'; id: number; error: string; provisionId: number }
  | { type: 'forget'; name: string }
  | { type: 'close'; id: number };

export type FromSmtpThread =
  | { type: 'sent'; id: number; response: string; rejected: string[] }
  | { type: 'failed'; id: number; error: ThreadSendError }
  /** nodemailer logs in (again: `renew` after a refused XOAUTH2 login) and needs the credential's access token. */
  | { type: 'needToken'; id: number; credential: string; renew: boolean }
  | { type: 'closed'; id: number };

type TokenCallback = (err: Error | null, token?: string, expires?: number) => void;

/** The pools, as the thread runs them; `askToken` reaches the main thread's token manager. */
export class SmtpPools {
  readonly #pools = new Map<string, Transporter<SMTPPool.SentMessageInfo>>();

  constructor(private readonly askToken: (credential: string, renew: boolean, callback: TokenCallback) => void) {}

  /** Replaces (or creates) the pool of one server: its settings changed. */
  configure(settings: ResolvedServer, maxConnections: number): void {
    this.forget(settings.name);
    const transporter = nodemailer.createTransport(transportOptions(settings, maxConnections));
    if (settings.auth.type === 'oauth2') {
      const credential = settings.auth.credential;
      // nodemailer asks here for a token at each login, and again with renew=true after a failed XOAUTH2 login:
      // that is the "authentication failure forces one refresh and one retry" of the design, done by nodemailer.
      transporter.set('oauth2_provision_cb', (_user: string, renew: boolean, callback: TokenCallback) => this.askToken(credential, renew, callback));
    }
    this.#pools.set(settings.name, transporter);
  }

  async send(name: string, mail: ThreadMail): Promise<{ response: string; rejected: string[] }> {
    const transporter = this.#pools.get(name);
    if (!transporter) throw Object.assign(new Error(`no SMTP pool for server ${name}`), { code: 'ECONNECTION' });
    const raw: unknown = mail.raw;
    if (raw instanceof Uint8Array && !Buffer.isBuffer(raw)) mail.raw = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    const info = await transporter.sendMail(mail);
    const rejected = ((info.rejected ?? []) as (string | { address: string })[]).map((r) => (typeof r === 'string' ? r : r.address));
    return { response: info.response, rejected };
  }

  forget(name: string): void {
    this.#pools.get(name)?.close();
    this.#pools.delete(name);
  }

  closeAll(): void {
    for (const transporter of this.#pools.values()) transporter.close();
    this.#pools.clear();
  }
}

/** The fields of a send error that cross back to the main thread (no stack, no socket, no secret: nodemailer hides the token). */
export function threadSendError(err: unknown): ThreadSendError {
  const e = (err ?? {}) as { message?: unknown; code?: unknown; responseCode?: unknown; response?: unknown; command?: unknown; rejected?: unknown; provisionId?: unknown };
  return {
    message: typeof e.message === 'string' ? e.message : String(err),
    ...(typeof e.code === 'string' ? { code: e.code } : {}),
    ...(typeof e.responseCode === 'number' ? { responseCode: e.responseCode } : {}),
    ...(typeof e.response === 'string' ? { response: e.response } : {}),
    ...(typeof e.command === 'string' ? { command: e.command } : {}),
    ...(Array.isArray(e.rejected) ? { rejected: e.rejected.map(String) } : {}),
    ...(typeof e.provisionId === 'number' ? { provisionId: e.provisionId } : {}),
  };
}

export function transportOptions(server: ResolvedServer, maxConnections: number): SMTPPool.Options {
  return {
    pool: true,
    host: server.host,
    port: server.port,
    secure: server.security === 'tls',
    requireTLS: server.security === 'starttls',
    ignoreTLS: server.security === 'none',
    maxConnections,
    // nodemailer reconnects every 100 messages by default; a reconnect costs a TLS handshake and a login.
    maxMessages: 1000,
    connectionTimeout: 15_000,
    greetingTimeout: 15_000,
    socketTimeout: 60_000,
    tls: {
      // tlsCa is trusted besides the system's CAs, not instead of them.
      ...(server.tlsCa ? { ca: [...tls.rootCertificates, server.tlsCa] } : {}),
      rejectUnauthorized: server.tlsRejectUnauthorized,
      minVersion: 'TLSv1.2',
    },
    ...(server.auth.type === 'oauth2'
      ? { auth: { type: 'OAuth2' as const, user: server.username ?? '' } }
      : server.auth.type === 'password'
        ? { auth: { user: server.username ?? '', pass: server.auth.password } }
        : {}),
  };
}
