// The relay and proxy accounts API (/api/v1/relay-accounts…, /api/v1/proxy-accounts…): thin handlers over RelayAccounts and ProxyAccounts; a password is answered only when Mailgate generated it, once.
import type { FastifyInstance } from 'fastify';
import { ErrorCode, MailgateError } from '../errors.js';
import { requireScope } from '../http/apiAuth.js';
import type { Services } from '../services.js';
import type { WithPassword } from './model.js';
import { programSettings, type ProgramProtocol, type ProgramSettings } from './programSettings.js';

type NameParams = { Params: { name: string } };

/** The body must be a JSON object; anything else is named with what to send instead. */
function objectBody(body: unknown, fields: string): Record<string, unknown> {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw new MailgateError(ErrorCode.INPUT_INVALID, `body: expected a JSON object with ${fields}`);
  return body as Record<string, unknown>;
}

/** The view, the generated password (only when Mailgate made one now) and what to type into the program. */
function answer<V extends object>(result: WithPassword<V>, settings: ProgramSettings[]): V & { password?: string; settings: ProgramSettings[] } {
  return { ...result.account, ...(result.generatedPassword !== undefined ? { password: result.generatedPassword } : {}), settings };
}

export function registerAccountRoutes(app: FastifyInstance, services: Services): void {
  const admin = requireScope(services.apiKeys, 'admin');
  const relaySettings = (name: string) => programSettings(services.config, 'smtp', name, services.listeners.list());
  const proxySettings = async (name: string, server: string): Promise<ProgramSettings[]> => {
    const row = await services.serverRepo.find(server);
    const protocol: ProgramProtocol = row?.protocol === 'pop3' ? 'pop3' : 'imap';
    return programSettings(services.config, protocol, name, services.listeners.list());
  };

  const relay = '/api/v1/relay-accounts';
  const relayFields = 'name, sender, allowFrom (optional) and password or generatePassword: true';
  app.get(relay, { preHandler: admin }, async () => ({ relayAccounts: await services.relayAccounts.list() }));
  app.post(relay, { preHandler: admin }, async (request, reply) => {
    const result = await services.relayAccounts.add(objectBody(request.body, relayFields));
    reply.header('cache-control', 'no-store');
    return reply.status(201).send(answer(result, relaySettings(result.account.name)));
  });
  app.get<NameParams>(`${relay}/:name`, { preHandler: admin }, async (request) => {
    const view = await services.relayAccounts.show(request.params.name);
    return { ...view, settings: relaySettings(view.name) };
  });
  app.patch<NameParams>(`${relay}/:name`, { preHandler: admin }, async (request, reply) => {
    const result = await services.relayAccounts.update(request.params.name, objectBody(request.body, 'sender, allowFrom, password or generatePassword: true'));
    reply.header('cache-control', 'no-store');
    return answer(result, relaySettings(result.account.name));
  });
  app.delete<NameParams>(`${relay}/:name`, { preHandler: admin }, async (request, reply) => {
    await services.relayAccounts.remove(request.params.name);
    return reply.status(204).send();
  });

  const proxy = '/api/v1/proxy-accounts';
  const proxyFields = 'name, server and password or generatePassword: true';
  app.get(proxy, { preHandler: admin }, async () => ({ proxyAccounts: await services.proxyAccounts.list() }));
  app.post(proxy, { preHandler: admin }, async (request, reply) => {
    const result = await services.proxyAccounts.add(objectBody(request.body, proxyFields));
    reply.header('cache-control', 'no-store');
    return reply.status(201).send(answer(result, await proxySettings(result.account.name, result.account.server)));
  });
  app.get<NameParams>(`${proxy}/:name`, { preHandler: admin }, async (request) => {
    const view = await services.proxyAccounts.show(request.params.name);
    return { ...view, settings: await proxySettings(view.name, view.server) };
  });
  app.patch<NameParams>(`${proxy}/:name`, { preHandler: admin }, async (request, reply) => {
    const result = await services.proxyAccounts.update(request.params.name, objectBody(request.body, 'server, password or generatePassword: true'));
    reply.header('cache-control', 'no-store');
    return answer(result, await proxySettings(result.account.name, result.account.server));
  });
  app.delete<NameParams>(`${proxy}/:name`, { preHandler: admin }, async (request, reply) => {
    await services.proxyAccounts.remove(request.params.name);
    return reply.status(204).send();
  });
}
