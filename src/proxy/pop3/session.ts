// One POP3 proxy client: the pre-login state machine the proxy answers alone (CAPA, STLS, USER/PASS, AUTH PLAIN, QUIT), then the upstream login and the splice.
import type { Logger } from '../../log.js';
import type { Services } from '../../services.js';
import type { ClientConnection } from '../clientConnection.js';
import { ProtocolInputError } from '../lineReader.js';
import { splice } from '../splice.js';
import type { UpstreamCapabilities } from './capabilities.js';
import { MAX_BAD_COMMANDS, MAX_COMMAND_LINE, MAX_FAILED_LOGINS, Reply, decodePlain, isBinary, parseCommand } from './commands.js';
import { loginUpstream } from './upstreamLogin.js';

export const LISTENER_LABEL = 'pop3-proxy';

export interface SessionDeps {
  services: Services;
  capabilities: UpstreamCapabilities;
  logger: Logger;
}

/** What a login attempt leaves behind: the session goes on (a refusal), is over (closed), or became a splice (done). */
type LoginEnd = 'continue' | 'close' | 'spliced';

/** A line from the client, or why there is none: it closed, or sent something that ends the session. */
type Input = { line: Buffer } | { end: 'closed' } | { end: 'hostile'; reply: string };

export class Pop3ProxySession {
  #user: string | undefined;
  #bad = 0;
  #failedLogins = 0;

  constructor(
    private readonly deps: SessionDeps,
    private readonly client: ClientConnection,
  ) {}

