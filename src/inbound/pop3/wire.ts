// The POP3 wire: TCP and TLS setup, reading status lines and multi-line bodies as bytes, writing command lines,
// and the parsing of what comes back (+OK/-ERR with RFC 3206 response codes, the XOAUTH2 error challenge).
import net from 'node:net';
import tls from 'node:tls';
import { listenToSocket, whenReady } from '../../servers/sockets.js';
import { Pop3Error, Pop3ErrorCode, type Pop3Phase, type XOAuth2Status } from './errors.js';
import { MultilineDecoder } from './multiline.js';

/**
 * RFC 2449 §4 limits a response line to 512 octets; SASL challenges (a base64 JSON status) and chatty servers go a
 * little beyond, so only lines that are surely not POP3 are refused.
 */
const MAX_LINE = 64 * 1024;

export interface Pop3Status {
  ok: boolean;
  /** The text after +OK / -ERR, without the response code. */
  text: string;
  /** RFC 2449 §8 extended response code, e.g. "AUTH", "SYS/TEMP", "IN-USE" (RFC 3206). */
  responseCode: string | undefined;
}

/** "+OK …" / "-ERR [CODE] …" as a status; undefined for anything else (a SASL "+ " challenge, garbage). */
export function parseStatus(line: string): Pop3Status | undefined {
  const m = /^(\+OK|-ERR)(?:\s+(.*))?$/i.exec(line);
  if (!m) return undefined;
  const rest = m[2] ?? '';
  // RFC 2449 §8: the code is the first thing after the status indicator, in brackets; hierarchical with "/"
  const code = /^\[([A-Za-z0-9-]+(?:\/[A-Za-z0-9-]+)*)\]\s*(.*)$/.exec(rest);
  return { ok: m[1]!.toUpperCase() === '+OK', text: (code ? code[2]! : rest).trim(), responseCode: code?.[1]!.toUpperCase() };
}

/** A line as shown in an error: printable ASCII, at most 120 characters. */
export const showLine = (line: string) => line.slice(0, 120).replace(/[^\x20-\x7e]/g, '.');

/** Decodes the base64 JSON of an XOAUTH2 error challenge (https://developers.google.com/gmail/imap/xoauth2-protocol). */
export function decodeXOAuth2Challenge(base64: string): XOAuth2Status {
  const raw = Buffer.from(base64.trim(), 'base64').toString('utf8').replace(/[^\x20-\x7e]/g, '');
  const status: XOAuth2Status = { raw };
  try {
    const json = JSON.parse(raw) as Record<string, unknown>;
    for (const key of ['status', 'schemes', 'scope'] as const) if (typeof json[key] === 'string') status[key] = json[key];
  } catch {
    // not JSON: kept as sent in `raw`
  }
  return status;
}

/** Node's socket and TLS errors as Pop3Error facts: err.code, and OpenSSL's reason for errors that come without one. */
export function socketError(err: unknown, code: Pop3ErrorCode, where: string, during: Pop3Phase): Pop3Error {
  const e = err as NodeJS.ErrnoException & { reason?: unknown };
  const socketCode = typeof e?.code === 'string' ? e.code : undefined;
  const tlsReason = typeof e?.reason === 'string' ? e.reason : socketCode === undefined && typeof e?.message === 'string' ? e.message : undefined;
  // OpenSSL's message is "<thread>:error:<hex>:SSL routines:<function>:<reason>:…": its reason reads better
  const text = typeof e?.reason === 'string' ? e.reason : (e?.message ?? String(err));
  return new Pop3Error(code, `${where}: ${text}${socketCode ? ` (${socketCode})` : ''}`, { socketCode, tlsReason, during }, { cause: err });
}

export function connectTcp(host: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return whenReady(net.connect({ host, port }), 'connect', timeoutMs, {
    timeout: () => new Pop3Error(Pop3ErrorCode.POP3_TIMEOUT, `no connection to ${host}:${port} within ${timeoutMs} ms`, { during: 'connect' }),
    failed: (err) => socketError(err, Pop3ErrorCode.POP3_CONNECT_FAILED, `connecting to ${host}:${port}`, 'connect'),
  });
}

export function tlsHandshake(options: tls.ConnectionOptions, timeoutMs: number): Promise<tls.TLSSocket> {
  return whenReady(tls.connect(options), 'secureConnect', timeoutMs, {
    timeout: () => new Pop3Error(Pop3ErrorCode.POP3_TIMEOUT, `TLS handshake not finished within ${timeoutMs} ms`, { during: 'tls' }),
    failed: (err) => socketError(err, Pop3ErrorCode.POP3_TLS_FAILED, 'TLS handshake failed', 'tls'),
  });
}

/** One read in progress: fed every chunk until it has its answer; returns the bytes it did not use. */
interface Reader<T> {
  push(chunk: Buffer): { value: T; rest: Buffer } | undefined;
}

class LineReader implements Reader<string> {
  #parts: Buffer[] = [];
  #length = 0;

