// The servers and senders API (/api/v1/servers…, /api/v1/senders…): thin handlers over ServerService and SenderService.
import type { FastifyInstance } from 'fastify';
import { requireScope } from '../http/apiAuth.js';
import type { Services } from '../services.js';
import { testServer } from './serverTest.js';

type NameParams = { Params: { name: string } };

export function registerServerRoutes(app: FastifyInstance, services: Services): void {
  const admin = requireScope(services.apiKeys, 'admin');

  app.get('/api/v1/servers', { preHandler: admin }, async () => ({ servers: await services.servers.list() }));
  app.post('/api/v1/servers', { preHandler: admin }, async (request, reply) => reply.status(201).send(await services.servers.add(request.body)));
  app.get<NameParams>('/api/v1/servers/:name', { preHandler: admin }, async (request) => services.servers.show(request.params.name));
  app.patch<NameParams>('/api/v1/servers/:name', { preHandler: admin }, async (request) => services.servers.update(request.params.name, request.body));
  app.delete<NameParams>('/api/v1/servers/:name', { preHandler: admin }, async (request, reply) => {
    await services.servers.remove(request.params.name);
    return reply.status(204).send();
  });

  // A provider's pause (after a throttling reply) ends now instead of at its time.
  app.post<NameParams>('/api/v1/servers/:name/resume', { preHandler: admin }, async (request) => services.servers.resume(request.params.name));

  // Connect, TLS, authenticate and optionally send: each step with its timing and, on failure, its explanation.
  app.post<NameParams & { Body: { sendTo?: string; from?: string } | undefined }>('/api/v1/servers/:name/test', { preHandler: admin }, async (request) => {
    const server = services.serverRepo.resolve(await services.serverRepo.get(request.params.name));
    const body = request.body ?? {};
    return testServer(server, services, { ...(body.sendTo ? { sendTo: body.sendTo } : {}), ...(body.from ? { from: body.from } : {}) });
  });

  app.get('/api/v1/senders', { preHandler: admin }, async () => ({ senders: await services.senders.list() }));
  app.post('/api/v1/senders', { preHandler: admin }, async (request, reply) => reply.status(201).send(await services.senders.add(request.body)));
  app.get<NameParams>('/api/v1/senders/:name', { preHandler: admin }, async (request) => services.senders.show(request.params.name));
  app.patch<NameParams>('/api/v1/senders/:name', { preHandler: admin }, async (request) => services.senders.update(request.params.name, request.body));
  app.delete<NameParams>('/api/v1/senders/:name', { preHandler: admin }, async (request, reply) => {
    await services.senders.remove(request.params.name);
    return reply.status(204).send();
  });
}
