// Starts the IMAP and POP3 proxy listeners the config file asks for (none by default) and hands them back for an orderly stop.
import type { Logger } from '../log.js';
import type { Services } from '../services.js';
import { imapProtocol } from './imap/protocol.js';
import { startProxyListener, type ProxyListener } from './listener.js';
import { POP3_PROXY_ID, pop3ProxyProtocol } from './pop3/index.js';

/**
 * One listener per configured protocol, under the config key that names it (`proxy.imap`, `proxy.pop3`). A listener
 * that cannot start stops the ones already started and fails the whole start (the message names the config key).
 */
export async function startProxyListeners(services: Services, logger: Logger): Promise<ProxyListener[]> {
  const started: ProxyListener[] = [];
  try {
    const { imap } = services.config.proxy;
    if (imap) started.push(await startProxyListener(services, 'proxy.imap', imap, imapProtocol(services, logger.child({ component: 'imap-proxy' })), logger));
    const { pop3 } = services.config.proxy;
    if (pop3) started.push(await startProxyListener(services, POP3_PROXY_ID, pop3, pop3ProxyProtocol(services, logger.child({ component: 'pop3-proxy' })), logger));
  } catch (err) {
    await Promise.allSettled(started.map((listener) => listener.stop()));
    throw err;
  }
  return started;
}

/** Stops every listener; logged-in sessions are cut (their clients reconnect after the restart). */
export async function stopProxyListeners(listeners: readonly ProxyListener[]): Promise<void> {
  await Promise.allSettled(listeners.map((listener) => listener.stop()));
}
