// The SMTP server test's wire: SMTP replies read off a socket that can be swapped for its TLS upgrade, command lines written, and socket failures as facts.
import net from 'node:net';
import tls from 'node:tls';
import { SmtpTestCode, type SmtpFailureFacts } from './smtpExplanations.js';
import { briefly, listenToSocket, whenReady } from './sockets.js';
import { StepFailure } from './testReport.js';

const MAX_LINE = 64 * 1024;

export interface SmtpReply {
  code: number;
  /** RFC 3463 enhanced status code, e.g. "5.7.139". */
  enhanced: string | undefined;
  /** Text of each reply line, without the code. */
  lines: string[];
}

export const showReply = (r: SmtpReply) => `${r.code} ${r.lines.join(' / ')}`.trim();

export class SmtpStepFailure extends StepFailure<SmtpFailureFacts> {}

export const replyFailure = (what: string, reply: SmtpReply, facts: Partial<SmtpFailureFacts> = {}) =>
  new SmtpStepFailure(`${what}: ${showReply(reply)}`, { responseCode: reply.code, ...(reply.enhanced ? { enhancedStatus: reply.enhanced } : {}), ...facts });

/** Node's socket and TLS errors as facts: err.code, and OpenSSL's reason for errors that come without a code. */
export function socketFailure(err: unknown, where: string): SmtpStepFailure {
  const e = err as NodeJS.ErrnoException & { reason?: unknown };
  const facts: Partial<SmtpFailureFacts> = {};
  if (typeof e?.code === 'string') facts.code = e.code;
  if (typeof e?.reason === 'string') facts.tlsReason = e.reason;
  else if (facts.code === undefined && typeof e?.message === 'string') facts.tlsReason = e.message;
  // OpenSSL's message is "<thread>:error:<hex>:SSL routines:<function>:<reason>:<source file>:<line>:": its reason reads better
  const text = typeof e?.reason === 'string' ? e.reason : (e?.message ?? String(err));
  return new SmtpStepFailure(`${where}: ${text}${facts.code ? ` (${facts.code})` : ''}`, facts, { cause: err });
}

/** Reads SMTP replies from a socket that can be swapped for its TLS upgrade, and writes command lines. */
export class SmtpWire {
  #socket: net.Socket;
  #buffer = '';
  #lines: string[] = [];
  #failure: SmtpStepFailure | undefined;
  #wake: (() => void) | undefined;
  #inSync = false;
  readonly #onData = (chunk: Buffer) => {
    this.#buffer += chunk.toString('latin1');
    let eol: number;
    while ((eol = this.#buffer.indexOf('\n')) >= 0) {
      this.#lines.push(this.#buffer.slice(0, eol).replace(/\r$/, ''));
      this.#buffer = this.#buffer.slice(eol + 1);
    }
    if (this.#buffer.length > MAX_LINE) this.#fail(new SmtpStepFailure('the server sent a line longer than 64 KiB', { code: SmtpTestCode.NOT_SMTP }));
    this.#wake?.();
  };
  readonly #onError = (err: Error) => this.#fail(socketFailure(err, 'connection failed'));
  readonly #onClose = () => this.#fail(new SmtpStepFailure('the server closed the connection', { code: SmtpTestCode.CONNECTION_CLOSED }));
  /** Takes the listeners off the current socket (set by #attach). */
  #detach: () => void = () => undefined;

  constructor(
    socket: net.Socket,
    private readonly timeoutMs: number,
  ) {
    this.#socket = socket;
    this.#attach();
  }

  get socket(): net.Socket {
    return this.#socket;
  }

  send(line: string): void {
    this.#socket.write(`${line}\r\n`);
  }

  /** One complete (possibly multi-line) reply, or an SmtpStepFailure: timeout, closed connection, or not SMTP at all. */
  async read(timeoutCode: SmtpTestCode = SmtpTestCode.REPLY_TIMEOUT): Promise<SmtpReply> {
    // Only a session whose last exchange went well gets a QUIT: a peer that never greeted (an implicit-TLS port)
    // or stopped answering would only read the QUIT as garbage.
    this.#inSync = false;
    const reply = await this.#readReply(timeoutCode);
    this.#inSync = true;
    return reply;
  }

  async #readReply(timeoutCode: SmtpTestCode): Promise<SmtpReply> {
    const deadline = Date.now() + this.timeoutMs;
    const lines: string[] = [];
    for (;;) {
      const line = await this.#nextLine(deadline, timeoutCode);
      const m = /^(\d{3})(?:([ -])(.*))?$/.exec(line);
      if (!m) {
        const shown = line.slice(0, 80).replace(/[^\x20-\x7e]/g, '.');
        throw new SmtpStepFailure(`not an SMTP reply: "${shown}"`, { code: SmtpTestCode.NOT_SMTP });
      }
      lines.push(m[3] ?? '');
      if (m[2] !== '-') return { code: Number(m[1]), enhanced: /^([245]\.\d{1,3}\.\d{1,3})(?:\s|$)/.exec(lines[0]!)?.[1], lines };
    }
  }

  async command(line: string, timeoutCode?: SmtpTestCode): Promise<SmtpReply> {
    this.send(line);
    return this.read(timeoutCode);
  }

  /** Hands the socket to TLS (after a 220 to STARTTLS) and reads from the encrypted socket from then on. */
  async upgrade(options: tls.ConnectionOptions): Promise<tls.TLSSocket> {
    this.#detach();
    // RFC 3207 §4.2: nothing sent before the handshake may be acted on after it
    this.#buffer = '';
    this.#lines = [];
    this.#inSync = false;
    const secure = await handshake({ ...options, socket: this.#socket }, this.timeoutMs);
    this.#socket = secure;
    this.#attach();
    return secure;
  }

  /** QUIT politely (briefly), then close for sure. */
  async close(): Promise<void> {
    if (this.#inSync && this.#failure === undefined && !this.#socket.destroyed) {
      this.send('QUIT');
      await briefly(this.read());
    }
    this.#detach();
    this.#socket.destroy();
  }

  #attach(): void {
    this.#detach = listenToSocket(this.#socket, { data: this.#onData, error: this.#onError, close: this.#onClose });
  }

  #fail(failure: SmtpStepFailure): void {
    this.#failure ??= failure;
    this.#wake?.();
  }

  async #nextLine(deadline: number, timeoutCode: SmtpTestCode): Promise<string> {
    for (;;) {
      const line = this.#lines.shift();
      if (line !== undefined) return line;
      if (this.#failure) throw this.#failure;
      const left = deadline - Date.now();
      if (left <= 0) {
        const what = timeoutCode === SmtpTestCode.GREETING_TIMEOUT ? 'no SMTP greeting' : 'no reply';
        throw new SmtpStepFailure(`${what} within ${this.timeoutMs} ms`, { code: timeoutCode });
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }
}

export function connectTcp(host: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return whenReady(net.connect({ host, port }), 'connect', timeoutMs, {
    timeout: () => new SmtpStepFailure(`no connection to ${host}:${port} within ${timeoutMs} ms`, { code: SmtpTestCode.CONNECT_TIMEOUT }),
    failed: (err) => socketFailure(err, `connecting to ${host}:${port}`),
  });
}

export function handshake(options: tls.ConnectionOptions, timeoutMs: number): Promise<tls.TLSSocket> {
  return whenReady(tls.connect(options), 'secureConnect', timeoutMs, {
    timeout: () => new SmtpStepFailure(`TLS handshake not finished within ${timeoutMs} ms`, { code: SmtpTestCode.TLS_TIMEOUT }),
    failed: (err) => socketFailure(err, 'TLS handshake failed'),
  });
}
