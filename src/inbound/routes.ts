// The watchers API (/api/v1/watchers…): configuration, live status, deliveries, and retrying parked ones.
import type { FastifyInstance } from 'fastify';
import { findPrincipal, requireScope } from '../http/apiAuth.js';
import type { Services } from '../services.js';

type NameParams = { Params: { name: string } };

export function registerWatcherRoutes(app: FastifyInstance, services: Services): void {
  const admin = requireScope(services.apiKeys, 'admin');
  app.get('/api/v1/watchers', { preHandler: admin }, async () => ({ watchers: await services.watchers.list() }));
  app.post('/api/v1/watchers', { preHandler: admin }, async (request, reply) => reply.status(201).send(await services.watchers.add(request.body)));
  app.get<NameParams>('/api/v1/watchers/:name', { preHandler: admin }, async (request) => services.watchers.show(request.params.name));
  app.patch<NameParams>('/api/v1/watchers/:name', { preHandler: admin }, async (request) =>
    services.watchers.update(request.params.name, request.body, {
      defaultSecretGraceMs: services.config.inbound.webhookSecretGraceMs,
      audit: services.audit,
      actor: `apikey:${findPrincipal(request)?.name ?? 'unknown'}`,
    }),
  );
  app.delete<NameParams>('/api/v1/watchers/:name', { preHandler: admin }, async (request, reply) => {
    await services.watchers.remove(request.params.name);
    return reply.status(204).send();
  });
  app.get<NameParams & { Querystring: { status?: string; limit?: string } }>('/api/v1/watchers/:name/deliveries', { preHandler: admin }, async (request) => ({
    deliveries: await services.watchers.deliveries(request.params.name, request.query.status, Math.min(500, Math.max(1, Number(request.query.limit ?? 50) || 50))),
  }));
  app.post<{ Params: { name: string; id: string } }>('/api/v1/watchers/:name/deliveries/:id/retry', { preHandler: admin }, async (request, reply) => {
    await services.watchers.retry(request.params.name, request.params.id);
    return reply.status(202).send({ id: request.params.id, status: 'pending' });
  });
}
