// One pooled nodemailer transport per SMTP server, so a burst reuses connections instead of opening a TLS session per message.
import tls from 'node:tls';
import nodemailer, { type Transporter } from 'nodemailer';
import type SMTPPool from 'nodemailer/lib/smtp-pool/index.js';
import type { ResolvedServer } from '../servers/model.js';
import type { TokenManager } from '../tokens/tokenManager.js';

interface Entry {
  transporter: Transporter<SMTPPool.SentMessageInfo>;
  key: string;
}

export class SmtpTransports {
  readonly #entries = new Map<string, Entry>();

  constructor(
    private readonly tokens: TokenManager,
    private readonly connectionsPerServer: number,
  ) {}

  /** The pooled transport for `server`; rebuilt when the server's settings change. */
  get(server: ResolvedServer): Transporter<SMTPPool.SentMessageInfo> {
    const key = JSON.stringify(server);
    const existing = this.#entries.get(server.name);
    if (existing?.key === key) return existing.transporter;
    existing?.transporter.close();
    // A server's `connections` limit (Microsoft 365: 3 per mailbox) caps this instance's pool.
    const transporter = nodemailer.createTransport(transportOptions(server, Math.min(this.connectionsPerServer, server.limits?.connections ?? Infinity)));
    if (server.auth.type === 'oauth2') {
      const credential = server.auth.credential;
      // nodemailer asks here for a token at each login, and again with renew=true after a failed XOAUTH2 login:
      // that is the "authentication failure forces one refresh and one retry" of the design, done by nodemailer.
      transporter.set('oauth2_provision_cb', (_user: string, renew: boolean, callback: (err: Error | null, token?: string, expires?: number) => void) => {
        this.tokens.getAccessToken(credential, { forceRefresh: renew }).then(
          (token) => callback(null, token.accessToken.reveal(), token.expiresAt ? Date.parse(token.expiresAt) : undefined),
          (err: Error) => callback(err),
        );
      });
    }
    this.#entries.set(server.name, { transporter, key });
    return transporter;
  }

  /** Closes the pool of one server (its settings changed or it was removed). */
  forget(name: string): void {
    this.#entries.get(name)?.transporter.close();
    this.#entries.delete(name);
  }

  closeAll(): void {
    for (const entry of this.#entries.values()) entry.transporter.close();
    this.#entries.clear();
  }
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
