// The IMAP proxy: answers a client alone until it logs in with a proxy account's password, then logs in upstream with XOAUTH2 and relays both ways.
import type { Logger } from '../../log.js';
import type { Services } from '../../services.js';
import type { ClientConnection } from '../clientConnection.js';
import { ProtocolInputError } from '../lineReader.js';
import type { ProxyProtocol } from '../listener.js';
import { splice } from '../splice.js';
import { CapabilityCache } from './capabilities.js';
import { quote, readCommand, stringOf, type Command } from './commands.js';
import { loginUpstream } from './upstreamLogin.js';

/** Commands with a syntax error or unknown before login; past this the client is not a mail program. */
const MAX_BAD_COMMANDS = 10;
const MAX_USER_BYTES = 256;
const MAX_PASSWORD_BYTES = 1024;
const LISTENER = 'imap-proxy';

/** Commands of the authenticated state: a client that sends them first gets told to log in. */
const AFTER_LOGIN = new Set(['SELECT', 'EXAMINE', 'CREATE', 'DELETE', 'RENAME', 'SUBSCRIBE', 'UNSUBSCRIBE', 'LIST', 'LSUB', 'NAMESPACE', 'STATUS', 'APPEND', 'IDLE', 'ENABLE', 'FETCH', 'SEARCH', 'STORE', 'COPY', 'MOVE', 'EXPUNGE', 'CLOSE', 'UNSELECT', 'UID', 'CHECK', 'GETQUOTAROOT', 'GETACL', 'COMPRESS']);

export function imapProtocol(services: Services, logger: Logger): ProxyProtocol {
  const capabilities = new CapabilityCache(services, logger);
  return {
    kind: 'imap-proxy',
    protocol: 'imap',
    session: (client) => new ImapSession(services, client, capabilities, logger).run(),
    tooManyConnections: (reason) => `* BYE [UNAVAILABLE] Too many connections ${reason === 'client' ? 'from your address' : 'to this proxy'}: try again later\r\n`,
    shuttingDown: '* BYE [UNAVAILABLE] Mailgate is shutting down: reconnect in a moment\r\n',
    loginTimedOut: '* BYE Autologout: no login in time\r\n',
    loginDeadlinePassed: '* BYE Autologout: no login in time\r\n',
  };
}

type Step = 'next' | 'end';

class ImapSession {
  #bad = 0;

  constructor(
    private readonly services: Services,
    private readonly client: ClientConnection,
    private readonly capabilities: CapabilityCache,
    private readonly logger: Logger,
  ) {}

