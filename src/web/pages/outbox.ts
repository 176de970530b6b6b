// The outbox pages of the web UI (being written).
import type { FastifyInstance } from 'fastify';
import type { WebContext } from '../context.js';

export function registerOutboxPages(app: FastifyInstance, ctx: WebContext): void {
  void app;
  void ctx;
}
