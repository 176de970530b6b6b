// The POP3 proxy's connection to the real server: TLS or STLS as the server is configured, greeting, CAPA, SASL XOAUTH2, then the socket handed over for the splice.
import type net from 'node:net';
import { parseCapabilities, UNKNOWN_CAPABILITIES, type Pop3Capabilities } from '../../inbound/pop3/capabilities.js';
import { decodeXOAuth2Challenge, parseStatus, showLine, type Pop3Status } from '../../inbound/pop3/wire.js';
import type { XOAuth2Status } from '../../inbound/pop3/errors.js';
import type { ResolvedServer } from '../../servers/model.js';
import { LineReader } from '../lineReader.js';
import { dialUpstream, readUpstreamLine, upgradeUpstream, UpstreamError } from '../upstream.js';
import { xoauth2Response } from '../upstreamAuth.js';

/** RFC 2449 §4 says 512 octets per reply line; an XOAUTH2 error challenge and chatty servers go beyond, not this far. */
const MAX_REPLY_LINE = 64 * 1024;
/**
 * RFC 5034 §4: an AUTH command with its initial response must fit 255 octets; an Entra ID token (1.5–3 KB) never
 * does, so the response then follows the server's empty "+ " challenge (what Microsoft documents for POP3 XOAUTH2).
 */
const MAX_AUTH_LINE = 255;

/** The server's answer to AUTH XOAUTH2: `+OK` (logged in) or the refusal with its RFC 3206 code and decoded status. */
export type XOAuth2Outcome = { ok: true; reply: string } | { ok: false; status: Pop3Status | undefined; reply: string; xoauth2: XOAuth2Status | undefined };

/** One POP3 connection to the upstream server before login, read line by line with a deadline per reply. */
export class UpstreamPop3 {
  #socket: net.Socket;
  #reader: LineReader;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    this.#reader = new LineReader(socket, MAX_REPLY_LINE);
  }

  /** Connects (implicit TLS, or plain then STLS, per the server's `security`) and reads the +OK greeting. */
  static async open(server: ResolvedServer): Promise<UpstreamPop3> {
    const socket = await dialUpstream(server);
    const upstream = new UpstreamPop3(socket);
    try {
      const greeting = await upstream.status('greeting');
      if (!greeting.ok) throw new UpstreamError(`${server.host}:${server.port} greeted with -ERR ${greeting.text}`);
      if (server.security === 'starttls') await upstream.#startTls(server);
      return upstream;
    } catch (err) {
      upstream.close();
      throw err;
    }
  }

  /** The server's CAPA list (RFC 2449 §5); `supported: false` when it answers -ERR (an RFC 1939-only server). */
  async capabilities(): Promise<Pop3Capabilities> {
    this.send('CAPA');
    const status = await this.status('CAPA');
    if (!status.ok) return UNKNOWN_CAPABILITIES;
    const lines: string[] = [];
    for (;;) {
      const line = await this.line('CAPA');
      if (line === '.') break;
      lines.push(line.startsWith('..') ? line.slice(1) : line);
    }
    return parseCapabilities(lines.map((l) => l.trim()).filter(Boolean));
  }

  /**
   * SASL XOAUTH2 (RFC 5034 AUTH with Google's and Microsoft's mechanism). A refusal first comes as a "+ <base64
   * JSON>" challenge, answered with an empty line, then -ERR. The token is written to the socket and nowhere else.
   * @see https://developers.google.com/gmail/imap/xoauth2-protocol
   * @see https://learn.microsoft.com/en-us/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth
   */
  async authXOAuth2(user: string, accessToken: string): Promise<XOAuth2Outcome> {
    const response = xoauth2Response(user, accessToken);
    let line: string;
    if (`AUTH XOAUTH2 ${response}`.length + 2 <= MAX_AUTH_LINE) {
      this.send(`AUTH XOAUTH2 ${response}`);
      line = await this.line('AUTH');
    } else {
      this.send('AUTH XOAUTH2');
      line = await this.line('AUTH');
      if (isChallenge(line)) {
        this.send(response);
        line = await this.line('AUTH');
      }
    }
    let xoauth2: XOAuth2Status | undefined;
    if (isChallenge(line)) {
      xoauth2 = decodeXOAuth2Challenge(line.slice(1));
      this.send('');
      line = await this.line('AUTH');
    }
    const status = parseStatus(line);
    if (status?.ok) return { ok: true, reply: line };
    return { ok: false, status, reply: line, xoauth2 };
  }

  /** Polite end of a connection that will not be used (after a CAPA probe or a refused login). */
  quit(): void {
    if (this.#socket.destroyed) return;
    this.#socket.end('QUIT\r\n');
    setTimeout(() => this.#socket.destroy(), 2000).unref();
  }

  close(): void {
    this.#reader.detach();
    this.#socket.destroy();
  }

  /** The socket after login and the bytes the server sent after its +OK (they belong to the client). */
  detach(): { socket: net.Socket; leftover: Buffer } {
    return { socket: this.#socket, leftover: this.#reader.detach() };
  }

  send(line: string): void {
    this.#socket.write(`${line}\r\n`);
  }

  async status(during: string): Promise<Pop3Status> {
    const line = await this.line(during);
    const status = parseStatus(line);
    if (!status) throw new UpstreamError(`the server answered ${during} with "${showLine(line)}", not +OK/-ERR`);
    return status;
  }

  /** The next line; the server's silence past the deadline or its close is an UpstreamError. */
  line(during: string): Promise<string> {
    return readUpstreamLine(this.#reader, during);
  }

  /**
   * RFC 2595 §4: STLS, then TLS on the same connection. Bytes the server sent after its +OK and before the
   * handshake would be read as if protected (the STARTTLS injection of CVE-2011-0411, server side): refused.
   */
  async #startTls(server: ResolvedServer): Promise<void> {
    this.send('STLS');
    const status = await this.status('STLS');
    if (!status.ok) throw new UpstreamError(`${server.host}:${server.port} refused STLS: -ERR ${status.text}`);
    const injected = this.#reader.detach();
    if (injected.length > 0) throw new UpstreamError(`${server.host}:${server.port} sent data after its STLS reply, before TLS: refused`);
    const secure = await upgradeUpstream(this.#socket, server);
    this.#socket = secure;
    this.#reader = new LineReader(secure, MAX_REPLY_LINE);
  }
}

/** RFC 5034 §4: a server challenge is "+" SP base64 (an empty one is "+" or "+ "); "+OK" is not one. */
function isChallenge(line: string): boolean {
  return line === '+' || (line.startsWith('+ ') && !/^\+OK/i.test(line));
}
