// The OpenAPI 3.1 document of /api/v1, built from a route table and the zod schemas that validate each request body; served at GET /api/v1/openapi.json.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { apiKeyInputSchema } from '../apikeys/apiKeys.js';
import { credentialInputSchema, credentialPatchSchema } from '../credentials/input.js';
import { watcherInputSchema } from '../inbound/model.js';
import { messageInputSchema } from '../outbox/message.js';
import { senderInputSchema } from '../senders/model.js';
import { serverInputSchema } from '../servers/model.js';
import { proxyAccountInputSchema, proxyAccountPatchSchema, relayAccountInputSchema, relayAccountPatchSchema } from '../accounts/model.js';
import { VERSION } from '../version.js';

export const OPENAPI_PATH = '/api/v1/openapi.json';

/**
 * Request bodies by component name. Each is the schema (or the PATCH form of the schema) the service validates the
 * body with, so the document cannot promise what the API refuses.
 */
const BODIES = {
  CredentialInput: credentialInputSchema,
  CredentialPatch: credentialPatchSchema,
  ApiKeyInput: apiKeyInputSchema,
  ServerInput: serverInputSchema,
  // PATCH merges the fields given over the stored server and validates the result with serverInputSchema.
  ServerPatch: serverInputSchema.omit({ name: true }).partial(),
  // Read as given (no schema in the service): both fields optional.
  ServerTest: z.strictObject({ sendTo: z.string().optional(), from: z.string().optional() }),
  SenderInput: senderInputSchema,
  SenderPatch: senderInputSchema.omit({ name: true }).partial(),
  MessageInput: messageInputSchema,
  WatcherInput: watcherInputSchema,
  // PATCH merges over the stored watcher; webhook fields one by one, graceSeconds for a secret rotation (see WatcherService.update).
  WatcherPatch: watcherInputSchema
    .omit({ name: true })
    .partial()
    .extend({
      webhook: z
        .strictObject({ ...watcherInputSchema.shape.webhook.shape, graceSeconds: z.number().int().min(0).describe('how long the replaced secret keeps signing; 0 ends it at once') })
        .partial()
        .optional(),
    }),
  RelayAccountInput: relayAccountInputSchema,
  RelayAccountPatch: relayAccountPatchSchema,
  ProxyAccountInput: proxyAccountInputSchema,
  ProxyAccountPatch: proxyAccountPatchSchema,
} satisfies Record<string, z.ZodType>;

type BodyName = keyof typeof BODIES;

export interface ApiRoute {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** As fastify spells it: `/api/v1/servers/:name`. */
  path: string;
  summary: string;
  /** The API key scope the route requires; null for none. */
  scope: string | null;
  body?: BodyName;
  query?: Record<string, string>;
  /** The success status; 204 answers no body. */
  status: number;
}

const admin = 'admin';

