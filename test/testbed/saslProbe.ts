// A raw-socket mail client that logs in with a SASL mechanism of our choosing (XOAUTH2 or OAUTHBEARER) over
// IMAP, POP3 or SMTP submission. Real clients pick the mechanism themselves (curl 7.88 and imapflow both prefer
// OAUTHBEARER when offered), so this is how the bed proves each mechanism separately.
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

export type SaslMechanism = 'XOAUTH2' | 'OAUTHBEARER';
export type MailProtocol = 'imap' | 'pop3' | 'smtp';

export interface SaslProbeOptions {
  protocol: MailProtocol;
  port: number;
  host?: string;
  mechanism: SaslMechanism;
  user: string;
  token: string;
  /** `tls` = implicit TLS, `starttls` = upgrade first; both verify the server against `ca`. Default `none`. */
  security?: 'none' | 'tls' | 'starttls';
  ca?: string;
  timeoutMs?: number;
}

export interface SaslProbeResult {
  ok: boolean;
  /** The server's final reply to the AUTH exchange, e.g. "235 2.7.0 Logged in." */
  reply: string;
  /** For a refused token: the JSON error the server sent as SASL challenge (RFC 7628 §3.2.2), decoded. */
  saslError?: string;
  /** Everything exchanged; the client's SASL response is masked. */
  transcript: string[];
}

/** The initial client response of each mechanism (base64). */
export function saslInitialResponse(mechanism: SaslMechanism, user: string, token: string, host: string, port: number): string {
  const raw =
    mechanism === 'XOAUTH2'
      ? `user=${user}\x01auth=Bearer ${token}\x01\x01`
      : `n,a=${user},\x01host=${host}\x01port=${port}\x01auth=Bearer ${token}\x01\x01`;
  return Buffer.from(raw).toString('base64');
}

/** Reads CRLF-terminated lines from a socket, one at a time. */
class LineReader {
  private buffer = '';
  private readonly lines: string[] = [];
  private waiter: ((line: string) => void) | undefined;
  private failure: Error | undefined;
  private failWaiter: ((err: Error) => void) | undefined;

