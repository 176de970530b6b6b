// Decodes a POP3 multi-line response body as it streams in (RFC 1939 §3): removes dot-stuffing, stops at the
// terminating "CRLF.CRLF", keeps every other byte as sent — messages are bytes, not text (8-bit MIME, odd charsets).
//
// Works chunk by chunk with a four-state machine instead of splitting into lines, so a line split across TCP
// segments, a 50 MB message, or a message with no line breaks at all costs one copy of each byte into a buffer that
// grows by doubling: no quadratic string concatenation, no per-line allocations.

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

const enum State {
  /** At the first byte of a line. */
  LineStart,
  /** A line began with ".", which is dropped: stuffing, or the terminator if CRLF follows. */
  Dot,
  /** Saw "." CR at a line start. */
  DotCr,
  /** Inside a line: copy through the next LF. */
  InLine,
}

const MIN_CAPACITY = 16 * 1024;

export class MultilineDecoder {
  #state = State.LineStart;
  #buffer: Buffer;
  #length = 0;
  #done = false;

  /** @param sizeHint expected size in octets (RETR: the size LIST reported), to allocate once. */
  constructor(sizeHint = 0) {
    this.#buffer = Buffer.allocUnsafe(Math.max(MIN_CAPACITY, Math.min(sizeHint + 64, 1024 * 1024 * 1024)));
  }

  get done(): boolean {
    return this.#done;
  }

  /** Bytes decoded so far. */
  get length(): number {
    return this.#length;
  }

  /**
   * Takes the next chunk from the wire. Returns undefined while the body goes on; once the terminator is seen,
   * the bytes after it (usually none: commands are not pipelined), which belong to the next response.
   */
  push(chunk: Buffer): Buffer | undefined {
    if (this.#done) return chunk;
    let i = 0;
    while (i < chunk.length) {
      switch (this.#state) {
        case State.InLine: {
          const lf = chunk.indexOf(LF, i);
          const end = lf < 0 ? chunk.length : lf + 1;
          this.#append(chunk, i, end);
          i = end;
          if (lf >= 0) this.#state = State.LineStart;
          break;
        }
        case State.LineStart:
          if (chunk[i] === DOT) {
            this.#state = State.Dot;
            i++;
          } else {
            this.#state = State.InLine;
          }
          break;
        case State.Dot:
          if (chunk[i] === CR) {
            this.#state = State.DotCr;
            i++;
          } else if (chunk[i] === LF) {
            // "." LF: a bare-LF terminator from a sloppy server; RFC 1939 wants CRLF but nothing else can mean this
            return this.#finish(chunk, i + 1);
          } else {
            // RFC 1939 §3: a line starting with "." that is not the terminator had a "." prepended: it is gone already
            this.#state = State.InLine;
          }
          break;
        case State.DotCr:
          if (chunk[i] === LF) return this.#finish(chunk, i + 1);
          // "." CR then something else: a stuffed line whose content starts with CR; keep the CR
          this.#appendByte(CR);
          this.#state = State.InLine;
          break;
      }
    }
    return undefined;
  }

  /** The body: exactly the bytes between the status line and the terminator, dot-stuffing removed. */
  result(): Buffer {
    const body = this.#buffer.subarray(0, this.#length);
    // a doubled buffer may be up to twice the body: copy out when that wastes more than a little
    return this.#buffer.length - this.#length > 64 * 1024 ? Buffer.from(body) : body;
  }

  #finish(chunk: Buffer, at: number): Buffer {
    this.#done = true;
    return chunk.subarray(at);
  }

  #reserve(extra: number): void {
    const needed = this.#length + extra;
    if (needed <= this.#buffer.length) return;
    let capacity = this.#buffer.length * 2;
    while (capacity < needed) capacity *= 2;
    const grown = Buffer.allocUnsafe(capacity);
    this.#buffer.copy(grown, 0, 0, this.#length);
    this.#buffer = grown;
  }

  #append(chunk: Buffer, start: number, end: number): void {
    this.#reserve(end - start);
    chunk.copy(this.#buffer, this.#length, start, end);
    this.#length += end - start;
  }

  #appendByte(byte: number): void {
    this.#reserve(1);
    this.#buffer[this.#length++] = byte;
  }
}
