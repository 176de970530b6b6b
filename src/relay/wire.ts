// smtp-server, adapted where its defaults do not say what the relay means: the enhanced status code a reply carries, and the TLS rule for AUTH.
import type net from 'node:net';
import type tls from 'node:tls';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { clientAddress } from '../listeners/connectionLimits.js';

/** `5.7.1 text`: a reply text that starts with its own enhanced status code (RFC 3463). */
const ENHANCED = /^([245]\.\d{1,3}\.\d{1,3}) (.*)$/s;

/** The 538 of RFC 4954 §6 for a password mechanism before TLS. */
export const ENCRYPTION_REQUIRED = '5.7.11 Encryption required for requested authentication mechanism';

export interface RelayWireOptions {
  /** Whether a client may send AUTH on this (not yet TLS) connection. */
  authAllowedInClear(client: string): boolean;
}

/**
 * The server, creating `RelayConnection`s. smtp-server maps each reply code to one enhanced code (550 → 5.1.1,
 * 452 → 4.2.2, …), which is wrong for most of the relay's refusals (550 5.7.1 "not allowed to send as", 450 4.7.0
 * rate limit); a handler's error text that starts with its own code now carries that code instead.
 */
export class RelayServer extends SMTPServer {
  constructor(
    options: SMTPServerOptions,
    readonly wire: RelayWireOptions,
  ) {
    super(options);
  }

  override connect(socket: net.Socket | tls.TLSSocket, socketOptions?: ConstructorParameters<typeof SMTPConnection>[2]): void {
    // The body of SMTPServer.connect, with our connection class.
    const connection = new RelayConnection(this, socket, socketOptions);
    this.connections.add(connection);
    connection.on('error', (err: Error) => this._onError(err));
    connection.on('connect', (data: Parameters<SMTPServer['_onClientConnect']>[0]) => this._onClientConnect(data));
    connection.init();
  }

  /** Connections not inside a DATA transfer or its commit: safe to end with 421 at shutdown. */
  idleConnections(): SMTPConnection[] {
    return [...this.connections].filter((c) => !c._dataStream);
  }
}

export class RelayConnection extends SMTPConnection {
  override send(code: number, data?: string | string[] | null, context?: string | false): void {
    const match = typeof data === 'string' && context !== false ? ENHANCED.exec(data) : null;
    if (match) return super.send(code, match[2], match[1]);
    super.send(code, data, context);
  }

  override _getEnhancedStatusCode(code: number, context?: string | false): string {
    if (typeof context === 'string' && /^[245]\.\d{1,3}\.\d{1,3}$/.test(context)) return this._useEnhancedStatusCodes() ? context : '';
    return super._getEnhancedStatusCode(code, context);
  }

  override handler_AUTH(command: Buffer, callback: () => void): void {
    // smtp-server's own check (allowInsecureAuth, server-wide) is off; ours knows loopback clients and answers 538 5.7.11.
    if (!this.secure && !(this._server as RelayServer).wire.authAllowedInClear(clientAddress(this.remoteAddress))) {
      this.send(538, ENCRYPTION_REQUIRED);
      return callback();
    }
    super.handler_AUTH(command, callback);
  }
}