  push(chunk: Buffer): { value: string; rest: Buffer } | undefined {
    const lf = chunk.indexOf(0x0a);
    if (lf < 0) {
      this.#parts.push(chunk);
      this.#length += chunk.length;
      if (this.#length > MAX_LINE) throw new Pop3Error(Pop3ErrorCode.POP3_PROTOCOL, 'the server sent a line longer than 64 KiB', { during: 'command' });
      return undefined;
    }
    this.#parts.push(chunk.subarray(0, lf));
    const line = Buffer.concat(this.#parts).toString('utf8').replace(/\r$/, '');
    return { value: line, rest: chunk.subarray(lf + 1) };
  }
}

class BodyReader implements Reader<Buffer> {
  readonly #decoder: MultilineDecoder;
  constructor(
    sizeHint: number,
    private readonly maxBytes: number,
  ) {
    this.#decoder = new MultilineDecoder(Math.min(sizeHint, maxBytes));
  }
  push(chunk: Buffer): { value: Buffer; rest: Buffer } | undefined {
    const rest = this.#decoder.push(chunk);
    if (rest === undefined && this.#decoder.length > this.maxBytes) {
      throw new Pop3Error(Pop3ErrorCode.POP3_TOO_LARGE, `the answer passed ${this.maxBytes} bytes without its end: reading stopped and the connection is closed`);
    }
    return rest === undefined ? undefined : { value: this.#decoder.result(), rest };
  }
}

/**
 * Reads POP3 responses from a socket that can be swapped for its TLS upgrade, and writes command lines. One read at
 * a time: POP3 without PIPELINING is strictly command, response (RFC 1939 §3).
 */
export class Pop3Wire {
  #socket: net.Socket;
  /** Bytes received and not yet read: between commands, normally nothing. */
  #queue: Buffer[] = [];
  #failure: Pop3Error | undefined;
  #wake: (() => void) | undefined;
  readonly #onData = (chunk: Buffer) => {
    this.#queue.push(chunk);
    this.#wake?.();
  };
  // after the connection stands, any socket error (ECONNRESET, EPIPE, a TLS alert) means it is gone
  readonly #onError = (err: Error) => this.#fail(socketError(err, Pop3ErrorCode.POP3_CONNECTION_CLOSED, 'connection lost', 'command'));
  readonly #onClose = () => this.#fail(new Pop3Error(Pop3ErrorCode.POP3_CONNECTION_CLOSED, 'the server closed the connection', { during: 'command' }));
  /** Takes the listeners off the current socket (set by #attach). */
  #detach: () => void = () => undefined;

  constructor(
    socket: net.Socket,
    readonly timeoutMs: number,
  ) {
    this.#socket = socket;
    this.#attach();
  }

  get socket(): net.Socket {
    return this.#socket;
  }

  get closed(): boolean {
    return this.#socket.destroyed;
  }

  /** Writes one command line. The caller shows `sensitive` lines nowhere: this layer logs nothing. */
  send(line: string): void {
    if (this.#failure) throw this.#failure;
    this.#socket.write(`${line}\r\n`);
  }

  /** The next line, without CRLF. `during` names the wait in a timeout error ("greeting" tells a silent TLS port). */
  readLine(during: Pop3Phase = 'command'): Promise<string> {
    return this.#read(new LineReader(), during);
  }

  /** A multi-line body after its +OK line: dot-unstuffed raw bytes. Timeout is per silence, not for the whole body. */
  /**
   * A multiline answer (RFC 1939 §3), at most `maxBytes` decoded: past that, POP3_TOO_LARGE and the connection is
   * closed (the rest of the answer cannot be skipped reliably). Listings get 64 MB: a server that never sends the
   * terminator cannot exhaust memory.
   */
  async readBody(sizeHint = 0, maxBytes = 64 * 1024 * 1024): Promise<Buffer> {
    try {
      return await this.#read(new BodyReader(sizeHint, maxBytes), 'command');
    } catch (err) {
      if (err instanceof Pop3Error && err.code === Pop3ErrorCode.POP3_TOO_LARGE) this.destroy();
      throw err;
    }
  }

  /** Hands the socket to TLS (after STLS's +OK) and reads from the encrypted socket from then on. */
  async upgrade(options: tls.ConnectionOptions): Promise<tls.TLSSocket> {
    this.#detach();
    // RFC 2595 §4 / RFC 3207 §4.2 (same rule): nothing received before the handshake may be acted on after it
    this.#queue = [];
    const secure = await tlsHandshake({ ...options, socket: this.#socket }, this.timeoutMs);
    this.#socket = secure;
    this.#attach();
    return secure;
  }

  /** Ends the connection at once (no QUIT). */
  destroy(): void {
    this.#detach();
    this.#socket.destroy();
    this.#failure ??= new Pop3Error(Pop3ErrorCode.POP3_CLOSED, 'the POP3 session is closed');
  }

  async #read<T>(reader: Reader<T>, during: Pop3Phase): Promise<T> {
    for (;;) {
      const chunk = this.#queue.shift();
      if (chunk !== undefined) {
        const done = reader.push(chunk);
        if (done) {
          if (done.rest.length > 0) this.#queue.unshift(done.rest);
          return done.value;
        }
        continue;
      }
      if (this.#failure) throw this.#failure;
      let timedOut = false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          timedOut = true;
          resolve();
        }, this.timeoutMs);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
      if (timedOut && this.#queue.length === 0 && !this.#failure) {
        const what = during === 'greeting' ? 'no POP3 greeting' : 'no response';
        throw new Pop3Error(Pop3ErrorCode.POP3_TIMEOUT, `${what} within ${this.timeoutMs} ms`, { during });
      }
    }
  }

  #attach(): void {
    this.#detach = listenToSocket(this.#socket, { data: this.#onData, error: this.#onError, close: this.#onClose });
  }

  #fail(failure: Pop3Error): void {
    this.#failure ??= failure;
    this.#wake?.();
  }
}
