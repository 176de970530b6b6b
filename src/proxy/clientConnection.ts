// One client of a proxy before and after login: its socket (upgraded in place by STARTTLS/STLS), address, whether it may send a password yet, and its reader.
import type net from 'node:net';
import tls from 'node:tls';
import type { ListenerConfig } from '../config/load.js';
import type { ListenerHandle } from '../listeners/registry.js';
import { LineReader } from './lineReader.js';
import { UPSTREAM_BUFFER_BYTES } from './upstream.js';

/** Longer than any command before login needs (RFC 9051 recommends servers accept 8 KB lines); a longer one is hostile. */
export const MAX_PRELOGIN_LINE_BYTES = 64 * 1024;
const TLS_HANDSHAKE_TIMEOUT_MS = 15_000;

export class ClientConnection {
  #socket: net.Socket;
  #reader: LineReader;
  #secure: boolean;
  #authenticated = false;
  #loginsInProgress = 0;

  constructor(
    socket: net.Socket,
    readonly address: string,
    readonly loopback: boolean,
    readonly listener: ListenerConfig,
    private readonly secureContext: tls.SecureContext | undefined,
    private readonly handle: ListenerHandle,
  ) {
    this.#socket = socket;
    this.#secure = socket instanceof tls.TLSSocket;
    this.#reader = new LineReader(socket, MAX_PRELOGIN_LINE_BYTES);
  }

  get socket(): net.Socket {
    return this.#socket;
  }

  get reader(): LineReader {
    return this.#reader;
  }

  get secure(): boolean {
    return this.#secure;
  }

  get isAuthenticated(): boolean {
    return this.#authenticated;
  }

  /** STARTTLS/STLS may be offered: the listener does STARTTLS and this connection is not encrypted yet. */
  get canStartTls(): boolean {
    return this.listener.tls === 'starttls' && !this.#secure && this.secureContext !== undefined;
  }

  /**
   * A password may cross this connection: it is encrypted, or the client is on this machine, or the listener
   * allows passwords in clear (LAN devices that cannot do TLS; the README says what that risks).
   */
  get mayLogin(): boolean {
    return this.#secure || this.loopback || this.listener.allowInsecureAuth;
  }

  write(data: string | Buffer): void {
    if (!this.#socket.destroyed && this.#socket.writable) this.#socket.write(data);
  }

  /**
   * Turns the connection into TLS after the "go ahead" reply was written. Bytes the client sent after the STARTTLS
   * command, before the handshake, are dropped (RFC 3207 §4.2 / RFC 9051 §6.2.1: command injection, CVE-2011-0411).
   */
  async startTls(): Promise<void> {
    if (!this.secureContext) throw new Error('no TLS certificate on this listener');
    this.#reader.detach();
    const secure = new tls.TLSSocket(this.#socket, { isServer: true, secureContext: this.secureContext, highWaterMark: UPSTREAM_BUFFER_BYTES } as tls.TLSSocketOptions);
    await waitForHandshake(secure);
    secure.setNoDelay(true);
    this.#socket = secure;
    this.#secure = true;
    this.#reader = new LineReader(secure, MAX_PRELOGIN_LINE_BYTES);
  }

  /**
   * Runs part of a login the proxy works on for the client (the password check with its guard delay, the upstream
   * login): the client's silence meanwhile is waiting for our answer, not idleness (see the listener's idle timer).
   */
  async loggingIn<T>(work: () => Promise<T>): Promise<T> {
    this.#loginsInProgress += 1;
    try {
      return await work();
    } finally {
      this.#loginsInProgress -= 1;
    }
  }

  get isLoggingIn(): boolean {
    return this.#loginsInProgress > 0;
  }

  /** The login succeeded: counted as an authenticated session of the listener. */
  markAuthenticated(): void {
    if (this.#authenticated) return;
    this.#authenticated = true;
    this.handle.authenticated();
  }

  close(): void {
    this.#socket.destroy();
  }
}

export function waitForHandshake(socket: tls.TLSSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('TLS handshake timed out'));
    }, TLS_HANDSHAKE_TIMEOUT_MS);
    socket.once('secure', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once('close', () => {
      clearTimeout(timer);
      reject(new Error('closed during the TLS handshake'));
    });
  });
}
