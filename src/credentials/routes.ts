// The credentials API (/api/v1/credentials…): thin handlers over CredentialService, AuthorizationFlow and TokenManager.
import type { FastifyInstance } from 'fastify';
import { requireScope } from '../http/apiAuth.js';
import type { Services } from '../services.js';

type NameParams = { Params: { name: string } };

export function registerCredentialRoutes(app: FastifyInstance, services: Services): void {
  const admin = requireScope(services.apiKeys, 'admin');
  const base = '/api/v1/credentials';

  app.get(base, { preHandler: admin }, async () => ({ credentials: await services.credentials.list() }));

  app.post(base, { preHandler: admin }, async (request, reply) => {
    const view = await services.credentials.add(request.body);
    return reply.status(201).send(view);
  });

  app.get<NameParams>(`${base}/:name`, { preHandler: admin }, async (request) => {
    const view = await services.credentials.show(request.params.name);
    return { ...view, events: await services.credentials.events(request.params.name) };
  });

  app.patch<NameParams>(`${base}/:name`, { preHandler: admin }, async (request) => services.credentials.update(request.params.name, request.body));

  app.delete<NameParams>(`${base}/:name`, { preHandler: admin }, async (request, reply) => {
    await services.credentials.remove(request.params.name);
    return reply.status(204).send();
  });

  app.post<NameParams>(`${base}/:name/authorize`, { preHandler: admin }, async (request) => services.authorization.start(request.params.name));

  app.post<NameParams>(`${base}/:name/refresh`, { preHandler: admin }, async (request) => {
    const token = await services.tokens.refresh(request.params.name);
    const view = await services.credentials.show(request.params.name);
    return { status: view.status, expiresAt: token.expiresAt, lastRefreshedAt: view.lastRefreshedAt };
  });

  // For scripts and mail clients: the key needs token:<name> (or admin). The token itself is the one secret we hand out.
  app.get<NameParams>(
    `${base}/:name/access-token`,
    { preHandler: requireScope(services.apiKeys, (request) => `token:${(request.params as { name: string }).name}`) },
    async (request, reply) => {
      const token = await services.tokens.getAccessToken(request.params.name);
      reply.header('cache-control', 'no-store');
      return { accessToken: token.accessToken.reveal(), tokenType: token.tokenType, expiresAt: token.expiresAt };
    },
  );
}