  constructor(socket: Socket | TLSSocket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      let eol: number;
      while ((eol = this.buffer.indexOf('\r\n')) >= 0) {
        this.push(this.buffer.slice(0, eol));
        this.buffer = this.buffer.slice(eol + 2);
      }
    });
    const fail = (err: Error) => {
      this.failure ??= err;
      this.failWaiter?.(this.failure);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed by server')));
  }

  private push(line: string): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w(line);
    } else this.lines.push(line);
  }

  next(timeoutMs: number): Promise<string> {
    const queued = this.lines.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply within ${timeoutMs} ms`)), timeoutMs);
      this.waiter = (line) => {
        clearTimeout(timer);
        resolve(line);
      };
      this.failWaiter = (err) => {
        clearTimeout(timer);
        reject(err);
      };
    });
  }
}

class Conversation {
  readonly transcript: string[] = [];
  private reader: LineReader;

  constructor(
    private socket: Socket | TLSSocket,
    private readonly timeoutMs: number,
  ) {
    this.reader = new LineReader(socket);
  }

  async line(): Promise<string> {
    const line = await this.reader.next(this.timeoutMs);
    this.transcript.push(`S: ${line}`);
    return line;
  }

  /** Reads until `isLast` says the reply is complete (multi-line SMTP replies, IMAP untagged lines). */
  async until(isLast: (line: string) => boolean): Promise<string> {
    for (;;) {
      const line = await this.line();
      if (isLast(line)) return line;
    }
  }

  send(line: string, sensitive = false): void {
    this.transcript.push(`C: ${sensitive ? '<sasl response>' : line}`);
    this.socket.write(`${line}\r\n`);
  }

  async upgradeToTls(ca: string | undefined, host: string): Promise<void> {
    this.socket.removeAllListeners('data');
    const secure = tlsConnect({ socket: this.socket, ca, host });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    this.socket = secure;
    this.reader = new LineReader(secure);
    this.transcript.push('-- TLS established, certificate verified --');
  }

  close(): void {
    this.socket.destroy();
  }
}

async function open(options: Required<Pick<SaslProbeOptions, 'host' | 'port' | 'timeoutMs'>> & SaslProbeOptions): Promise<Conversation> {
  const socket =
    options.security === 'tls'
      ? tlsConnect({ host: options.host, port: options.port, ca: options.ca, servername: undefined })
      : netConnect({ host: options.host, port: options.port });
  await new Promise<void>((resolve, reject) => {
    socket.once(options.security === 'tls' ? 'secureConnect' : 'connect', () => resolve());
    socket.once('error', reject);
  });
  return new Conversation(socket, options.timeoutMs);
}

const decodeChallenge = (b64: string) => Buffer.from(b64, 'base64').toString('utf8');
/** After an error challenge: XOAUTH2 expects an empty response, OAUTHBEARER a single %x01 (RFC 7628 §3.2.3). */
const abortResponse = (mechanism: SaslMechanism) => (mechanism === 'OAUTHBEARER' ? 'AQ==' : '');

export async function probeSaslLogin(probe: SaslProbeOptions): Promise<SaslProbeResult> {
  const options = { host: '127.0.0.1', timeoutMs: 10_000, security: 'none' as const, ...probe };
  const ir = saslInitialResponse(options.mechanism, options.user, options.token, options.host, options.port);
  const chat = await open(options);
  let saslError: string | undefined;
  try {
    switch (options.protocol) {
      case 'imap': {
        await chat.line(); // * OK greeting
        if (options.security === 'starttls') {
          chat.send('S1 STARTTLS');
          await chat.until((l) => l.startsWith('S1 '));
          await chat.upgradeToTls(options.ca, options.host);
        }
        chat.send(`A1 AUTHENTICATE ${options.mechanism} ${ir}`, true);
        let reply = await chat.until((l) => l.startsWith('A1 ') || l.startsWith('+'));
        if (reply.startsWith('+')) {
          saslError = decodeChallenge(reply.slice(1).trim());
          chat.send(abortResponse(options.mechanism));
          reply = await chat.until((l) => l.startsWith('A1 '));
        }
        const ok = reply.startsWith('A1 OK');
        chat.send('A2 LOGOUT');
        return { ok, reply, saslError, transcript: chat.transcript };
      }
      case 'pop3': {
        await chat.line(); // +OK greeting
        if (options.security === 'starttls') {
          chat.send('STLS');
          await chat.line();
          await chat.upgradeToTls(options.ca, options.host);
        }
        chat.send(`AUTH ${options.mechanism} ${ir}`, true);
        let reply = await chat.line();
        if (reply.startsWith('+ ') || reply === '+') {
          saslError = decodeChallenge(reply.slice(1).trim());
          chat.send(abortResponse(options.mechanism));
          reply = await chat.line();
        }
        const ok = reply.startsWith('+OK');
        chat.send('QUIT');
        return { ok, reply, saslError, transcript: chat.transcript };
      }
      case 'smtp': {
        const lastOfReply = (l: string) => /^\d{3} /.test(l);
        await chat.until(lastOfReply); // 220 greeting
        chat.send('EHLO probe.example.test');
        await chat.until(lastOfReply);
        if (options.security === 'starttls') {
          chat.send('STARTTLS');
          await chat.until(lastOfReply);
          await chat.upgradeToTls(options.ca, options.host);
          chat.send('EHLO probe.example.test');
          await chat.until(lastOfReply);
        }
        chat.send(`AUTH ${options.mechanism} ${ir}`, true);
        let reply = await chat.until(lastOfReply);
        if (reply.startsWith('334')) {
          saslError = decodeChallenge(reply.slice(4).trim());
          chat.send(abortResponse(options.mechanism));
          reply = await chat.until(lastOfReply);
        }
        const ok = reply.startsWith('235');
        chat.send('QUIT');
        return { ok, reply, saslError, transcript: chat.transcript };
      }
    }
  } finally {
    chat.close();
  }
}
