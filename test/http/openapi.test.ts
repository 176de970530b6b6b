// Proves GET /api/v1/openapi.json: a valid OpenAPI 3.1 document, served without a key, naming exactly the routes the server registers, and whose message schema refuses and admits what POST /api/v1/messages does.
import type { RouteOptions } from 'fastify';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildHttpServer, openTestServices, type TestServices } from '../support/services.js';
import { getFreePort } from '../testbed/ports.js';

let services: TestServices;
let http: ReturnType<typeof buildHttpServer>;
let url: string;
let adminKey: string;
const registered = new Set<string>();
let document: any;

beforeAll(async () => {
  const port = await getFreePort();
  url = `http://127.0.0.1:${port}`;
  services = await openTestServices({ publicUrl: url });
  // The real server, told of every route as it is added: the set the document must match.
  http = buildHttpServer(services, {
    onRoute: (route: RouteOptions) => {
      for (const method of [route.method].flat()) if (route.url.startsWith('/api/v1/') && method !== 'HEAD') registered.add(`${method} ${route.url}`);
    },
  });
  await http.listen({ host: '127.0.0.1', port });
  adminKey = (await services.apiKeys.create('openapi-admin', ['admin'])).key.reveal();
  const res = await fetch(`${url}/api/v1/openapi.json`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  document = await res.json();
});
afterAll(async () => {
  await http?.close();
  await services?.close();
});

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${adminKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

describe('GET /api/v1/openapi.json', () => {
  it('serves, without an API key, a document that a real OpenAPI 3.1 validator accepts', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(document));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    expect(document.openapi).toBe('3.1.0');
    // Bearer API keys for every route but the document itself; the shared error shape.
    expect(document.components.securitySchemes.apiKey).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(document.security).toEqual([{ apiKey: [] }]);
    expect(document.paths['/api/v1/openapi.json'].get.security).toEqual([]);
    expect(document.components.schemas.Error.properties.error.required).toEqual(['code', 'message']);
    expect(document.paths['/api/v1/servers/{name}'].delete.responses['4XX']).toEqual({ $ref: '#/components/responses/Error' });
  });

  it('documents every route the server registers under /api/v1, and nothing it does not register', () => {
    const documented = new Set<string>();
    for (const [path, operations] of Object.entries<Record<string, unknown>>(document.paths)) {
      for (const method of Object.keys(operations)) documented.add(`${method.toUpperCase()} ${path.replace(/\{([^}]+)\}/g, ':$1')}`);
    }
    // Sanity: the hook saw the API (not an empty set that would match an empty document).
    expect(registered.has('POST /api/v1/messages')).toBe(true);
    expect(registered.size).toBeGreaterThan(40);
    expect([...registered].filter((route) => !documented.has(route)).sort()).toEqual([]);
    expect([...documented].filter((route) => !registered.has(route)).sort()).toEqual([]);
  });

  it('names the scope each route needs, and the request body schema of every POST and PATCH that takes one', () => {
    expect(document.paths['/api/v1/messages'].post['x-mailgate-scope']).toBe('send');
    expect(document.paths['/api/v1/credentials/{name}/access-token'].get['x-mailgate-scope']).toBe('token:<name>');
    expect(document.paths['/api/v1/servers'].post.requestBody.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/ServerInput' });
    // The server schema comes from the zod schema the service validates with: its enums and strictness are there.
    expect(document.components.schemas.ServerInput.properties.protocol.enum).toEqual(['smtp', 'imap', 'pop3']);
    expect(document.components.schemas.ServerInput.additionalProperties).toBe(false);
    expect(document.components.schemas.ServerPatch.required).toBeUndefined();
    expect(document.components.schemas.WatcherPatch.properties.webhook.properties.graceSeconds.type).toBe('integer');
  });
});

describe('the document and POST /api/v1/messages agree', () => {
  beforeAll(async () => {
    expect((await api('POST', '/api/v1/servers', { name: 'out', protocol: 'smtp', host: '127.0.0.1', port: 2525, security: 'none', auth: { type: 'none' } })).status).toBe(201);
    expect((await api('POST', '/api/v1/senders', { name: 'alarms', primary: 'out', from: 'Alarms <alarms@example.com>' })).status).toBe(201);
  });

  const base = { sender: 'alarms', to: 'ops@example.com', subject: 'Door open', text: 'The back door is open.' };
  const cases: Array<{ name: string; body: unknown; schemaAccepts: boolean }> = [
    { name: 'a plain message', body: base, schemaAccepts: true },
    { name: 'lists, an attachment, headers and an idempotency key', body: { ...base, to: ['ops@example.com', 'Duty <duty@example.com>'], cc: 'boss@example.com', attachments: [{ filename: 'a.txt', content: Buffer.from('hello').toString('base64'), contentType: 'text/plain' }], headers: { 'X-Alarm': 'door' }, idempotencyKey: 'door-1' }, schemaAccepts: true },
    { name: 'no subject', body: { sender: 'alarms', to: 'ops@example.com', text: 'x' }, schemaAccepts: false },
    { name: 'no sender', body: { to: 'ops@example.com', subject: 'x' }, schemaAccepts: false },
    { name: 'an unknown field', body: { ...base, urgency: 'high' }, schemaAccepts: false },
    { name: 'a priority', body: { ...base, priority: 'high' }, schemaAccepts: true },
    { name: 'an unknown priority', body: { ...base, priority: 'urgent' }, schemaAccepts: false },
    { name: 'to as a number', body: { ...base, to: 42 }, schemaAccepts: false },
    { name: 'an attachment without a file name', body: { ...base, attachments: [{ filename: '', content: 'aGk=' }] }, schemaAccepts: false },
    { name: 'an attachment with an unknown field', body: { ...base, attachments: [{ filename: 'a.txt', content: 'aGk=', size: 2 }] }, schemaAccepts: false },
    { name: 'a header value that is not a string', body: { ...base, headers: { 'X-Count': 3 } }, schemaAccepts: false },
    { name: 'an empty idempotency key', body: { ...base, idempotencyKey: '' }, schemaAccepts: false },
    { name: 'an idempotency key of 201 characters', body: { ...base, idempotencyKey: 'k'.repeat(201) }, schemaAccepts: false },
    { name: 'an array instead of an object', body: [base], schemaAccepts: false },
  ];

  it.each(cases)('$name: the document schema and the API give the same verdict', async ({ body, schemaAccepts }) => {
    const requestBody = document.paths['/api/v1/messages'].post.requestBody;
    expect(requestBody.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/MessageInput' });
    const validate = new Ajv2020({ strict: false, allErrors: true }).compile(document.components.schemas.MessageInput);
    expect(validate(body)).toBe(schemaAccepts);
    const answer = await api('POST', '/api/v1/messages', body);
    if (schemaAccepts) {
      expect(answer.status).toBe(202);
      expect(answer.json.status).toBe('queued');
    } else {
      expect(answer.status).toBe(400);
      expect(answer.json.error.code).toBe('INPUT_INVALID');
    }
  });
});
