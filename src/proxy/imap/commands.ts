// Reads one IMAP command before login (RFC 9051 §9 grammar): tag, name, and atom / quoted / literal arguments, with LITERAL+ and bounded sizes.
import type { LineReader } from '../lineReader.js';

/** Literals before login carry a user name or a password: larger ones are refused (RFC 7888's LITERAL- limit). */
export const MAX_PRELOGIN_LITERAL = 4096;
/** Literals in one command: LOGIN has two; a command of many literals is not a login. */
const MAX_LITERALS = 4;

/** An argument: a string (atom, quoted, literal) as bytes, NIL, or a parenthesized list (ID's parameters). */
export type Argument = { kind: 'string'; value: Buffer; atom: boolean } | { kind: 'nil' } | { kind: 'list'; items: Argument[] };

export interface Command {
  tag: string;
  /** Upper-cased. */
  name: string;
  args: Argument[];
}

/**
 * What went wrong: `bad` answers `<tag> BAD <text>` (or `* BAD` without a valid tag) and reads on; `fatal` ends the
 * session with `* BYE <text>` (input the proxy cannot resynchronise with, such as an oversized non-synchronizing literal).
 */
export type ReadResult = { kind: 'command'; command: Command } | { kind: 'bad'; tag: string | undefined; text: string } | { kind: 'fatal'; text: string } | { kind: 'closed' };

// ATOM-CHAR: any CHAR (0x01-0x7f) except atom-specials: ( ) { SP CTL % * " \ ]
const ATOM_CHAR = (c: number) => c > 0x20 && c < 0x7f && c !== 0x28 && c !== 0x29 && c !== 0x7b && c !== 0x25 && c !== 0x2a && c !== 0x22 && c !== 0x5c && c !== 0x5d;
// ASTRING-CHAR = ATOM-CHAR / "]"; tag = 1*<any ASTRING-CHAR except "+">
const TAG_CHAR = (c: number) => (ATOM_CHAR(c) || c === 0x5d) && c !== 0x2b;
const LITERAL_AT_END = /\{(\d{1,10})(\+?)\}$/;

class SyntaxProblem extends Error {}

/**
 * The next command. A synchronizing literal `{n}` gets the `+` continuation before its bytes are read; `{n+}`
 * (LITERAL+, RFC 7888) does not. `continuation` writes that line to the client.
 */
export async function readCommand(reader: LineReader, continuation: () => void): Promise<ReadResult> {
  const first = await reader.readLine();
  if (first === null) return { kind: 'closed' };
  const tagEnd = first.indexOf(0x20);
  const tagBytes = tagEnd < 0 ? first : first.subarray(0, tagEnd);
  if (tagBytes.length === 0 || tagBytes.length > 64 || !tagBytes.every(TAG_CHAR)) return { kind: 'bad', tag: undefined, text: 'Invalid tag' };
  const tag = tagBytes.toString('latin1');
  if (tagEnd < 0) return { kind: 'bad', tag, text: 'Missing command' };

  // The command as segments: text, a literal's bytes, text, …
  const segments: (Buffer | { literal: Buffer })[] = [];
  let line = first.subarray(tagEnd + 1);
  for (let literals = 0; ; literals++) {
    const announced = LITERAL_AT_END.exec(line.toString('latin1'));
    if (!announced) {
      segments.push(line);
      break;
    }
    const size = Number(announced[1]);
    const synchronizing = announced[2] !== '+';
    if (size > MAX_PRELOGIN_LITERAL || literals >= MAX_LITERALS) {
      // The client waits for "+" before a synchronizing literal: refusing it keeps the stream in step (RFC 9051 §7.5).
      if (synchronizing) return { kind: 'bad', tag, text: size > MAX_PRELOGIN_LITERAL ? `Literal too large (at most ${MAX_PRELOGIN_LITERAL} bytes before login)` : 'Too many literals' };
      return { kind: 'fatal', text: size > MAX_PRELOGIN_LITERAL ? `Literal too large (at most ${MAX_PRELOGIN_LITERAL} bytes before login)` : 'Too many literals' };
    }
    segments.push(line.subarray(0, line.length - announced[0].length));
    if (synchronizing) continuation();
    const bytes = await reader.readBytes(size);
    if (bytes === null) return { kind: 'closed' };
    segments.push({ literal: bytes });
    const next = await reader.readLine();
    if (next === null) return { kind: 'closed' };
    line = next;
  }

  try {
    const parser = new Parser(segments);
    const name = parser.atom().toString('latin1').toUpperCase();
    const args: Argument[] = [];
    while (!parser.done()) {
      parser.space();
      args.push(parser.argument(0));
    }
    return { kind: 'command', command: { tag, name, args } };
  } catch (err) {
    if (err instanceof SyntaxProblem) return { kind: 'bad', tag, text: err.message };
    throw err;
  }
}

