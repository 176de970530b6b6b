// A proxy listener (IMAP or POP3): accepts clients within the connection limits, does implicit TLS, runs the protocol's session, and stops in order.
import net from 'node:net';
import tls from 'node:tls';
import type { ListenerConfig } from '../config/load.js';
import { ErrorCode, MailgateError } from '../errors.js';
import { ConnectionLimits, clientAddress, isLoopback } from '../listeners/connectionLimits.js';
import type { ListenerHandle, ListenerKind } from '../listeners/registry.js';
import { loadTlsIdentity } from '../listeners/tlsIdentity.js';
import type { Logger } from '../log.js';
import type { Services } from '../services.js';
import { ClientConnection, waitForHandshake } from './clientConnection.js';
import { UPSTREAM_BUFFER_BYTES } from './upstream.js';

/** A client must have logged in within this many login timeouts of connecting, however busy it keeps the line. */
export const LOGIN_DEADLINE_TIMEOUTS = 5;

export interface ProxyProtocol {
  kind: ListenerKind;
  /** `imap` or `pop3`: in logs, metrics and the audit. */
  protocol: 'imap' | 'pop3';
  /** Runs one client from greeting to close; resolves when the session is over. */
  session(client: ClientConnection): Promise<void>;
  /** The line a client gets when the listener or its address has too many connections, before the close. */
  tooManyConnections(reason: 'listener' | 'client'): string;
  /** Said to clients still before login when Mailgate stops. */
  shuttingDown: string;
  /** Said when a client was silent too long before logging in. */
  loginTimedOut: string;
  /** Said when the client has not logged in LOGIN_DEADLINE_TIMEOUTS × the login timeout after connecting. */
  loginDeadlinePassed: string;
}

export interface ProxyListener {
  readonly id: string;
  /** Where it listens (the real port when 0 was configured). */
  readonly address: { host: string; port: number };
  /** Stops accepting; clients before login are told and closed; logged-in sessions are cut (their clients reconnect). */
  stop(): Promise<void>;
}

export async function startProxyListener(services: Services, id: string, config: ListenerConfig, protocol: ProxyProtocol, logger: Logger): Promise<ProxyListener> {
  const listen = `${config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host}:${config.listen.port}`;
  const handle = services.listeners.register({ id, kind: protocol.kind, listen, tls: config.tls });
  let secureContext: tls.SecureContext | undefined;
  let certificate: { fingerprint256: string; selfSigned: boolean; file: string } | null = null;
  try {
    if (config.tls !== 'none') {
      const identity = await loadTlsIdentity(config, services.config.dataDir, id);
      secureContext = tls.createSecureContext({ cert: identity.cert, key: identity.key, minVersion: 'TLSv1.2' });
      certificate = { fingerprint256: identity.fingerprint256, selfSigned: identity.selfSigned, file: identity.certFile };
    }
  } catch (err) {
    handle.setState('failed', { error: (err as Error).message });
    throw err;
  }

  const limits = new ConnectionLimits(config.maxConnections, config.maxConnectionsPerClient);
  const sessions = new Set<ClientConnection>();
  const sockets = new Set<net.Socket>();
  let stopping = false;

  const server = net.createServer({ noDelay: true, keepAlive: true, keepAliveInitialDelay: 60_000 }, (raw) => {
    raw.on('error', () => raw.destroy());
    if (stopping) return void raw.destroy();
    const address = clientAddress(raw.remoteAddress);
    const slot = limits.acquire(address);
    if (!slot.ok) {
      logger.warn({ client: address, reason: slot.reason }, 'connection refused: too many connections');
      if (config.tls === 'implicit') raw.destroy();
      else raw.end(protocol.tooManyConnections(slot.reason));
      return;
    }
    sockets.add(raw);
    handle.sessionOpened();
    let client: ClientConnection | undefined;
    // Besides the idle timeout below, one deadline from accept to login that traffic does not reset: a client that
    // chatters CAPABILITY/NOOP or drips bytes cannot hold a connection slot for ever without logging in.
    const loginDeadline = setTimeout(() => {
      if (client?.isAuthenticated) return;
      client?.write(protocol.loginDeadlinePassed);
      raw.destroy();
    }, services.config.proxy.loginTimeoutMs * LOGIN_DEADLINE_TIMEOUTS);
    raw.once('close', () => {
      clearTimeout(loginDeadline);
      sockets.delete(raw);
      slot.release();
      handle.sessionClosed(client?.isAuthenticated ?? false);
      if (client) sessions.delete(client);
    });
    void (async () => {
      let socket: net.Socket = raw;
      if (config.tls === 'implicit') {
        const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: secureContext!, highWaterMark: UPSTREAM_BUFFER_BYTES } as tls.TLSSocketOptions);
        secure.on('error', () => secure.destroy());
        try {
          await waitForHandshake(secure);
        } catch (err) {
          logger.debug({ client: address, err: (err as Error).message }, 'TLS handshake failed');
          raw.destroy();
          return;
        }
        secure.setNoDelay(true);
        socket = secure;
      }
      client = new ClientConnection(socket, address, isLoopback(address), config, secureContext, handle);
      sessions.add(client);
      // Before login a client silent this long is closed (any byte either way restarts the count).
      raw.setTimeout(services.config.proxy.loginTimeoutMs, () => {
        // Silence while we check its password or log in upstream is the client waiting for us: the next byte re-arms it.
        if (client?.isAuthenticated || client?.isLoggingIn) return;
        client?.write(protocol.loginTimedOut);
        raw.destroy();
      });
      try {
        await protocol.session(client);
      } catch (err) {
        logger.debug({ client: address, err: (err as Error).message }, 'proxy session ended with an error');
      } finally {
        client.close();
      }
    })();
  });

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: config.listen.host, port: config.listen.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const reason = code === 'EADDRINUSE' ? 'the address is in use' : code === 'EADDRNOTAVAIL' ? 'no such local address' : code === 'EACCES' ? 'permission denied (ports below 1024 need privileges)' : (cause as Error).message;
    const message = `${id}.listen: cannot listen on ${listen}: ${reason} (choose a free host:port in the config file)`;
    handle.setState('failed', { error: message });
    throw new MailgateError(ErrorCode.LISTEN_FAILED, message, { cause });
  }
  const bound = server.address() as net.AddressInfo;
  const actual = { host: config.listen.host, port: bound.port };
  const shown = `${actual.host.includes(':') ? `[${actual.host}]` : actual.host}:${actual.port}`;
  handle.setState('listening', { listen: shown, certificate });
  logger.info({ listener: id, listen: shown, tls: config.tls, ...(certificate ? { certificateSha256: certificate.fingerprint256, selfSigned: certificate.selfSigned } : {}) }, `${protocol.protocol.toUpperCase()} proxy listening`);

  return {
    id,
    address: actual,
    async stop() {
      stopping = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const client of sessions) {
        if (!client.isAuthenticated) client.write(protocol.shuttingDown);
      }
      for (const socket of sockets) socket.destroy();
      await closed;
      handle.setState('stopped');
    },
  };
}

export type { ListenerHandle };
