// The messages API: POST /api/v1/messages accepts into the durable outbox (202), GET shows a message's delivery state, an admin retries or cancels a stuck one.
import type { FastifyInstance } from 'fastify';
import type { FastifyRequest } from 'fastify';
import { allows } from '../apikeys/apiKeys.js';
import { sendersAllowed } from '../apikeys/scopes.js';
import { ErrorCode, MailgateError } from '../errors.js';
import { principalOf, requireScope } from '../http/apiAuth.js';
import type { Services } from '../services.js';

export function registerMessageRoutes(app: FastifyInstance, services: Services): void {
  const send = requireScope(services.apiKeys, 'send');
  const admin = requireScope(services.apiKeys, 'admin');
  // Attachments arrive base64-encoded (4/3 of their size) inside JSON: leave room so the size check can name the field.
  const bodyLimit = Math.ceil(services.config.outbox.maxMessageBytes * 1.4) + 1024 * 1024;

  // No request lines at info for this route: the outbox row is each message's record (GET /api/v1/messages/:id), and
  // its two log lines per message, with the worker's, cost 0.3–0.6 ms of the gateway's CPU per message (bench/README.md).
  // Failures are still logged (5xx at error), and every other route keeps its lines.
  app.post('/api/v1/messages', { preHandler: send, bodyLimit, logLevel: 'warn' }, async (request, reply) => {
    const senders = sendersAllowed(principalOf(request));
    const sender = (request.body as { sender?: unknown } | null)?.sender;
    if (senders !== undefined && !(typeof sender === 'string' && senders.includes(sender))) {
      throw new MailgateError(ErrorCode.FORBIDDEN, `this API key may send only through ${senders.map((s) => JSON.stringify(s)).join(', ')} (scope send:<sender>); got sender ${JSON.stringify(typeof sender === 'string' ? sender.slice(0, 100) : sender ?? null)}`);
    }
    const { view, created } = await services.messages.accept(request.body, callerOf(request));
    // A repeated idempotency key returns the message accepted the first time, whatever its state now.
    return reply.status(created ? 202 : 200).send({ id: view.id, status: view.status, messageId: view.messageId, priority: view.priority, ...(created ? {} : { idempotentReplay: true }) });
  });

  // A `send` key reads the messages it submitted; an admin key reads every message.
  app.get<{ Params: { id: string } }>('/api/v1/messages/:id', { preHandler: send }, async (request) =>
    allows(principalOf(request), 'admin') ? services.messages.show(request.params.id) : services.messages.showOwn(request.params.id, callerOf(request)),
  );

  app.get<{ Querystring: { limit?: string; status?: string } }>('/api/v1/messages', { preHandler: admin }, async (request) => ({
    messages: await services.messages.recent(Math.min(500, Math.max(1, Number(request.query.limit ?? 50) || 50)), request.query.status === undefined ? {} : { status: request.query.status }),
  }));

  // 409 STATE_CONFLICT when the message's status does not allow it (the message says why and what to do).
  app.post<{ Params: { id: string } }>('/api/v1/messages/:id/retry', { preHandler: admin }, async (request) => services.messages.retry(request.params.id));
  app.post<{ Params: { id: string } }>('/api/v1/messages/:id/cancel', { preHandler: admin }, async (request) => services.messages.cancel(request.params.id));
}

/** The submitter recorded on a message: the API key by id (a renamed or re-created key is another caller). */
function callerOf(request: FastifyRequest): string {
  return `apikey:${principalOf(request).id}`;
}