/** Every route under /api/v1. test/http/openapi.test.ts checks it against the routes the server registers, both ways. */
export const API_ROUTES: readonly ApiRoute[] = [
  { method: 'GET', path: OPENAPI_PATH, summary: 'This document', scope: null, status: 200 },
  { method: 'GET', path: '/api/v1/apikeys', summary: 'List API keys (never the key)', scope: admin, status: 200 },
  { method: 'POST', path: '/api/v1/apikeys', summary: 'Create an API key; the key is answered this once', scope: admin, body: 'ApiKeyInput', status: 201 },
  { method: 'DELETE', path: '/api/v1/apikeys/:name', summary: 'Revoke an API key', scope: admin, status: 204 },
  { method: 'GET', path: '/api/v1/credentials', summary: 'List credentials', scope: admin, status: 200 },
  { method: 'POST', path: '/api/v1/credentials', summary: 'Add a credential', scope: admin, body: 'CredentialInput', status: 201 },
  { method: 'GET', path: '/api/v1/credentials/:name', summary: 'Show a credential with its state history', scope: admin, status: 200 },
  { method: 'PATCH', path: '/api/v1/credentials/:name', summary: 'Change a credential (an empty or absent clientSecret keeps the stored one)', scope: admin, body: 'CredentialPatch', status: 200 },
  { method: 'DELETE', path: '/api/v1/credentials/:name', summary: 'Remove a credential', scope: admin, status: 204 },
  { method: 'POST', path: '/api/v1/credentials/:name/authorize', summary: 'The sign-in link { authorizationUrl, expiresAt }, valid 10 minutes, once', scope: admin, status: 200 },
  { method: 'POST', path: '/api/v1/credentials/:name/refresh', summary: 'Refresh the token now', scope: admin, status: 200 },
  { method: 'GET', path: '/api/v1/credentials/:name/access-token', summary: 'The access token { accessToken, tokenType, expiresAt }', scope: 'token:<name>', status: 200 },
  { method: 'GET', path: '/api/v1/servers', summary: 'List servers (never a password)', scope: admin, status: 200 },
  { method: 'POST', path: '/api/v1/servers', summary: 'Add a server', scope: admin, body: 'ServerInput', status: 201 },
  { method: 'GET', path: '/api/v1/servers/:name', summary: 'Show a server with its warnings, its sending limits and, for SMTP, its budget (used, left, a provider pause)', scope: admin, status: 200 },
  { method: 'PATCH', path: '/api/v1/servers/:name', summary: 'Change a server', scope: admin, body: 'ServerPatch', status: 200 },
  { method: 'DELETE', path: '/api/v1/servers/:name', summary: 'Remove a server', scope: admin, status: 204 },
  { method: 'POST', path: '/api/v1/servers/:name/resume', summary: 'End a pause a provider\'s throttling reply started: { resumed }', scope: admin, status: 200 },
  { method: 'POST', path: '/api/v1/servers/:name/test', summary: 'Connect, TLS, authenticate and optionally send: { ok, steps, totalMs }', scope: admin, body: 'ServerTest', status: 200 },
  { method: 'GET', path: '/api/v1/senders', summary: 'List senders', scope: admin, status: 200 },
  { method: 'POST', path: '/api/v1/senders', summary: 'Add a sender', scope: admin, body: 'SenderInput', status: 201 },
  { method: 'GET', path: '/api/v1/senders/:name', summary: 'Show a sender', scope: admin, status: 200 },
  { method: 'PATCH', path: '/api/v1/senders/:name', summary: 'Change a sender', scope: admin, body: 'SenderPatch', status: 200 },
  { method: 'DELETE', path: '/api/v1/senders/:name', summary: 'Remove a sender', scope: admin, status: 204 },
  { method: 'POST', path: '/api/v1/messages', summary: 'Accept a message into the outbox: 202 { id, status, messageId }; a repeated idempotencyKey answers 200 with the first message', scope: 'send', body: 'MessageInput', status: 202 },
  { method: 'GET', path: '/api/v1/messages', summary: 'The latest messages, newest first', scope: admin, query: { limit: '1-500, default 50', status: 'only messages in this status, e.g. failed' }, status: 200 },
  { method: 'GET', path: '/api/v1/messages/:id', summary: "A message's delivery state (a send key reads its own messages only)", scope: 'send', status: 200 },
  { method: 'POST', path: '/api/v1/messages/:id/retry', summary: 'Queue a failed or cancelled message again (409 STATE_CONFLICT otherwise)', scope: admin, status: 200 },
  { method: 'POST', path: '/api/v1/messages/:id/cancel', summary: 'Cancel a queued message (409 STATE_CONFLICT otherwise)', scope: admin, status: 200 },
  { method: 'GET', path: '/api/v1/watchers', summary: 'List watchers with their live status (never a secret)', scope: admin, status: 200 },
  { method: 'POST', path: '/api/v1/watchers', summary: 'Add a watcher', scope: admin, body: 'WatcherInput', status: 201 },
  { method: 'GET', path: '/api/v1/watchers/:name', summary: 'Show a watcher', scope: admin, status: 200 },
  { method: 'PATCH', path: '/api/v1/watchers/:name', summary: 'Change a watcher; a new webhook.secret rotates it (the old one signs on for webhook.graceSeconds)', scope: admin, body: 'WatcherPatch', status: 200 },
  { method: 'DELETE', path: '/api/v1/watchers/:name', summary: 'Remove a watcher', scope: admin, status: 204 },
  { method: 'GET', path: '/api/v1/watchers/:name/deliveries', summary: "A watcher's inbound deliveries", scope: admin, query: { status: 'pending, delivered, parked or skipped', limit: '1-500, default 50' }, status: 200 },
  { method: 'POST', path: '/api/v1/watchers/:name/deliveries/:id/retry', summary: 'Put a parked delivery back in line', scope: admin, status: 202 },
  { method: 'GET', path: '/api/v1/relay-accounts', summary: 'List relay accounts (never a password or its hash)', scope: admin, status: 200 },
  { method: 'POST', path: '/api/v1/relay-accounts', summary: 'Add a relay account; a generated password is answered this once, with what to type into the program', scope: admin, body: 'RelayAccountInput', status: 201 },
  { method: 'GET', path: '/api/v1/relay-accounts/:name', summary: 'Show a relay account', scope: admin, status: 200 },
  { method: 'PATCH', path: '/api/v1/relay-accounts/:name', summary: 'Change a relay account', scope: admin, body: 'RelayAccountPatch', status: 200 },
  { method: 'DELETE', path: '/api/v1/relay-accounts/:name', summary: 'Remove a relay account', scope: admin, status: 204 },
  { method: 'GET', path: '/api/v1/proxy-accounts', summary: 'List proxy accounts (never a password or its hash)', scope: admin, status: 200 },
  { method: 'POST', path: '/api/v1/proxy-accounts', summary: 'Add a proxy account; a generated password is answered this once', scope: admin, body: 'ProxyAccountInput', status: 201 },
  { method: 'GET', path: '/api/v1/proxy-accounts/:name', summary: 'Show a proxy account', scope: admin, status: 200 },
  { method: 'PATCH', path: '/api/v1/proxy-accounts/:name', summary: 'Change a proxy account', scope: admin, body: 'ProxyAccountPatch', status: 200 },
  { method: 'DELETE', path: '/api/v1/proxy-accounts/:name', summary: 'Remove a proxy account', scope: admin, status: 204 },
  { method: 'GET', path: '/api/v1/audit', summary: 'The audit log: who, what, when, which fields (never values)', scope: admin, query: { limit: '1-1000, default 100', target: 'only entries about this name' }, status: 200 },
  { method: 'GET', path: '/api/v1/alerts', summary: 'Alerts', scope: admin, query: { status: 'active or resolved' }, status: 200 },
  { method: 'GET', path: '/api/v1/instances', summary: 'The serve processes on this database: heartbeat, and the watchers and alert loop each runs', scope: admin, status: 200 },
];

