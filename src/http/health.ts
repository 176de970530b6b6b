// Liveness and readiness: /healthz says the process serves HTTP, /readyz that its storage answers too.
import type { FastifyInstance } from 'fastify';
import type { Store } from '../store/store.js';

export function registerHealthRoutes(app: FastifyInstance, store: Store): void {
  app.get('/healthz', { logLevel: 'warn' }, async () => ({ status: 'ok' }));

  app.get('/readyz', { logLevel: 'warn' }, async (request, reply) => {
    try {
      await store.ping();
      return { status: 'ready', checks: { storage: 'ok' } };
    } catch (err) {
      request.log.warn({ err }, 'readiness check failed: storage');
      return reply.status(503).send({ status: 'not_ready', checks: { storage: 'unavailable' } });
    }
  });
}
