// Liveness and readiness: /healthz says the process serves HTTP, /readyz that its storage answers and no relay or proxy listener failed.
import type { FastifyInstance } from 'fastify';
import type { ListenerRegistry } from '../listeners/registry.js';
import type { Store } from '../store/store.js';

export function registerHealthRoutes(app: FastifyInstance, store: Store, listeners?: Pick<ListenerRegistry, 'failed'>): void {
  app.get('/healthz', { logLevel: 'warn' }, async () => ({ status: 'ok' }));

  app.get('/readyz', { logLevel: 'warn' }, async (request, reply) => {
    // A listener that should listen and does not (port taken, unreadable certificate): programs that only know a
    // password cannot reach Mailgate, so a load balancer must not send them here.
    const failed = listeners?.failed().map((l) => l.id) ?? [];
    const listenerCheck = failed.length > 0 ? `failed: ${failed.join(', ')}` : 'ok';
    try {
      await store.ping();
    } catch (err) {
      request.log.warn({ err }, 'readiness check failed: storage');
      return reply.status(503).send({ status: 'not_ready', checks: { storage: 'unavailable', listeners: listenerCheck } });
    }
    if (failed.length > 0) return reply.status(503).send({ status: 'not_ready', checks: { storage: 'ok', listeners: listenerCheck } });
    return { status: 'ready', checks: { storage: 'ok', listeners: listenerCheck } };
  });
}