/** `/api/v1/servers/:name` → `/api/v1/servers/{name}`, and the parameter names in order. */
export function openApiPath(path: string): { path: string; params: string[] } {
  const params: string[] = [];
  const converted = path.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, (_m, name: string) => {
    params.push(name);
    return `{${name}}`;
  });
  return { path: converted, params };
}

/** A zod schema as an OpenAPI 3.1 schema object (JSON Schema 2020-12, the input side: what a caller sends). */
function jsonSchemaOf(name: string, schema: z.ZodType): Record<string, unknown> {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  // A $defs section would be resolved against the whole document under components: keep every schema self-contained.
  if ('$defs' in rest) throw new Error(`OpenAPI: the schema ${name} needs $defs; inline it or register it as a component`);
  return rest;
}

/**
 * What Mailgate POSTs to webhooks (src/inbound/payload.ts WebhookBody, src/alerts/channels.ts AlertNotice). These are
 * TypeScript types, not zod schemas, so they are written out here; closed objects, so that a field added to a payload
 * without a line here fails test/http/openapi.test.ts, which checks a real delivery against them.
 */
const nullable = (type: string) => ({ type: [type, 'null'] });
const closed = (properties: Record<string, unknown>, optional: string[] = []) => ({ type: 'object', properties, required: Object.keys(properties).filter((k) => !optional.includes(k)), additionalProperties: false });
const WEBHOOK_SCHEMAS: Record<string, unknown> = {
  WebhookMailbox: closed({ name: { type: 'string' }, address: { type: 'string' } }),
  InboundMessage: closed(
    {
      messageId: nullable('string'),
      date: nullable('string'),
      subject: nullable('string'),
      from: { type: 'array', items: { $ref: '#/components/schemas/WebhookMailbox' } },
      to: { type: 'array', items: { $ref: '#/components/schemas/WebhookMailbox' } },
      cc: { type: 'array', items: { $ref: '#/components/schemas/WebhookMailbox' } },
      replyTo: { type: 'array', items: { $ref: '#/components/schemas/WebhookMailbox' } },
      inReplyTo: nullable('string'),
      references: { type: 'array', items: { type: 'string' } },
      headers: { type: 'object', additionalProperties: { type: 'string' } },
      text: nullable('string'),
      html: nullable('string'),
      attachments: {
        type: 'array',
        items: closed(
          { filename: nullable('string'), contentType: { type: 'string' }, size: { type: 'integer' }, contentId: nullable('string'), content: { type: 'string', contentEncoding: 'base64', description: 'inline while the attachments total up to 1 MB' }, omitted: { const: 'too_large' } },
          ['content', 'omitted'],
        ),
      },
      size: { type: 'integer', description: 'of the raw message, in bytes' },
      parseError: { type: 'string', description: 'set when the MIME structure could not be parsed in full' },
    },
    ['parseError'],
  ),
  AckInfo: closed({ originalId: { type: 'string' }, originalMessageId: { type: 'string' }, idempotencyKey: nullable('string'), replier: { oneOf: [{ $ref: '#/components/schemas/WebhookMailbox' }, { type: 'null' }] }, firstLine: nullable('string') }),
  MessageEvent: closed(
    {
      event: { enum: ['message', 'ack'], description: 'ack: a reply acknowledging mail Mailgate sent (then `ack` is set)' },
      deliveryId: { type: 'string' },
      watcher: { type: 'string' },
      mailbox: closed({ server: { type: 'string' }, folder: { type: 'string' }, uid: nullable('integer'), uidValidity: nullable('string') }),
      message: { $ref: '#/components/schemas/InboundMessage' },
      ack: { $ref: '#/components/schemas/AckInfo' },
    },
    ['ack'],
  ),
  AlertEvent: closed({
    event: { enum: ['alert.raised', 'alert.repeated', 'alert.resolved'] },
    alert: closed({ id: { type: 'string' }, event: { enum: ['raised', 'repeated', 'resolved'] }, kind: { type: 'string' }, subject: { type: 'string' }, message: { type: 'string' }, link: nullable('string'), raisedAt: { type: 'string' }, resolvedAt: nullable('string') }),
  }),
};

