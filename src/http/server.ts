// Builds the HTTP server (fastify): shared error shape, health routes, and the place where domain routes are mounted.
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { ErrorCode, isMailgateError, type ErrorCode as Code } from '../errors.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import { registerHealthRoutes } from './health.js';

export interface HttpDependencies {
  logger: Logger;
  store: Store;
}

const STATUS_BY_CODE: Partial<Record<Code, number>> = {
  [ErrorCode.INPUT_INVALID]: 400,
  [ErrorCode.NOT_FOUND]: 404,
  [ErrorCode.ALREADY_EXISTS]: 409,
  [ErrorCode.STORE_UNAVAILABLE]: 503,
};

export function buildHttpServer(deps: HttpDependencies): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.logger.child({ component: 'http' }) as FastifyBaseLogger,
    // Behind a reverse proxy the admin sets MAILGATE_PUBLIC_URL; we do not trust X-Forwarded-* blindly.
    trustProxy: false,
    bodyLimit: 1024 * 1024,
  });

  // Every error leaves as { error: { code, message } }. A 5xx says nothing specific: the detail goes to the log only.
  app.setErrorHandler((err, request, reply) => {
    if (isMailgateError(err)) {
      const status = STATUS_BY_CODE[err.code] ?? 500;
      if (status >= 500) request.log.error({ err }, 'request failed');
      return reply.status(status).send({ error: { code: err.code, message: status >= 500 ? 'internal error' : err.message } });
    }
    const status = (err as { statusCode?: number }).statusCode;
    if (status !== undefined && status >= 400 && status < 500) {
      return reply.status(status).send({ error: { code: (err as { code?: string }).code ?? 'BAD_REQUEST', message: (err as Error).message } });
    }
    request.log.error({ err }, 'request failed');
    return reply.status(500).send({ error: { code: 'INTERNAL', message: 'internal error' } });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({ error: { code: 'NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` } }),
  );

  registerHealthRoutes(app, deps.store);
  return app;
}
