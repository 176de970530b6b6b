// The IMAP proxy's connection to the real server: TLS or STARTTLS as the server is configured, greeting, CAPABILITY, SASL XOAUTH2, then the socket handed over for the splice.
import type net from 'node:net';
import type { ResolvedServer } from '../../servers/model.js';
import { LineReader } from '../lineReader.js';
import { dialUpstream, readUpstreamLine, upgradeUpstream, UpstreamError } from '../upstream.js';
import { xoauth2Response } from '../upstreamAuth.js';

/** A capability list or an XOAUTH2 error challenge fits easily; a server going past this is not one to talk to. */
const MAX_REPLY_LINE = 64 * 1024;

/** A tagged reply: OK / NO / BAD, its response code (e.g. `AUTHENTICATIONFAILED`, `CAPABILITY IMAP4rev1 …`), text. */
export interface TaggedReply {
  status: 'OK' | 'NO' | 'BAD';
  code: string | undefined;
  text: string;
  line: string;
}

export type XOAuth2Outcome = { ok: true; capabilities: string[] | undefined } | { ok: false; reply: TaggedReply; challenge: string | undefined };

/** One IMAP connection to the upstream server before login, read line by line with a deadline per reply. */
export class UpstreamImap {
  #socket: net.Socket;
  #reader: LineReader;
  #tag = 0;
  /** The server's capabilities as last announced (greeting or CAPABILITY); reset by STARTTLS. */
  capabilities: string[] | undefined;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    this.#reader = new LineReader(socket, MAX_REPLY_LINE);
  }

  /** Connects (implicit TLS, or plain then STARTTLS, per the server's `security`) and reads the `* OK` greeting. */
  static async open(server: ResolvedServer): Promise<UpstreamImap> {
    const socket = await dialUpstream(server);
    const upstream = new UpstreamImap(socket);
    try {
      const greeting = await upstream.line('the greeting');
      const parsed = /^\* (OK|PREAUTH|BYE)\b ?(.*)$/i.exec(greeting);
      if (!parsed || parsed[1]!.toUpperCase() !== 'OK') throw new UpstreamError(`${server.host}:${server.port} greeted with "${show(greeting)}"`);
      upstream.capabilities = capabilityCode(parsed[2]!);
      if (server.security === 'starttls') await upstream.#startTls(server);
      return upstream;
    } catch (err) {
      upstream.close();
      throw err;
    }
  }

  /** The server's capabilities (asked only if the greeting did not carry them, or after STARTTLS). */
  async capabilityList(): Promise<string[]> {
    if (this.capabilities) return this.capabilities;
    const { reply, untagged } = await this.command('CAPABILITY');
    if (reply.status !== 'OK') throw new UpstreamError(`the server answered CAPABILITY with "${show(reply.line)}"`);
    const line = untagged.find((l) => /^\* CAPABILITY /i.test(l));
    this.capabilities = line ? line.slice('* CAPABILITY '.length).trim().split(/\s+/) : [];
    return this.capabilities;
  }

  /**
   * SASL XOAUTH2 (RFC 9051 AUTHENTICATE, with SASL-IR when offered). A refusal first comes as a `+ <base64 JSON>`
   * challenge, answered with an empty line, then NO. The token is written to the socket and nowhere else.
   * @see https://developers.google.com/gmail/imap/xoauth2-protocol
   */
  async authenticateXOAuth2(user: string, accessToken: string): Promise<XOAuth2Outcome> {
    const capabilities = await this.capabilityList();
    const response = xoauth2Response(user, accessToken);
    const tag = this.#nextTag();
    const saslIr = capabilities.some((c) => c.toUpperCase() === 'SASL-IR');
    this.#send(saslIr ? `${tag} AUTHENTICATE XOAUTH2 ${response}` : `${tag} AUTHENTICATE XOAUTH2`);
    let sentResponse = saslIr;
    let challenge: string | undefined;
    let announced: string[] | undefined;
    for (;;) {
      const line = await this.line('AUTHENTICATE');
      if (line.startsWith('+')) {
        if (!sentResponse) {
          this.#send(response);
          sentResponse = true;
        } else {
          challenge = decodeChallenge(line.slice(1).trim());
          this.#send('');
        }
        continue;
      }
      if (line.startsWith('* ')) {
        if (/^\* CAPABILITY /i.test(line)) announced = line.slice('* CAPABILITY '.length).trim().split(/\s+/);
        continue;
      }
      const reply = parseTagged(line, tag);
      if (!reply) throw new UpstreamError(`the server answered AUTHENTICATE with "${show(line)}"`);
      if (reply.status === 'OK') {
        const code = reply.code && /^CAPABILITY /i.test(reply.code) ? reply.code.slice('CAPABILITY '.length).trim().split(/\s+/) : undefined;
        return { ok: true, capabilities: code ?? announced };
      }
      return { ok: false, reply, challenge };
    }
  }

  /** A command and its untagged lines up to the tagged reply (CAPABILITY after login, LOGOUT). */
  async command(text: string): Promise<{ reply: TaggedReply; untagged: string[] }> {
    const tag = this.#nextTag();
    this.#send(`${tag} ${text}`);
    const untagged: string[] = [];
    for (;;) {
      const line = await this.line(text.split(' ')[0]!);
      const reply = parseTagged(line, tag);
      if (reply) return { reply, untagged };
      untagged.push(line);
    }
  }

  /** Polite end of a connection that will not be used (after a capability probe or a refused login). */
  logout(): void {
    if (this.#socket.destroyed) return;
    this.#reader.detach();
    this.#socket.end(`${this.#nextTag()} LOGOUT\r\n`);
    setTimeout(() => this.#socket.destroy(), 2000).unref();
  }

  close(): void {
    this.#reader.detach();
    this.#socket.destroy();
  }

  /** The socket after login and the bytes the server sent after its OK (they belong to the client). */
  detach(): { socket: net.Socket; leftover: Buffer } {
    return { socket: this.#socket, leftover: this.#reader.detach() };
  }

  /** The next line; the server's silence past the deadline or its close is an UpstreamError. */
  line(during: string): Promise<string> {
    return readUpstreamLine(this.#reader, during);
  }

  #send(line: string): void {
    this.#socket.write(`${line}\r\n`);
  }

  #nextTag(): string {
    this.#tag += 1;
    return `mg${this.#tag}`;
  }

  /**
   * RFC 9051 §6.2.1: STARTTLS, then TLS on the same connection, then the capabilities again. Bytes the server sent
   * after its OK and before the handshake would be read as if protected (CVE-2011-0411, server side): refused.
   */
  async #startTls(server: ResolvedServer): Promise<void> {
    const { reply } = await this.command('STARTTLS');
    if (reply.status !== 'OK') throw new UpstreamError(`${server.host}:${server.port} refused STARTTLS: ${show(reply.line)}`);
    const injected = this.#reader.detach();
    if (injected.length > 0) throw new UpstreamError(`${server.host}:${server.port} sent data after its STARTTLS reply, before TLS: refused`);
    const secure = await upgradeUpstream(this.#socket, server);
    this.#socket = secure;
    this.#reader = new LineReader(secure, MAX_REPLY_LINE);
    this.capabilities = undefined;
  }
}

function parseTagged(line: string, tag: string): TaggedReply | undefined {
  if (!line.startsWith(`${tag} `)) return undefined;
  const parsed = /^(OK|NO|BAD)\b ?(?:\[([^\]]*)\])? ?(.*)$/i.exec(line.slice(tag.length + 1));
  if (!parsed) return { status: 'BAD', code: undefined, text: line.slice(tag.length + 1), line };
  return { status: parsed[1]!.toUpperCase() as TaggedReply['status'], code: parsed[2], text: parsed[3] ?? '', line };
}

function capabilityCode(text: string): string[] | undefined {
  const code = /^\[CAPABILITY ([^\]]*)\]/i.exec(text);
  return code ? code[1]!.trim().split(/\s+/) : undefined;
}

/** The XOAUTH2 error challenge: base64 JSON such as {"status":"401","schemes":"Bearer","scope":"…"}. */
function decodeChallenge(base64: string): string | undefined {
  try {
    const text = Buffer.from(base64, 'base64').toString('utf8');
    const status = (JSON.parse(text) as { status?: unknown }).status;
    return typeof status === 'string' || typeof status === 'number' ? String(status) : text.slice(0, 200);
  } catch {
    return undefined;
  }
}

/** A server's line for a log or error text: printable, bounded. */
export function show(line: string): string {
  const printable = line.replace(/[^\x20-\x7e]/g, '?');
  return printable.length > 200 ? `${printable.slice(0, 200)}…` : printable;
}
