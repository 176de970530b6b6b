// Builds the HTTP server (fastify): shared error shape, health routes, and the place where domain routes are mounted.
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest, type RouteOptions } from 'fastify';
import { isMailgateError } from '../errors.js';
import { instanceOverview } from '../instances/overview.js';
import { statusOfError, UPSTREAM_CODES } from './errorStatus.js';
import { registerCredentialRoutes } from '../credentials/routes.js';
import { registerMessageRoutes } from '../outbox/routes.js';
import { registerServerRoutes } from '../servers/routes.js';
import { registerWatcherRoutes } from '../inbound/routes.js';
import { registerAccountRoutes } from '../accounts/routes.js';
import { registerCallbackRoute, type CallbackListener } from '../oauth/callbackRoute.js';
import type { Services } from '../services.js';
import { registerApiKeyRoutes } from './apiKeyRoutes.js';
import { findPrincipal, guardBeforeBody, requireScope } from './apiAuth.js';
import { fieldsOf } from '../audit/auditLog.js';
import { registerHealthRoutes } from './health.js';
import { registerOpenApiRoute } from './openapi.js';
import { registerWebUi } from '../web/ui.js';
import { browserCallback } from '../web/pages/connect.js';

export function buildHttpServer(services: Services, options: { onOAuthCallback?: CallbackListener; /** Told of every route as it is added (tests compare them with the OpenAPI document). */ onRoute?: (route: RouteOptions) => void } = {}): FastifyInstance {
  const app = Fastify({
    loggerInstance: services.logger.child({ component: 'http' }) as FastifyBaseLogger,
    // Behind a reverse proxy the admin sets MAILGATE_PUBLIC_URL; we do not trust X-Forwarded-* blindly.
    trustProxy: false,
    bodyLimit: 1024 * 1024,
  });
  // Before any route is added: API key guards move to onRequest, so nobody without a key gets a body read or parsed.
  app.addHook('onRoute', guardBeforeBody);
  if (options.onRoute) app.addHook('onRoute', options.onRoute);
  // `curl -X POST -H 'Content-Type: application/json' …/refresh` sends the header with no body: take that as {}, as
  // fastify's default parser would not (FST_ERR_CTP_EMPTY_JSON_BODY). Anything else goes to the default parser.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => (body === '' ? done(null, {}) : parseJson(request, body.toString(), done)));

  // Every error leaves as { error: { code, message } }. A 5xx says nothing specific: the detail goes to the log only.
  app.setErrorHandler((err, request, reply) => {
    if (isMailgateError(err)) {
      const status = statusOfError(err);
      const safe = status < 500 || UPSTREAM_CODES.has(err.code);
      if (!safe) request.log.error({ err }, 'request failed');
      return reply.status(status).send({ error: { code: err.code, message: safe ? err.message : 'internal error' } });
    }
    const status = (err as { statusCode?: number }).statusCode;
    if ((err as { code?: string }).code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      // The body was larger than even the base64 of the largest message allowed: the same answer as the size check.
      const limit = request.routeOptions.bodyLimit ?? services.config.outbox.maxMessageBytes;
      const size = Number(request.headers['content-length']);
      const problem = `message: ${Number.isFinite(size) ? `${(size / 1048576).toFixed(1)} MB of request` : 'the request'} is over the ${(services.config.outbox.maxMessageBytes / 1048576).toFixed(0)} MB limit (outbox.maxMessageMegabytes; requests up to ${(limit / 1048576).toFixed(0)} MB are read)`;
      return reply.status(400).send({ error: { code: 'INPUT_INVALID', message: problem } });
    }
    if (status !== undefined && status >= 400 && status < 500) {
      return reply.status(status).send({ error: { code: (err as { code?: string }).code ?? 'BAD_REQUEST', message: (err as Error).message } });
    }
    request.log.error({ err }, 'request failed');
    return reply.status(500).send({ error: { code: 'INTERNAL', message: 'internal error' } });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({ error: { code: 'NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` } }),
  );

  // The audit log: every change made through the API, by API key name; field names only, never values. Written before
  // the answer goes out (onSend, not onResponse), so what a client does after a 2xx is recorded after it.
  const recordApiChange = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (!['POST', 'PATCH', 'PUT', 'DELETE'].includes(request.method) || reply.statusCode >= 400 || !request.url.startsWith('/api/v1/')) return;
    const route = request.routeOptions.url ?? request.url.split('?')[0]!;
    if (route === '/api/v1/messages') return; // messages have their own record (the outbox)
    const params = request.params as Record<string, string> | undefined;
    const target = params?.name ?? params?.id ?? (request.body as { name?: unknown } | undefined)?.name;
    await services.audit
      .record(`apikey:${findPrincipal(request)?.name ?? 'unknown'}`, `${request.method} ${route}`, typeof target === 'string' ? target : undefined, { fields: fieldsOf(request.body), status: reply.statusCode })
      .catch((err: unknown) => request.log.error({ err }, 'cannot write the audit log'));
  };
  app.addHook('onSend', async (request, reply, payload) => {
    await recordApiChange(request, reply);
    return payload;
  });
  // API answers name credentials, keys and messages: no cache (browser, proxy) keeps them. Routes that set their own keep it.
  app.addHook('onSend', async (request, reply, payload) => {
    if (request.url.startsWith('/api/') && !reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    return payload;
  });
  app.addHook('onResponse', async (request, reply) => {
    services.metrics.httpDuration.observe({ method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });
  // Prometheus text format; a scraper authenticates with an API key holding the "metrics" scope.
  app.get('/metrics', { preHandler: requireScope(services.apiKeys, 'metrics') }, async (_request, reply) => {
    reply.header('content-type', services.metrics.registry.contentType);
    return services.metrics.registry.metrics();
  });
  registerHealthRoutes(app, services.store, services.listeners);
  // The web UI first: its cookie parser serves the callback too (a sign-in started in the UI is bound to that browser).
  const web = registerWebUi(app, services);
  registerCallbackRoute(app, services.authorization, { onOutcome: options.onOAuthCallback, audit: services.audit, browser: browserCallback(web) });
  registerApiKeyRoutes(app, services.apiKeys);
  registerCredentialRoutes(app, services);
  registerServerRoutes(app, services);
  registerMessageRoutes(app, services);
  registerWatcherRoutes(app, services);
  registerAccountRoutes(app, services);
  registerOpenApiRoute(app);
  app.get<{ Querystring: { limit?: string; target?: string } }>('/api/v1/audit', { preHandler: requireScope(services.apiKeys, 'admin') }, async (request) => ({
    entries: await services.audit.list(Math.min(1000, Math.max(1, Number(request.query.limit ?? 100) || 100)), request.query.target ? { target: request.query.target } : {}),
  }));
  app.get<{ Querystring: { status?: string } }>('/api/v1/alerts', { preHandler: requireScope(services.apiKeys, 'admin') }, async (request) => ({
    alerts: await services.alerts.list(request.query.status === 'active' || request.query.status === 'resolved' ? request.query.status : undefined),
  }));
  app.get('/api/v1/instances', { preHandler: requireScope(services.apiKeys, 'admin') }, async () => ({
    instances: await instanceOverview(services.store, services.config.instances.leaseMs),
  }));
  return app;
}