/** A parser over the command's text segments and literals. */
class Parser {
  #segment = 0;
  #offset = 0;

  constructor(private readonly segments: (Buffer | { literal: Buffer })[]) {}

  done(): boolean {
    this.#skipEmpty();
    return this.#segment >= this.segments.length;
  }

  space(): void {
    if (this.#peek() !== 0x20) throw new SyntaxProblem('Expected a space between arguments');
    this.#offset++;
  }

  atom(): Buffer {
    const text = this.#text();
    const start = this.#offset;
    while (this.#offset < text.length && (ATOM_CHAR(text[this.#offset]!) || text[this.#offset] === 0x5d)) this.#offset++;
    if (this.#offset === start) throw new SyntaxProblem('Expected a command name or an atom');
    return text.subarray(start, this.#offset);
  }

  argument(depth: number): Argument {
    this.#skipEmpty();
    const current = this.segments[this.#segment];
    if (current !== undefined && !Buffer.isBuffer(current)) {
      this.#segment++;
      this.#offset = 0;
      return { kind: 'string', value: current.literal, atom: false };
    }
    const c = this.#peek();
    if (c === 0x22) return { kind: 'string', value: this.#quoted(), atom: false };
    if (c === 0x28) {
      if (depth > 2) throw new SyntaxProblem('Lists nested too deep');
      this.#offset++;
      const items: Argument[] = [];
      while (this.#peek() !== 0x29) {
        if (items.length > 0) this.space();
        items.push(this.argument(depth + 1));
        if (items.length > 64) throw new SyntaxProblem('List too long');
      }
      this.#offset++;
      return { kind: 'list', items };
    }
    const atom = this.atom();
    if (atom.toString('latin1').toUpperCase() === 'NIL') return { kind: 'nil' };
    return { kind: 'string', value: atom, atom: true };
  }

  /** quoted = DQUOTE *QUOTED-CHAR DQUOTE; only \" and \\ may be escaped; no CR, LF or NUL. */
  #quoted(): Buffer {
    const text = this.#text();
    this.#offset++;
    const out: number[] = [];
    for (;;) {
      if (this.#offset >= text.length) throw new SyntaxProblem('Unterminated quoted string');
      const c = text[this.#offset++]!;
      if (c === 0x22) return Buffer.from(out);
      if (c === 0x5c) {
        const escaped = text[this.#offset++];
        if (escaped !== 0x22 && escaped !== 0x5c) throw new SyntaxProblem('Only \\" and \\\\ may be escaped in a quoted string');
        out.push(escaped);
      } else if (c === 0x00 || c === 0x0d || c === 0x0a) {
        throw new SyntaxProblem('Invalid character in a quoted string');
      } else {
        out.push(c);
      }
    }
  }

  #text(): Buffer {
    const current = this.segments[this.#segment];
    if (current === undefined || !Buffer.isBuffer(current)) throw new SyntaxProblem('Unexpected literal');
    return current;
  }

  #peek(): number | undefined {
    this.#skipEmpty();
    const current = this.segments[this.#segment];
    if (current === undefined) throw new SyntaxProblem('Missing argument');
    if (!Buffer.isBuffer(current)) return undefined;
    return current[this.#offset];
  }

  /** Moves past a text segment that is used up (the empty text between two literals, or after the last one). */
  #skipEmpty(): void {
    for (;;) {
      const current = this.segments[this.#segment];
      if (current === undefined || !Buffer.isBuffer(current) || this.#offset < current.length) return;
      this.#segment++;
      this.#offset = 0;
    }
  }
}

/** An argument as a string (atom, quoted or literal); undefined for NIL or a list. */
export function stringOf(arg: Argument | undefined): string | undefined {
  return arg?.kind === 'string' ? arg.value.toString('utf8') : undefined;
}

/** A quoted string for a response (RFC 9051 quoted: " and \ escaped). */
export function quote(text: string): string {
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`).replace(/[\r\n]/g, ' ')}"`;
}