  /** RFC 1939 AUTHORIZATION state, answered by the proxy; returns when the client is gone or the splice ended. */
  async run(): Promise<void> {
    this.#write(Reply.greeting);
    for (;;) {
      const input = await this.#readLine();
      if ('end' in input) {
        if (input.end === 'hostile') await this.#finish(input.reply);
        return;
      }
      const command = parseCommand(input.line.toString('utf8'));
      let end: LoginEnd = 'continue';
      switch (command.verb) {
        case 'CAPA':
          this.#write(['+OK Capability list follows', ...(await this.deps.capabilities.forClient(this.client)), '.'].join('\r\n'));
          break;
        case 'STLS':
          end = await this.#startTls();
          break;
        case 'USER':
          if (this.#refusePlaintext()) break;
          this.#user = command.name;
          this.#write(Reply.userAccepted);
          break;
        case 'PASS': {
          if (this.#refusePlaintext()) break;
          const user = this.#user;
          this.#user = undefined;
          if (user === undefined) this.#write(Reply.passWithoutUser);
          else end = await this.#login(user, command.password);
          break;
        }
        case 'AUTH':
          end = await this.#auth(command.mechanism, command.initialResponse);
          break;
        case 'QUIT':
          await this.#finish(Reply.bye);
          return;
        case 'APOP':
          this.#write(Reply.apop);
          break;
        case 'NOT_YET':
          this.#write(Reply.notYet(command.name));
          break;
        case 'UNKNOWN':
          this.#bad += 1;
          this.#write(Reply.unknown);
          break;
        case 'MALFORMED':
          this.#bad += 1;
          this.#write(command.reply);
          break;
      }
      if (end === 'spliced') return;
      if (end === 'close') return void (await this.#finish(undefined));
      if (this.#bad >= MAX_BAD_COMMANDS) return void (await this.#finish(Reply.tooManyBad));
    }
  }

  /** RFC 2595 §4. ClientConnection drops whatever the client sent after STLS before the handshake (CVE-2011-0411). */
  async #startTls(): Promise<LoginEnd> {
    if (this.client.secure) {
      this.#write(Reply.stlsAlready);
      return 'continue';
    }
    if (!this.client.canStartTls) {
      this.#write(Reply.stlsUnavailable);
      return 'continue';
    }
    this.#write(Reply.stlsGo);
    try {
      await this.client.startTls();
    } catch (err) {
      this.deps.logger.debug({ client: this.client.address, err: (err as Error).message }, 'POP3 proxy: TLS handshake after STLS failed');
      return 'close';
    }
    // RFC 2595 §4: the state before TLS is forgotten
    this.#user = undefined;
    return 'continue';
  }

  /** RFC 5034 AUTH: PLAIN with an initial response or after the "+ " continuation; "*" cancels. */
  async #auth(mechanism: string | undefined, initialResponse: string | undefined): Promise<LoginEnd> {
    if (mechanism === undefined) {
      // RFC 1734's bare AUTH lists the mechanisms; older clients still ask that way
      this.#write('+OK\r\nPLAIN\r\n.');
      return 'continue';
    }
    if (mechanism !== 'PLAIN') {
      this.#write(Reply.authMechanism);
      return 'continue';
    }
    if (this.#refusePlaintext()) return 'continue';
    let response = initialResponse;
    if (response === undefined) {
      this.#write(Reply.saslContinue);
      const input = await this.#readLine();
      if ('end' in input) {
        if (input.end === 'hostile') await this.#finish(input.reply);
        return 'close';
      }
      response = input.line.toString('utf8').trim();
    }
    if (response === '*') {
      this.#write(Reply.authCancelled);
      return 'continue';
    }
    const plain = decodePlain(response);
    if (!plain.ok) {
      this.#bad += 1;
      this.#write(plain.reply);
      return 'continue';
    }
    return this.#login(plain.user, plain.password);
  }

  /** Passwords only where they may cross: TLS, loopback, or a listener that allows them in clear. */
  #refusePlaintext(): boolean {
    if (this.client.mayLogin) return false;
    this.#write(this.client.canStartTls ? Reply.tlsFirst : Reply.noTls);
    return true;
  }

  async #login(user: string, password: string): Promise<LoginEnd> {
    const { services, logger } = this.deps;
    const logins = services.metrics.listenerLogins;
    const result = await this.client.loggingIn(() => services.proxyAccounts.login(user, password, { client: this.client.address, protocol: 'pop3' }));
    if (!result.ok) {
      if (result.reason === 'locked') {
        logins.inc({ listener: LISTENER_LABEL, outcome: 'locked' });
        this.#write(Reply.locked(result.retryAfterMs));
        return 'continue';
      }
      // the growing delay of the login guard, before the answer (unknown account and wrong password alike)
      await this.client.loggingIn(() => new Promise((resolve) => setTimeout(resolve, result.delayMs)));
      logins.inc({ listener: LISTENER_LABEL, outcome: 'invalid' });
      this.#write(Reply.invalid);
      this.#failedLogins += 1;
      if (this.#failedLogins >= MAX_FAILED_LOGINS) {
        await this.#finish(Reply.tooManyFailures);
        return 'close';
      }
      return 'continue';
    }

    const account = result.account;
    const upstream = await this.client.loggingIn(() => loginUpstream(services, account, logger));
    if (!upstream.ok) {
      logins.inc({ listener: LISTENER_LABEL, outcome: 'upstream_failed' });
      logger.warn({ client: this.client.address, account: account.name, server: account.server, reason: upstream.detail }, 'POP3 proxy: upstream login failed');
      this.#write(upstream.reply);
      return 'continue';
    }
    // The client may have left while the upstream login ran: a closed socket never emits 'close' again for the splice.
    if (this.client.socket.destroyed || upstream.socket.destroyed) {
      upstream.socket.destroy();
      return 'close';
    }
    logins.inc({ listener: LISTENER_LABEL, outcome: 'success' });
    // Commands pipelined after the login (RFC 2449 PIPELINING) are the server's to answer.
    const clientLeftover = this.client.reader.detach();
    this.#write(upstream.reply);
    this.client.markAuthenticated();
    logger.info({ client: this.client.address, account: account.name, server: account.server }, 'POP3 proxy session logged in');
    const bytes = services.metrics.proxyBytes;
    await splice(this.client.socket, upstream.socket, {
      clientLeftover,
      upstreamLeftover: upstream.leftover,
      idleTimeoutMs: services.config.proxy.idleTimeoutMs,
      onBytes: (direction, count) => bytes.inc({ listener: LISTENER_LABEL, direction }, count),
    });
    return 'spliced';
  }

  /** The next command line, bounded; a line too long or binary ends the session with its -ERR. */
  async #readLine(): Promise<Input> {
    let line: Buffer | null;
    try {
      line = await this.client.reader.readLine();
    } catch (err) {
      if (err instanceof ProtocolInputError && err.kind === 'line_too_long') return { end: 'hostile', reply: Reply.lineTooLong };
      return { end: 'closed' };
    }
    if (line === null) return { end: 'closed' };
    if (line.length > MAX_COMMAND_LINE) return { end: 'hostile', reply: Reply.lineTooLong };
    if (isBinary(line)) return { end: 'hostile', reply: Reply.binary };
    return { line };
  }

  #write(reply: string): void {
    this.client.write(`${reply}\r\n`);
  }

  /**
   * Last words, then the close once they are sent (or after a second, for a client that does not read). Input is
   * read and dropped meanwhile: closing with unread bytes would send a reset, and a client still writing its 1 MB
   * line could lose the -ERR that tells it why.
   */
  async #finish(reply: string | undefined): Promise<void> {
    const socket = this.client.socket;
    if (socket.destroyed) return;
    this.client.reader.detach();
    socket.on('data', () => undefined);
    socket.on('error', () => socket.destroy());
    socket.resume();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 1000);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      if (reply === undefined) socket.end();
      else socket.end(`${reply}\r\n`);
    });
  }
}
