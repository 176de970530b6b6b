// Reads a client's commands before login: CRLF lines of bounded length and literals of announced size, then hands the socket over with whatever it buffered.
import type { Duplex } from 'node:stream';

export class ProtocolInputError extends Error {
  constructor(
    readonly kind: 'line_too_long' | 'closed',
    message: string,
  ) {
    super(message);
    this.name = 'ProtocolInputError';
  }
}

/**
 * Pull-style reading over a socket that keeps nothing past `maxBufferedBytes`: a line without an end, or more data
 * than any pre-login command needs, is an error, not a memory leak. `detach()` stops reading and returns the bytes
 * already received but not consumed (for a login pipelined with the next command, they belong to the upstream).
 */
export class LineReader {
  #buffer: Buffer = Buffer.alloc(0);
  #ended = false;
  #failure: ProtocolInputError | undefined;
  #wake: (() => void) | undefined;
  #paused = false;
  readonly #onData = (chunk: Buffer) => {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    if (this.#buffer.length > this.maxBufferedBytes && this.#buffer.indexOf('\n') < 0) {
      this.#failure = new ProtocolInputError('line_too_long', `a line longer than ${this.maxBufferedBytes} bytes`);
    } else if (this.#buffer.length > this.maxBufferedBytes) {
      // Complete lines pile up faster than they are read (a client pipelining while a login runs): stop reading the
      // socket until they are consumed, so the buffer stays bounded whatever the client sends.
      this.socket.pause();
      this.#paused = true;
    }
    this.#notify();
  };
  readonly #onEnd = () => {
    this.#ended = true;
    this.#notify();
  };

  constructor(
    private readonly socket: Duplex,
    private readonly maxBufferedBytes: number,
  ) {
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('close', this.#onEnd);
    socket.on('error', this.#onEnd);
  }

  /** The next line without its CRLF (a bare LF is accepted too); null when the client closed. */
  async readLine(): Promise<Buffer | null> {
    for (;;) {
      const lf = this.#buffer.indexOf(0x0a);
      if (lf >= 0) {
        if (lf > this.maxBufferedBytes) throw new ProtocolInputError('line_too_long', `a line longer than ${this.maxBufferedBytes} bytes`);
        const end = lf > 0 && this.#buffer[lf - 1] === 0x0d ? lf - 1 : lf;
        const line = this.#buffer.subarray(0, end);
        this.#buffer = this.#buffer.subarray(lf + 1);
        this.#resumeIfDrained();
        return Buffer.from(line);
      }
      if (this.#failure) throw this.#failure;
      if (this.#ended) return null;
      await this.#wait();
    }
  }

  /** Exactly `count` bytes (an IMAP literal); null when the client closed first. */
  async readBytes(count: number): Promise<Buffer | null> {
    for (;;) {
      if (this.#buffer.length >= count) {
        const out = Buffer.from(this.#buffer.subarray(0, count));
        this.#buffer = this.#buffer.subarray(count);
        this.#resumeIfDrained();
        return out;
      }
      if (this.#ended) return null;
      await this.#wait();
    }
  }

  /** Stops reading; the socket is the caller's again, paused, with these bytes already taken from it. */
  detach(): Buffer {
    this.#paused = false;
    this.socket.off('data', this.#onData);
    this.socket.off('end', this.#onEnd);
    this.socket.off('close', this.#onEnd);
    this.socket.off('error', this.#onEnd);
    this.socket.pause();
    const rest = this.#buffer;
    this.#buffer = Buffer.alloc(0);
    this.#notify();
    return rest;
  }

  /** Bytes received after the last command read: after STARTTLS there must be none (RFC 3207 §4.2, CVE-2011-0411). */
  get pending(): number {
    return this.#buffer.length;
  }

  #resumeIfDrained(): void {
    if (this.#paused && this.#buffer.length <= this.maxBufferedBytes) {
      this.#paused = false;
      this.socket.resume();
    }
  }

  #wait(): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
    });
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
