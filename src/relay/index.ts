// Starts the SMTP relay listeners of `config.relay` (none configured: nothing listens) and stops them in order.
import { loadTlsIdentity } from '../listeners/tlsIdentity.js';
import type { Logger } from '../log.js';
import type { Services } from '../services.js';
import { RelayListener } from './listener.js';
import { RateLimiter } from './policy.js';

export interface RelayListeners {
  readonly listeners: readonly RelayListener[];
  /** Finishes the transfers in flight, refuses the rest with 421, and closes (up to `timeoutMs`). */
  stop(timeoutMs: number): Promise<void>;
}

/**
 * Every listener of `services.config.relay.listeners`, listening. A listener that cannot listen (or whose certificate
 * cannot be read) fails the start with a MailgateError naming its config key; the ones already started are stopped.
 */
export async function startRelayListeners(services: Services, logger: Logger): Promise<RelayListeners> {
  const { config } = services;
  const rateLimiter = new RateLimiter(config.relay.messagesPerMinute);
  const started: RelayListener[] = [];
  const stop = async (timeoutMs: number) => {
    await Promise.all(started.map((l) => l.stop(timeoutMs)));
  };
  try {
    for (const [index, listener] of config.relay.listeners.entries()) {
      const id = `relay.listeners[${index}]`;
      const listen = `${listener.listen.host}:${listener.listen.port}`;
      const handle = services.listeners.register({ id, kind: 'smtp-relay', listen, tls: listener.tls });
      try {
        if (!listener.requireAuth && listener.sender && !(await services.senders.find(listener.sender))) {
          // Not fatal: a sender can be added while Mailgate runs; until then such submissions get 451 (try later).
          logger.warn({ listener: id, sender: listener.sender }, `${id}.sender names no sender yet: unauthenticated submissions are deferred (451) until it is added`);
        }
        const identity = listener.tls === 'none' ? undefined : await loadTlsIdentity(listener, config.dataDir, id);
        const relay = new RelayListener({ id, config: listener, identity, services, handle, logger, rateLimiter });
        const real = await relay.listen();
        started.push(relay);
        const certificate = identity ? { fingerprint256: identity.fingerprint256, selfSigned: identity.selfSigned, file: identity.certFile } : null;
        handle.setState('listening', { listen: real, certificate });
        logger.info({ listener: id, listen: real, tls: listener.tls, ...(identity ? { certificate: identity.certFile, selfSigned: identity.selfSigned, certificateSha256: identity.fingerprint256 } : {}) }, 'SMTP relay listening');
      } catch (err) {
        handle.setState('failed', { error: (err as Error).message });
        throw err;
      }
    }
  } catch (err) {
    await stop(0);
    throw err;
  }
  return { listeners: started, stop };
}
