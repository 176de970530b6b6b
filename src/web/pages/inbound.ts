// The inbound pages of the web UI (being written).
import type { FastifyInstance } from 'fastify';
import type { WebContext } from '../context.js';

export function registerInboundPages(app: FastifyInstance, ctx: WebContext): void {
  void app;
  void ctx;
}
