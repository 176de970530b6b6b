// A small POP3 client: RFC 1939 (the commands), RFC 2449 (CAPA, response codes), RFC 2595 (STLS), RFC 5034 (SASL
// AUTH) with XOAUTH2 for Microsoft 365 and Gmail. One command at a time; message bodies as raw bytes.
import { secureContextFor } from '../../servers/tlsTrust.js';
import net from 'node:net';
import tls from 'node:tls';
import type { SecurityMode } from '../../servers/model.js';
import { Pop3Error, Pop3ErrorCode, type XOAuth2Status } from './errors.js';
import { connectTcp, decodeXOAuth2Challenge, parseStatus, Pop3Wire, showLine, type Pop3Status } from './wire.js';
import { parseCapabilities, UNKNOWN_CAPABILITIES, type Pop3Capabilities } from './capabilities.js';

export interface Pop3ConnectOptions {
  host: string;
  port: number;
  /** tls: TLS from the first byte (995); starttls: plain, then STLS (110, RFC 2595); none: plain text throughout. */
  security: SecurityMode;
  /** PEM certificate(s) trusted besides the system CAs. */
  tlsCa?: string | undefined;
  /** false accepts any certificate: tests and emergencies only. Default true. */
  tlsRejectUnauthorized?: boolean | undefined;
  /** Deadline of the connection attempt, the handshake, and each silence while waiting for the server (default 30 s). */
  timeoutMs?: number | undefined;
}

export interface Pop3MessageInfo {
  number: number;
  size: number;
}

export interface Pop3UniqueId {
  number: number;
  uid: string;
}

export const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * RFC 5034 §4: a client must not send an initial response that would make the AUTH command longer than 255 octets
 * (CRLF included); it sends `AUTH <mechanism>` alone and the response after the server's empty "+ " challenge. An
 * OAuth2 access token from Entra ID (1.5–3 KB) never fits, which is why Microsoft documents POP3 XOAUTH2 in two lines.
 */
const MAX_AUTH_LINE = 255;

const base64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

/** Nothing that could end a command line or smuggle a second one. */
function assertLineSafe(value: string, what: string): void {
  if (/[\r\n\0]/.test(value)) throw new Pop3Error(Pop3ErrorCode.POP3_BAD_ARGUMENT, `${what} contains a line break or NUL and cannot be sent`);
}

function assertMessageNumber(n: number): void {
  if (!Number.isSafeInteger(n) || n < 1) throw new Pop3Error(Pop3ErrorCode.POP3_BAD_ARGUMENT, `expected a message number (1, 2, …), got ${String(n)}`);
}

export function tlsOptionsFor(options: Pick<Pop3ConnectOptions, 'host' | 'tlsCa' | 'tlsRejectUnauthorized'>): tls.ConnectionOptions {
  return {
    host: options.host,
    ...(net.isIP(options.host) ? {} : { servername: options.host }),
    // The server's own CA is trusted in addition to the system CAs, not instead; one shared context per CA
    ...(options.tlsCa ? { secureContext: secureContextFor(options.tlsCa) } : {}),
    rejectUnauthorized: options.tlsRejectUnauthorized ?? true,
  };
}

/**
 * One POP3 session. Made by {@link connectPop3}; the steps it takes (openTcp, startImplicitTls, readGreeting,
 * startTls) are public so the server test can time and report each.
 *
 * Deletion follows POP3's UPDATE state (RFC 1939 §6): DELE only marks a message; the server removes marked messages
 * when the session ends with QUIT ({@link quit}). A session that ends any other way — {@link close}, a dropped
 * connection, a crash — removes nothing, so a message is never lost between RETR and its acknowledgement.
 */
export class Pop3Client {
  readonly #wire: Pop3Wire;
  readonly #options: Pop3ConnectOptions;
  #tls: tls.TLSSocket | undefined;
  #greeting: string | undefined;
  #capabilities: Pop3Capabilities | undefined;
  #authenticated = false;

  private constructor(wire: Pop3Wire, options: Pop3ConnectOptions) {
    this.#wire = wire;
    this.#options = options;
  }