function webhook(summary: string, schema: string): Record<string, unknown> {
  return {
    post: {
      summary,
      description: 'Signed: X-Mailgate-Signature over the raw body with the webhook secret; X-Mailgate-Event names the event. See docs/webhooks.md for the signature, retries and answers.',
      security: [],
      requestBody: { required: true, content: { 'application/json': { schema: { $ref: `#/components/schemas/${schema}` } } } },
      responses: { '2XX': { description: 'Received; any other answer is retried' } },
    },
  };
}

/** The document, built once per process: the schemas do not change while it runs. */
export function buildOpenApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of API_ROUTES) {
    const { path, params } = openApiPath(route.path);
    const parameters = [
      ...params.map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } })),
      ...Object.entries(route.query ?? {}).map(([name, description]) => ({ name, in: 'query', required: false, description, schema: { type: 'string' } })),
    ];
    const success =
      route.status === 204
        ? { description: 'Done; no body' }
        : { description: 'Success', content: { 'application/json': { schema: { type: 'object' } } } };
    paths[path] ??= {};
    paths[path][route.method.toLowerCase()] = {
      operationId: operationId(route),
      summary: route.summary,
      ...(route.scope === null ? { security: [] } : { description: `Needs an API key with the scope \`${route.scope}\` (or admin).`, 'x-mailgate-scope': route.scope }),
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(route.body ? { requestBody: { required: route.body !== 'ServerTest', content: { 'application/json': { schema: { $ref: `#/components/schemas/${route.body}` } } } } } : {}),
      responses: {
        [String(route.status)]: success,
        ...(route.path === '/api/v1/messages' && route.method === 'POST' ? { '200': { description: 'A repeated idempotencyKey: the message accepted the first time (idempotentReplay: true)', content: { 'application/json': { schema: { type: 'object' } } } } } : {}),
        ...(route.scope === null ? {} : { '401': { $ref: '#/components/responses/Unauthenticated' }, '403': { $ref: '#/components/responses/Forbidden' } }),
        '4XX': { $ref: '#/components/responses/Error' },
        '5XX': { $ref: '#/components/responses/Error' },
      },
    };
  }
  const schemas: Record<string, unknown> = {
    Error: {
      type: 'object',
      description: 'Every error. A 5xx says nothing specific: the detail goes to the log.',
      required: ['error'],
      properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string', description: 'e.g. INPUT_INVALID, NOT_FOUND, STATE_CONFLICT' }, message: { type: 'string', description: 'names the problem and the fix' } } } },
    },
  };
  for (const [name, schema] of Object.entries(BODIES)) schemas[name] = jsonSchemaOf(name, schema);
  Object.assign(schemas, WEBHOOK_SCHEMAS);
  const errorContent = { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } };
  return {
    openapi: '3.1.0',
    info: { title: 'Mailgate API', version: VERSION, description: 'The HTTP API of Mailgate, a self-hosted OAuth2 email gateway. Every route needs `Authorization: Bearer <api key>` (create one with `mailgate apikey create`) except this document.' },
    security: [{ apiKey: [] }],
    paths,
    webhooks: {
      message: webhook("A watcher's new message, or a reply acknowledging mail Mailgate sent (event ack), to the watcher's webhook URL", 'MessageEvent'),
      alert: webhook('An alert raised, repeated or resolved, to alerts.webhook.url', 'AlertEvent'),
    },
    components: {
      securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'A Mailgate API key; each route names the scope it needs.' } },
      schemas,
      responses: {
        Error: { description: 'The request failed: the code and a message that names the problem and the fix', content: errorContent },
        Unauthenticated: { description: 'No API key, or one that is not valid (WWW-Authenticate: Bearer)', content: errorContent },
        Forbidden: { description: "The API key lacks the route's scope", content: errorContent },
      },
    },
  };
}

/** `POST /api/v1/credentials/:name/refresh` → `postCredentialsNameRefresh`: unique because method and path are. */
function operationId(route: ApiRoute): string {
  const words = route.path.replace('/api/v1/', '').split(/[/.:-]+/).filter(Boolean);
  return route.method.toLowerCase() + words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join('');
}

/** GET /api/v1/openapi.json, without a key: the document says nothing an API key would protect. */
export function registerOpenApiRoute(app: FastifyInstance): void {
  let document: string | undefined;
  app.get(OPENAPI_PATH, async (_request, reply) => {
    document ??= JSON.stringify(buildOpenApiDocument());
    return reply.header('content-type', 'application/json; charset=utf-8').header('cache-control', 'no-cache').send(document);
  });
}
