// One SMTP relay listener: connection limits, AUTH against relay accounts, the sender rules, and the submission handed to the outbox.
import os from 'node:os';
import type { SMTPServerAddress, SMTPServerAuthentication, SMTPServerAuthenticationResponse, SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import type { RelayListenerConfig } from '../config/load.js';
import { ErrorCode, MailgateError } from '../errors.js';
import { ConnectionLimits, clientAddress } from '../listeners/connectionLimits.js';
import type { ListenerHandle } from '../listeners/registry.js';
import type { TlsIdentity } from '../listeners/tlsIdentity.js';
import type { Logger } from '../log.js';
import type { Services } from '../services.js';
import { parseAddress } from '../outbox/addresses.js';
import { allowedText, mayUse, passwordAuthAllowed, unauthenticatedNetworks, type RateLimiter, type SendingIdentity } from './policy.js';
import { readSubmission } from './submission.js';
import { RelayServer } from './wire.js';

/** A refusal in SMTP terms: the reply code, and a text that starts with its enhanced status code. */
function reply(code: number, text: string): Error & { responseCode: number } {
  return Object.assign(new Error(text), { responseCode: code });
}

const minutes = (ms: number) => `${Math.max(1, Math.ceil(ms / 60_000))} minute${Math.ceil(ms / 60_000) > 1 ? 's' : ''}`;

export interface RelayListenerOptions {
  id: string;
  config: RelayListenerConfig;
  identity: TlsIdentity | undefined;
  services: Services;
  handle: ListenerHandle;
  logger: Logger;
  /** Shared by every listener: an account's minute is the same whichever port it uses. */
  rateLimiter: RateLimiter;
}

interface SessionState {
  release: () => void;
  authenticated: boolean;
  /** Who the current transaction sends as (set at MAIL FROM). */
  identity: SendingIdentity | undefined;
}

export class RelayListener {
  readonly server: RelayServer;
  readonly #limits: ConnectionLimits;
  readonly #sessions = new WeakMap<SMTPServerSession, SessionState>();
  readonly #unauthenticated: (client: string) => boolean;
  #stopping = false;

  constructor(private readonly options: RelayListenerOptions) {
    const { config, identity, services } = options;
    const relay = services.config.relay;
    this.#limits = new ConnectionLimits(config.maxConnections, config.maxConnectionsPerClient);
    this.#unauthenticated = unauthenticatedNetworks(config);
    this.server = new RelayServer(
      {
        name: os.hostname() || 'mailgate',
        banner: 'Mailgate relay',
        logger: false,
        secure: config.tls === 'implicit',
        ...(identity ? { key: identity.key, cert: identity.cert, minVersion: 'TLSv1.2' as const } : {}),
        ...(config.tls === 'none' ? { hideSTARTTLS: true, disabledCommands: ['STARTTLS'] } : {}),
        authMethods: ['PLAIN', 'LOGIN'],
        // Who needs a login, and when AUTH may come before TLS, is decided here and in RelayConnection.
        authOptional: true,
        allowInsecureAuth: true,
        hideENHANCEDSTATUSCODES: false,
        size: relay.maxMessageBytes,
        rejectOversized: true,
        maxRecipients: relay.maxRecipients,
        socketTimeout: relay.idleTimeoutMs,
        closeTimeout: services.config.shutdownTimeoutMs,
        disableReverseLookup: true,
        onConnect: (session, callback) => this.#onConnect(session, callback),
        onClose: (session) => this.#onClose(session),
        onAuth: (auth, session, callback) => void this.#onAuth(auth, session).then((r) => callback(null, r), (err: unknown) => callback(this.#safe(err, 454, '4.7.0 Temporary authentication failure; try again later'))),
        onMailFrom: (address, session, callback) => void this.#onMailFrom(address, session).then(() => callback(), (err: unknown) => callback(this.#safe(err, 451, '4.3.0 Temporary failure; try again later'))),
        onData: (stream, session, callback) => void this.#onData(stream, session).then((text) => callback(null, text), (err: unknown) => callback(this.#safe(err, 451, '4.3.0 Temporary failure; try again later'))),
      },
      { authAllowedInClear: (client) => passwordAuthAllowed(config, { secure: false, client }) },
    );
    // Client-side trouble (a TLS handshake that fails, a reset) arrives here: it is the client's, not ours.
    this.server.on('error', (err: Error) => options.logger.debug({ err: err.message, listener: options.id }, 'relay connection error'));
  }

  /** Listens; a failure names the config key and what to change (the gateway exits with 2). */
  async listen(): Promise<string> {
    const { host, port } = this.options.config.listen;
    await new Promise<void>((resolve, reject) => {
      const onError = (cause: NodeJS.ErrnoException) => {
        const reason = cause.code === 'EADDRINUSE' ? 'the address is in use (another Mailgate, or another mail server?)' : cause.code === 'EADDRNOTAVAIL' ? 'no such local address' : cause.code === 'EACCES' ? 'ports below 1024 need privileges' : cause.message;
        reject(new MailgateError(ErrorCode.LISTEN_FAILED, `${this.options.id}.listen: cannot listen on ${host}:${port}: ${reason} (set ${this.options.id}.listen to a free host:port in the config file)`, { cause }));
      };
      this.server.server.once('error', onError);
      this.server.server.listen(port, host, () => {
        this.server.server.off('error', onError);
        resolve();
      });
    });
    const address = this.server.server.address();
    const real = address && typeof address === 'object' ? `${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}` : `${host}:${port}`;
    return real;
  }

  get port(): number {
    const address = this.server.server.address();
    return address && typeof address === 'object' ? address.port : this.options.config.listen.port;
  }

  /**
   * Orderly stop: no new connections; a message being received or committed finishes and gets its reply; every
   * other connection gets `421 4.3.2` (so does each one as soon as its transfer is done); past `timeoutMs` all are cut.
   */
  async stop(timeoutMs: number): Promise<void> {
    this.#stopping = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const sweep = () => {
      for (const connection of this.server.idleConnections()) connection.send(421, '4.3.2 Mailgate is shutting down; try again in a moment');
    };
    sweep();
    const poll = setInterval(sweep, 50);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([closed, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs + 1000)))]);
    clearInterval(poll);
    clearTimeout(timer);
    this.options.handle.setState('stopped');
  }

  /** A refusal passes as it is; anything else (a database error…) is logged and answered in general words: its text is not the client's business. */
  #safe(err: unknown, code: number, text: string): Error {
    if (err instanceof Error && typeof (err as { responseCode?: unknown }).responseCode === 'number') return err;
    this.options.logger.error({ err, listener: this.options.id }, 'relay command failed');
    return reply(code, text);
  }

  #onConnect(session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    const client = clientAddress(session.remoteAddress);
    if (this.#stopping) return callback(reply(421, '4.3.2 Mailgate is shutting down; try again in a moment'));
    const slot = this.#limits.acquire(client);
    if (!slot.ok) {
      this.options.services.metrics.relayMessages.inc({ outcome: 'connection_refused' });
      this.options.logger.warn({ listener: this.options.id, client, limit: slot.reason }, 'relay connection refused: too many connections');
      const text = slot.reason === 'listener' ? `4.7.0 Too many connections to this relay (${this.options.id}.maxConnections); try again later` : `4.7.0 Too many connections from ${client} (${this.options.id}.maxConnectionsPerClient); try again later`;
      return callback(reply(421, text));
    }
    this.#sessions.set(session, { release: slot.release, authenticated: false, identity: undefined });
    this.options.handle.sessionOpened();
    callback();
  }

  #onClose(session: SMTPServerSession): void {
    const state = this.#sessions.get(session);
    if (!state) return;
    this.#sessions.delete(session);
    state.release();
    this.options.handle.sessionClosed(state.authenticated);
  }

  async #onAuth(auth: SMTPServerAuthentication, session: SMTPServerSession): Promise<SMTPServerAuthenticationResponse> {
    const { services, handle } = this.options;
    const client = clientAddress(session.remoteAddress);
    const name = auth.username ?? '';
    // RFC 4616: an authorization identity other than the login's own is a request to act as someone else: no.
    const foreignAuthzid = auth.method === 'PLAIN' && auth.authzid && auth.authcid && auth.authzid !== auth.authcid;
    const result = await services.relayAccounts.login(foreignAuthzid ? '' : name, auth.password ?? '', { client, protocol: 'smtp' });
    if (result.ok) {
      const sender = await services.senders.find(result.account.sender);
      const from = sender ? parseAddress(sender.from) : undefined;
      if (!sender || !from?.ok) {
        services.metrics.listenerLogins.inc({ listener: 'smtp-relay', outcome: 'upstream_failed' });
        this.options.logger.error({ account: result.account.name, sender: result.account.sender }, 'relay account logged in, but its sender is missing or has no usable From address');
        throw reply(454, `4.7.0 The sender of this account is not usable; an admin must fix relay account ${result.account.name}`);
      }
      services.metrics.listenerLogins.inc({ listener: 'smtp-relay', outcome: 'success' });
      const state = this.#sessions.get(session);
      if (state) state.authenticated = true;
      handle.authenticated();
      const identity: SendingIdentity = { account: result.account.name, sender: sender.name, senderFrom: from.address, allowFrom: JSON.parse(result.account.allow_from) as string[] };
      return { user: identity };
    }
    services.metrics.listenerLogins.inc({ listener: 'smtp-relay', outcome: result.reason });
    if (result.reason === 'locked') {
      return { user: undefined, responseCode: 454, message: `4.7.0 Too many failed logins; temporarily locked, try again in ${minutes(result.retryAfterMs)}` };
    }
    // The same answer, after the same kind of delay, for an unknown account and a wrong password.
    await new Promise((resolve) => setTimeout(resolve, result.delayMs));
    return { user: undefined, responseCode: 535, message: '5.7.8 Authentication credentials invalid' };
  }

  async #onMailFrom(address: SMTPServerAddress, session: SMTPServerSession): Promise<void> {
    const { services, config } = this.options;
    const state = this.#sessions.get(session);
    if (!state) throw reply(421, '4.3.0 Session not registered; reconnect');
    state.identity = undefined;
    const client = clientAddress(session.remoteAddress);
    let identity = session.user as SendingIdentity | undefined;
    if (!identity) {
      if (!this.#unauthenticated(client)) {
        services.metrics.relayMessages.inc({ outcome: 'auth_required' });
        throw reply(530, '5.7.0 Authentication required');
      }
      const sender = await services.senders.find(config.sender!);
      const from = sender ? parseAddress(sender.from) : undefined;
      if (!sender || !from?.ok) {
        this.options.logger.error({ listener: this.options.id, sender: config.sender }, 'the sender of unauthenticated relay submissions is missing or has no usable From address');
        throw reply(451, `4.3.0 This relay's sender (${this.options.id}.sender) is not usable; an admin must fix it`);
      }
      identity = { account: 'unauthenticated', sender: sender.name, senderFrom: from.address, allowFrom: [] };
    }
    if (!mayUse(identity, address.address)) {
      services.metrics.relayMessages.inc({ outcome: 'sender_refused' });
      throw reply(550, `5.7.1 Sender <${address.address}> is not allowed for ${identity.account === 'unauthenticated' ? 'unauthenticated submissions here' : `relay account ${identity.account}`}; allowed: ${allowedText(identity)}`);
    }
    const rate = this.options.rateLimiter.take(identity.account === 'unauthenticated' ? `client:${client}` : `account:${identity.account}`);
    if (!rate.ok) {
      services.metrics.relayMessages.inc({ outcome: 'rate_limited' });
      throw reply(450, `4.7.0 Too many messages: at most ${services.config.relay.messagesPerMinute} a minute (relay.messagesPerMinute); try again in ${Math.ceil(rate.retryAfterMs / 1000)} s`);
    }
    state.identity = identity;
  }

  async #onData(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
    const { services, logger } = this.options;
    const state = this.#sessions.get(session);
    const identity = state?.identity;
    const submission = await readSubmission(stream, services.config.relay.maxMessageBytes);
    if (!identity) throw reply(503, '5.5.1 Bad sequence of commands');
    if (submission.kind === 'too_large') {
      services.metrics.relayMessages.inc({ outcome: 'too_large' });
      throw reply(552, `5.3.4 Message too big for this relay (relay.maxMessageMegabytes: ${services.config.relay.maxMessageBytes} bytes)`);
    }
    if (submission.kind === 'bad_headers') {
      services.metrics.relayMessages.inc({ outcome: 'bad_message' });
      throw reply(554, `5.6.0 ${submission.problem}`);
    }
    const from = submission.from;
    const refused = from.length === 0 ? undefined : from.find((m) => !mayUse(identity, m.address));
    if (from.length === 0 || refused) {
      services.metrics.relayMessages.inc({ outcome: 'sender_refused' });
      const what = refused ? `From <${refused.address}> is not allowed for ${identity.account === 'unauthenticated' ? 'unauthenticated submissions here' : `relay account ${identity.account}`}` : 'The message has no From header';
      throw reply(550, `5.7.1 ${what}; allowed: ${allowedText(identity)}`);
    }
    const envelope = { from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address) };
    const client = clientAddress(session.remoteAddress);
    let view;
    try {
      view = await services.messages.acceptRaw({ sender: identity.sender, envelope, headers: submission.headers, raw: submission.raw, submittedBy: { account: identity.account, client } });
    } catch (err) {
      services.metrics.relayMessages.inc({ outcome: 'store_failed' });
      logger.error({ err, listener: this.options.id, account: identity.account, client }, 'cannot store a relay submission in the outbox');
      throw reply(451, '4.3.0 Cannot store the message right now; try again later');
    }
    services.metrics.relayMessages.inc({ outcome: 'accepted' });
    logger.info({ id: view.id, listener: this.options.id, account: identity.account, client, size: submission.raw.length, recipients: envelope.to.length }, 'relay accepted a message');
    return `2.0.0 queued as ${view.id}`;
  }
}