  /** First step: the TCP connection only. */
  static async openTcp(options: Pop3ConnectOptions): Promise<Pop3Client> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const socket = await connectTcp(options.host, options.port, timeoutMs);
    return new Pop3Client(new Pop3Wire(socket, timeoutMs), options);
  }

  /** The TLS socket once TLS is up (implicit or STLS), for certificate and protocol details. */
  get tlsSocket(): tls.TLSSocket | undefined {
    return this.#tls;
  }

  /** The underlying socket (plain or TLS), e.g. for its remote address. */
  get socket(): net.Socket {
    return this.#wire.socket;
  }

  /** The server's greeting text (after +OK). */
  get greeting(): string | undefined {
    return this.#greeting;
  }

  get authenticated(): boolean {
    return this.#authenticated;
  }

  /** security: tls — the handshake before any POP3 byte (RFC 8314 §3.3, port 995). */
  async startImplicitTls(): Promise<tls.TLSSocket> {
    this.#tls = await this.#wire.upgrade(tlsOptionsFor(this.#options));
    return this.#tls;
  }

  /** The +OK greeting (RFC 1939 §4). A -ERR greeting (server busy, refusing this address) is POP3_ERR_RESPONSE. */
  async readGreeting(): Promise<string> {
    const line = await this.#wire.readLine('greeting');
    const status = parseStatus(line);
    if (!status) throw new Pop3Error(Pop3ErrorCode.POP3_PROTOCOL, `not a POP3 greeting: "${showLine(line)}"`, { during: 'greeting' });
    if (!status.ok) throw this.#errFor('greeting', status, Pop3ErrorCode.POP3_ERR_RESPONSE);
    this.#greeting = status.text;
    return status.text;
  }

  /**
   * RFC 2595 §4: STLS, then the handshake on the same connection. Capabilities seen before are forgotten: the server
   * may offer different ones (SASL mechanisms, USER) once the channel is protected.
   */
  async startTls(): Promise<tls.TLSSocket> {
    await this.#ok('STLS');
    this.#tls = await this.#wire.upgrade(tlsOptionsFor(this.#options));
    this.#capabilities = undefined;
    return this.#tls;
  }

  /** CAPA (RFC 2449 §5). Cached until STLS or login change what the server offers; `supported: false` if CAPA is refused. */
  async capabilities(): Promise<Pop3Capabilities> {
    if (this.#capabilities) return this.#capabilities;
    const status = await this.#command('CAPA');
    if (!status.ok) return (this.#capabilities = UNKNOWN_CAPABILITIES);
    const lines = (await this.#wire.readBody()).toString('utf8').split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
    return (this.#capabilities = parseCapabilities(lines));
  }

  /**
   * SASL XOAUTH2 (RFC 5034 AUTH with Google's and Microsoft's mechanism). On refusal the server first sends a
   * "+ <base64 JSON>" challenge; the client answers with an empty line and the server then ends with -ERR. The JSON
   * status comes back on the error as `xoauth2`; the token appears in no error.
   */
  async authXOAuth2(user: string, accessToken: string): Promise<void> {
    assertLineSafe(user, 'the username');
    assertLineSafe(accessToken, 'the access token');
    const response = base64(`user=${user}\x01auth=Bearer ${accessToken}\x01\x01`);
    const withInitial = `AUTH XOAUTH2 ${response}`;
    let line: string;
    if (withInitial.length + 2 <= MAX_AUTH_LINE) {
      this.#wire.send(withInitial);
      line = await this.#wire.readLine();
    } else {
      this.#wire.send('AUTH XOAUTH2');
      line = await this.#wire.readLine();
      if (isChallenge(line)) {
        this.#wire.send(response);
        line = await this.#wire.readLine();
      }
    }
    let xoauth2: XOAuth2Status | undefined;
    if (isChallenge(line)) {
      xoauth2 = decodeXOAuth2Challenge(line.slice(1));
      // The reply to the error challenge is empty: Google's documented practice, and what Dovecot and Exchange expect
      // (RFC 7628 §3.2.3 has OAUTHBEARER send %x01 instead).
      this.#wire.send('');
      line = await this.#wire.readLine();
    }
    this.#finishAuth('AUTH XOAUTH2', line, xoauth2);
  }

  /**
   * Password login: USER/PASS (RFC 1939 §7) when the server allows it, else SASL PLAIN (RFC 4616). Servers that
   * drop USER from CAPA (or refuse it) usually still take PLAIN over TLS.
   */
  async authPassword(user: string, password: string): Promise<void> {
    assertLineSafe(user, 'the username');
    assertLineSafe(password, 'the password');
    const caps = await this.capabilities();
    const plainOffered = caps.sasl.includes('PLAIN');
    if (caps.supported && !caps.user && plainOffered) return this.#authPlain(user, password);
    const userStatus = await this.#command(`USER ${user}`);
    if (!userStatus.ok) {
      if (plainOffered) return this.#authPlain(user, password);
      throw this.#errFor('USER', userStatus, Pop3ErrorCode.POP3_AUTH_FAILED);
    }
    this.#wire.send(`PASS ${password}`);
    this.#finishAuth('PASS', await this.#wire.readLine(), undefined);
  }

  /** STAT (RFC 1939 §5): messages in the maildrop and their total size in octets, deleted ones excluded. */
  async stat(): Promise<{ count: number; size: number }> {
    const status = await this.#ok('STAT');
    const m = /^(\d+)\s+(\d+)/.exec(status.text);
    if (!m) throw new Pop3Error(Pop3ErrorCode.POP3_PROTOCOL, `STAT: expected "+OK <count> <octets>", got "+OK ${showLine(status.text)}"`, { command: 'STAT' });
    return { count: Number(m[1]), size: Number(m[2]) };
  }

  /** LIST (RFC 1939 §5): each message's number and size in octets. */
  async list(): Promise<Pop3MessageInfo[]> {
    await this.#ok('LIST');
    return this.#listing('LIST', await this.#wire.readBody(), (number, rest) => {
      if (!/^\d+$/.test(rest)) return undefined;
      return { number, size: Number(rest) };
    });
  }

  /** UIDL (RFC 1939 §7): each message's number and unique id, stable across sessions. */
  async uidl(): Promise<Pop3UniqueId[]> {
    await this.#ok('UIDL');
    return this.#listing('UIDL', await this.#wire.readBody(), (number, uid) => (/^[\x21-\x7e]{1,70}$/.test(uid) ? { number, uid } : undefined));
  }

  /** UIDL n: one message's unique id, without listing the whole maildrop. */
  async uidlOf(number: number): Promise<string> {
    assertMessageNumber(number);
    const status = await this.#ok(`UIDL ${number}`);
    const m = /^\d+\s+([\x21-\x7e]{1,70})/.exec(status.text);
    if (!m) throw new Pop3Error(Pop3ErrorCode.POP3_PROTOCOL, `UIDL ${number}: expected "+OK ${number} <uid>", got "+OK ${showLine(status.text)}"`, { command: `UIDL ${number}` });
    return m[1]!;
  }

  /**
   * RETR (RFC 1939 §7): the message as raw bytes, CRLF line ends and dot-stuffing removed. `sizeHint` (the size from
   * LIST) lets a large message land in one allocation.
   */
  async retrieve(number: number, options: { sizeHint?: number; maxBytes?: number } = {}): Promise<Buffer> {
    assertMessageNumber(number);
    await this.#ok(`RETR ${number}`);
    return this.#wire.readBody(options.sizeHint ?? 0, options.maxBytes);
  }

  /** TOP (RFC 1939 §7, optional: CAPA lists TOP): the headers and the first `lines` lines of the body, raw bytes. */
  async top(number: number, lines = 0): Promise<Buffer> {
    assertMessageNumber(number);
    if (!Number.isSafeInteger(lines) || lines < 0) throw new Pop3Error(Pop3ErrorCode.POP3_BAD_ARGUMENT, `expected a line count (0, 1, …), got ${String(lines)}`);
    await this.#ok(`TOP ${number} ${lines}`);
    return this.#wire.readBody();
  }

  /** DELE (RFC 1939 §5): marks the message; only {@link quit} removes it. */
  async delete(number: number): Promise<void> {
    assertMessageNumber(number);
    await this.#ok(`DELE ${number}`);
  }

  /** RSET (RFC 1939 §5): unmarks every message marked by DELE in this session. */
  async reset(): Promise<void> {
    await this.#ok('RSET');
  }

  async noop(): Promise<void> {
    await this.#ok('NOOP');
  }

  /**
   * QUIT: after login the server enters the UPDATE state and removes the messages marked by DELE (RFC 1939 §6);
   * a -ERR then means some were not removed (POP3_ERR_RESPONSE). The connection is closed either way.
   */
  async quit(): Promise<void> {
    try {
      await this.#ok('QUIT');
    } finally {
      this.#wire.destroy();
    }
  }

  /**
   * Closes the connection without QUIT: the server never enters the UPDATE state, so messages marked by DELE stay in
   * the maildrop (RFC 1939 §6). The safe way out after an error. Idempotent.
   */
  close(): void {
    this.#wire.destroy();
  }

  async #command(line: string, shown = line): Promise<Pop3Status> {
    this.#wire.send(line);
    const reply = await this.#wire.readLine();
    const status = parseStatus(reply);
    if (!status) throw new Pop3Error(Pop3ErrorCode.POP3_PROTOCOL, `${shown}: not a POP3 response: "${showLine(reply)}"`, { command: shown, during: 'command' });
    return status;
  }

  async #ok(line: string): Promise<Pop3Status> {
    const status = await this.#command(line);
    if (!status.ok) throw this.#errFor(line, status, Pop3ErrorCode.POP3_ERR_RESPONSE);
    return status;
  }

  async #authPlain(user: string, password: string): Promise<void> {
    const response = base64(`\0${user}\0${password}`);
    let line: string;
    if (`AUTH PLAIN ${response}`.length + 2 <= MAX_AUTH_LINE) {
      this.#wire.send(`AUTH PLAIN ${response}`);
      line = await this.#wire.readLine();
    } else {
      this.#wire.send('AUTH PLAIN');
      line = await this.#wire.readLine();
      if (isChallenge(line)) {
        this.#wire.send(response);
        line = await this.#wire.readLine();
      }
    }
    // PLAIN has no error challenge; a "+" here means the server wants more than PLAIN can say: cancel (RFC 5034 §4)
    if (isChallenge(line)) {
      this.#wire.send('*');
      line = await this.#wire.readLine();
    }
    this.#finishAuth('AUTH PLAIN', line, undefined);
  }

  #finishAuth(command: string, line: string, xoauth2: XOAuth2Status | undefined): void {
    const status = parseStatus(line);
    if (!status) throw new Pop3Error(Pop3ErrorCode.POP3_PROTOCOL, `${command}: not a POP3 response: "${showLine(line)}"`, { command, during: 'command' });
    if (!status.ok) throw this.#errFor(command, status, Pop3ErrorCode.POP3_AUTH_FAILED, xoauth2);
    this.#authenticated = true;
    // RFC 2449 §5: capabilities may differ in the TRANSACTION state
    this.#capabilities = undefined;
  }

  #errFor(command: string, status: Pop3Status, code: Pop3ErrorCode, xoauth2?: XOAuth2Status): Pop3Error {
    const shown = `-ERR${status.responseCode ? ` [${status.responseCode}]` : ''} ${status.text}`.trim();
    return new Pop3Error(code, `${command}: ${shown}${xoauth2 ? ` (XOAUTH2 status ${xoauth2.raw})` : ''}`, {
      command,
      serverText: status.text,
      responseCode: status.responseCode,
      xoauth2,
      during: command === 'greeting' ? 'greeting' : 'command',
    });
  }

  #listing<T>(command: string, body: Buffer, parse: (number: number, rest: string) => T | undefined): T[] {
    const entries: T[] = [];
    for (const line of body.toString('latin1').split('\r\n')) {
      if (line === '') continue;
      const m = /^(\d+)\s+(\S+)/.exec(line);
      const entry = m ? parse(Number(m[1]), m[2]!) : undefined;
      if (entry === undefined) throw new Pop3Error(Pop3ErrorCode.POP3_PROTOCOL, `${command}: malformed line "${showLine(line)}"`, { command });
      entries.push(entry);
    }
    return entries;
  }
}

/** RFC 5034 §4: a server challenge is "+" SP base64 (an empty challenge is "+" or "+ "). Not "+OK". */
function isChallenge(line: string): boolean {
  return line === '+' || (line.startsWith('+ ') && !/^\+OK/i.test(line));
}

/**
 * Connects as configured and reads the greeting; with security starttls, also STLS (refused with POP3_TLS_FAILED
 * when CAPA does not offer it: credentials would otherwise go in clear). Ready for an auth method.
 */
export async function connectPop3(options: Pop3ConnectOptions): Promise<Pop3Client> {
  const client = await Pop3Client.openTcp(options);
  try {
    if (options.security === 'tls') await client.startImplicitTls();
    await client.readGreeting();
    if (options.security === 'starttls') {
      const caps = await client.capabilities();
      // A server without CAPA may still know STLS: try it; one that lists capabilities without STLS does not have it.
      if (caps.supported && !caps.stls) throw new Pop3Error(Pop3ErrorCode.POP3_TLS_FAILED, 'the server does not offer STLS', { during: 'tls' });
      await client.startTls();
    }
    return client;
  } catch (err) {
    client.close();
    throw err;
  }
}
