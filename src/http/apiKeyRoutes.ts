// HTTP API for API keys (admin scope): list, create (the plain key is answered once), revoke.
import type { FastifyInstance } from 'fastify';
import { parseApiKeyInput, type ApiKeyService } from '../apikeys/apiKeys.js';
import { requireScope } from './apiAuth.js';

export function registerApiKeyRoutes(app: FastifyInstance, apiKeys: ApiKeyService): void {
  const admin = requireScope(apiKeys, 'admin');

  app.get('/api/v1/apikeys', { preHandler: admin }, async () => ({ apiKeys: await apiKeys.list() }));

  app.post('/api/v1/apikeys', { preHandler: admin }, async (request, reply) => {
    // Validated here, at the edge; a bad body is an INPUT_INVALID (400) naming each wrong field.
    const input = parseApiKeyInput(request.body ?? undefined);
    const created = await apiKeys.create(input.name, input.scopes);
    // no-store: the one response that carries the plain key must not linger in a cache.
    return reply
      .status(201)
      .header('cache-control', 'no-store')
      .send({ id: created.id, name: created.name, scopes: created.scopes, createdAt: created.createdAt, key: created.key.reveal() });
  });

  app.delete<{ Params: { name: string } }>('/api/v1/apikeys/:name', { preHandler: admin }, async (request, reply) => {
    await apiKeys.revoke(request.params.name);
    return reply.status(204).send();
  });
}
