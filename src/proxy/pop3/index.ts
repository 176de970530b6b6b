// The POP3 proxy: the protocol the shared proxy listener runs for `proxy.pop3`, and its start.
import type { ListenerConfig } from '../../config/load.js';
import type { Logger } from '../../log.js';
import type { Services } from '../../services.js';
import { LOGIN_DEADLINE_TIMEOUTS, startProxyListener, type ProxyListener, type ProxyProtocol } from '../listener.js';
import { UpstreamCapabilities } from './capabilities.js';
import { Pop3ProxySession } from './session.js';

/** The config key the listener comes from: its id in status, /readyz and the web UI. */
export const POP3_PROXY_ID = 'proxy.pop3';

export function pop3ProxyProtocol(services: Services, logger: Logger): ProxyProtocol {
  const capabilities = new UpstreamCapabilities(services, logger);
  const loginSeconds = Math.round(services.config.proxy.loginTimeoutMs / 1000);
  return {
    kind: 'pop3-proxy',
    protocol: 'pop3',
    session: (client) => new Pop3ProxySession({ services, capabilities, logger }, client).run(),
    // RFC 3206 §4: SYS/TEMP, the condition is temporary; the client may try again later
    tooManyConnections: (reason) =>
      reason === 'client'
        ? '-ERR [SYS/TEMP] Too many connections from your address: close some and try again\r\n'
        : '-ERR [SYS/TEMP] Too many connections to this proxy: try again in a minute\r\n',
    shuttingDown: '-ERR [SYS/TEMP] Mailgate is shutting down: try again in a minute\r\n',
    loginTimedOut: `-ERR Disconnected: no login within ${loginSeconds} seconds\r\n`,
    loginDeadlinePassed: `-ERR Disconnected: no login within ${loginSeconds * LOGIN_DEADLINE_TIMEOUTS} seconds of connecting\r\n`,
  };
}

/** Starts the `proxy.pop3` listener (resolves once it listens). */
export function startPop3Proxy(services: Services, config: ListenerConfig, logger: Logger): Promise<ProxyListener> {
  return startProxyListener(services, POP3_PROXY_ID, config, pop3ProxyProtocol(services, logger), logger);
}
