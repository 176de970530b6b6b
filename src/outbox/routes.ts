// The messages API: POST /api/v1/messages accepts into the durable outbox (202), GET shows a message's delivery state.
import type { FastifyInstance } from 'fastify';
import { requireScope } from '../http/apiAuth.js';
import type { Services } from '../services.js';

export function registerMessageRoutes(app: FastifyInstance, services: Services): void {
  const send = requireScope(services.apiKeys, 'send');
  // Attachments arrive base64-encoded (4/3 of their size) inside JSON: leave room so the size check can name the field.
  const bodyLimit = Math.ceil(services.config.outbox.maxMessageBytes * 1.4) + 1024 * 1024;

  app.post('/api/v1/messages', { preHandler: send, bodyLimit }, async (request, reply) => {
    const { view, created } = await services.messages.accept(request.body);
    // A repeated idempotency key returns the message accepted the first time, whatever its state now.
    return reply.status(created ? 202 : 200).send({ id: view.id, status: view.status, messageId: view.messageId, ...(created ? {} : { idempotentReplay: true }) });
  });

  app.get<{ Params: { id: string } }>('/api/v1/messages/:id', { preHandler: send }, async (request) => services.messages.show(request.params.id));

  app.get<{ Querystring: { limit?: string } }>('/api/v1/messages', { preHandler: requireScope(services.apiKeys, 'admin') }, async (request) => ({
    messages: await services.messages.recent(Math.min(500, Math.max(1, Number(request.query.limit ?? 50) || 50))),
  }));
}