  async run(): Promise<void> {
    const client = this.client;
    client.write(`* OK [CAPABILITY ${await this.capabilities.preLogin(client)}] Mailgate IMAP proxy ready\r\n`);
    for (;;) {
      let result;
      try {
        result = await readCommand(client.reader, () => client.write('+ Ready for literal data\r\n'));
      } catch (err) {
        if (err instanceof ProtocolInputError && err.kind === 'line_too_long') return this.#bye('Command line too long');
        throw err;
      }
      if (result.kind === 'closed') return;
      if (result.kind === 'fatal') return this.#bye(result.text);
      if (result.kind === 'bad') {
        if ((await this.#badReply(result.tag ?? '*', result.text)) === 'end') return;
        continue;
      }
      if ((await this.#handle(result.command)) === 'end') return;
    }
  }

  async #handle(command: Command): Promise<Step> {
    const { tag, name, args } = command;
    const client = this.client;
    const reply = (text: string) => client.write(`${tag} ${text}\r\n`);
    const bad = (text: string) => this.#badReply(tag, text);
    switch (name) {
      case 'CAPABILITY':
        if (args.length > 0) return bad('CAPABILITY takes no arguments');
        client.write(`* CAPABILITY ${await this.capabilities.preLogin(client)}\r\n`);
        reply('OK Capability completed');
        return 'next';
      case 'NOOP':
        if (args.length > 0) return bad('NOOP takes no arguments');
        reply('OK NOOP completed');
        return 'next';
      case 'LOGOUT':
        client.write('* BYE Logging out\r\n');
        reply('OK Logout completed');
        await this.#close();
        return 'end';
      case 'ID': {
        // RFC 2971: ID ( "name" "value" … ) or ID NIL; the answer names the proxy, not the server behind it.
        const [params] = args;
        if (args.length !== 1 || (params!.kind !== 'nil' && params!.kind !== 'list')) return bad('Expected ID NIL or ID ("name" "value" …)');
        client.write(`* ID (${quote('name')} ${quote('Mailgate IMAP proxy')})\r\n`);
        reply('OK ID completed');
        return 'next';
      }
      case 'STARTTLS':
        if (args.length > 0) return bad('STARTTLS takes no arguments');
        if (client.secure) return bad('TLS is already active');
        if (!client.canStartTls) return bad('STARTTLS is not offered on this port');
        reply('OK Begin TLS negotiation now');
        try {
          await client.startTls();
        } catch (err) {
          this.logger.debug({ client: client.address, err: (err as Error).message }, 'STARTTLS handshake failed');
          return 'end';
        }
        return 'next';
      case 'LOGIN': {
        const user = stringOf(args[0]);
        const password = stringOf(args[1]);
        if (args.length !== 2 || user === undefined || password === undefined) return bad('Expected LOGIN user password');
        return this.#login(tag, user, password);
      }
      case 'AUTHENTICATE':
        return this.#authenticate(command);
      default:
        return bad(AFTER_LOGIN.has(name) ? `Log in first: ${name} needs a login (LOGIN or AUTHENTICATE PLAIN)` : 'Unknown command');
    }
  }

  /** RFC 4616 PLAIN, the initial response with the command (SASL-IR, RFC 4959) or after an empty `+` challenge. */
  async #authenticate({ tag, args }: Command): Promise<Step> {
    const client = this.client;
    const mechanism = stringOf(args[0])?.toUpperCase();
    if (!mechanism || args.length > 2) return this.#badReply(tag, 'Expected AUTHENTICATE mechanism [initial-response]');
    if (mechanism !== 'PLAIN') {
      client.write(`${tag} NO [CANNOT] Unsupported authentication mechanism: this proxy takes PLAIN or LOGIN\r\n`);
      return 'next';
    }
    if (!client.mayLogin) return this.#privacyRequired(tag);
    let response = stringOf(args[1]);
    if (response === undefined) {
      client.write('+ \r\n');
      let line: Buffer | null;
      try {
        line = await client.reader.readLine();
      } catch (err) {
        if (err instanceof ProtocolInputError && err.kind === 'line_too_long') {
          await this.#bye('Authentication response too long');
          return 'end';
        }
        throw err;
      }
      if (line === null) return 'end';
      response = line.toString('latin1');
    }
    if (response === '*') return this.#badReply(tag, 'Authentication cancelled');
    if (response === '=') response = '';
    if (response.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(response)) return this.#badReply(tag, 'Invalid base64 in the PLAIN response');
    const parts = Buffer.from(response, 'base64').toString('utf8').split('\0');
    if (parts.length !== 3) return this.#badReply(tag, 'Expected a PLAIN response: authorization identity, user and password separated by NUL');
    const [authzid, user, password] = parts as [string, string, string];
    if (authzid !== '' && authzid !== user) {
      client.write(`${tag} NO [AUTHORIZATIONFAILED] Logging in as another user is not supported\r\n`);
      return 'next';
    }
    return this.#login(tag, user, password);
  }

  async #login(tag: string, user: string, password: string): Promise<Step> {
    const client = this.client;
    const logins = this.services.metrics.listenerLogins;
    if (!client.mayLogin) return this.#privacyRequired(tag);
    if (Buffer.byteLength(user) > MAX_USER_BYTES || Buffer.byteLength(password) > MAX_PASSWORD_BYTES) {
      // The same answer as a wrong password: an over-long guess is a wrong guess.
      client.write(`${tag} NO [AUTHENTICATIONFAILED] Invalid credentials\r\n`);
      logins.inc({ listener: LISTENER, outcome: 'invalid' });
      return 'next';
    }
    // Whatever the client pipelines behind its login waits in the socket (and is the server's after a success).
    client.socket.pause();
    const result = await client.loggingIn(() => this.services.proxyAccounts.login(user, password, { client: client.address, protocol: 'imap' }));
    if (!result.ok) {
      if (result.reason === 'invalid') {
        await client.loggingIn(() => new Promise((resolve) => setTimeout(resolve, result.delayMs)));
        client.write(`${tag} NO [AUTHENTICATIONFAILED] Invalid credentials\r\n`);
      } else {
        const minutes = Math.max(1, Math.ceil(result.retryAfterMs / 60_000));
        client.write(`${tag} NO [UNAVAILABLE] Too many failed logins: this account is temporarily locked, try again in ${minutes} minute${minutes === 1 ? '' : 's'}\r\n`);
      }
      logins.inc({ listener: LISTENER, outcome: result.reason });
      client.socket.resume();
      return 'next';
    }
    const account = result.account;
    const upstream = await client.loggingIn(() => loginUpstream(this.services, account, this.capabilities, this.logger));
    if (!upstream.ok) {
      this.logger.warn({ account: account.name, client: client.address, reason: upstream.detail }, 'IMAP proxy login: upstream login failed');
      logins.inc({ listener: LISTENER, outcome: upstream.outcome });
      client.write(`${tag} ${upstream.reply}\r\n`);
      client.socket.resume();
      return 'next';
    }
    const clientLeftover = client.reader.detach();
    client.write(`${tag} OK [CAPABILITY ${upstream.capabilities.join(' ')}] Logged in\r\n`);
    client.markAuthenticated();
    logins.inc({ listener: LISTENER, outcome: 'success' });
    this.logger.info({ account: account.name, client: client.address, server: account.server }, 'IMAP proxy login');
    const bytes = this.services.metrics.proxyBytes;
    await splice(client.socket, upstream.socket, {
      clientLeftover,
      upstreamLeftover: upstream.leftover,
      onBytes: (direction, count) => bytes.inc({ listener: LISTENER, direction }, count),
      idleTimeoutMs: this.services.config.proxy.idleTimeoutMs,
    });
    return 'end';
  }

  #privacyRequired(tag: string): Step {
    this.client.write(`${tag} NO [PRIVACYREQUIRED] Use STARTTLS first: passwords are not accepted on an unencrypted connection\r\n`);
    return 'next';
  }

  async #badReply(tag: string, text: string): Promise<Step> {
    this.client.write(`${tag} BAD ${text}\r\n`);
    if (++this.#bad < MAX_BAD_COMMANDS) return 'next';
    await this.#bye('Too many invalid commands');
    return 'end';
  }

  async #bye(text: string): Promise<void> {
    this.client.write(`* BYE ${text}\r\n`);
    await this.#close();
  }

  /** Ends the connection once what was written has left (a destroy would drop the BYE). */
  async #close(): Promise<void> {
    const socket = this.client.socket;
    if (socket.destroyed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2000);
      socket.end(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
