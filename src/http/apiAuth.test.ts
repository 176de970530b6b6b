// Proves the API key guard and the API key routes through fastify's inject (no sockets): 401 without a valid key, 403 without the scope.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { createApiKeyService, type ApiKeyService } from '../apikeys/apiKeys.js';
import { openStore, type Store } from '../store/store.js';
import { principalOf, requireScope } from './apiAuth.js';
import { buildHttpServer, openTestServices } from '../../test/support/services.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function openTempStore(): Promise<Store> {
  const store = await openStore({ kind: 'sqlite', file: path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mailgate-apiauth-')), 'mailgate.db') });
  cleanups.push(() => store.close());
  return store;
}

/** A bare app with two guarded routes: one fixed scope, one derived from the URL as the access-token route will be. */
async function guardedApp(): Promise<{ app: FastifyInstance; apiKeys: ApiKeyService }> {
  const apiKeys = createApiKeyService(await openTempStore());
  const app = Fastify();
  cleanups.push(() => app.close());
  app.post('/send', { preHandler: requireScope(apiKeys, 'send') }, async (request) => ({ caller: principalOf(request).name }));
  app.get<{ Params: { name: string } }>(
    '/credentials/:name/access-token',
    { preHandler: requireScope(apiKeys, (request) => `token:${(request.params as { name: string }).name}`) },
    async (request) => ({ caller: principalOf(request).name, credential: request.params.name }),
  );
  return { app, apiKeys };
}

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

describe('requireScope', () => {
  it('answers 401 with a Bearer challenge and says how to send a key when there is none', async () => {
    const { app } = await guardedApp();
    for (const headers of [{}, { authorization: 'Basic dXNlcjpwYXNz' }, { authorization: 'Bearer' }]) {
      const res = await app.inject({ method: 'POST', url: '/send', headers });
      expect(res.statusCode).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer realm="mailgate"');
      expect(res.json()).toEqual({
        error: { code: 'UNAUTHENTICATED', message: 'send an API key as "Authorization: Bearer <key>" (create one with `mailgate apikey create`)' },
      });
    }
  });

  it('answers 401 for a wrong key without echoing it', async () => {
    const { app } = await guardedApp();
    const wrong = `mgk_${'x'.repeat(43)}`;
    const res = await app.inject({ method: 'POST', url: '/send', headers: bearer(wrong) });
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="mailgate", error="invalid_token"');
    expect(res.json()).toMatchObject({ error: { code: 'UNAUTHENTICATED', message: expect.stringContaining('not valid') } });
    expect(res.body).not.toContain(wrong);
  });

  it('answers 401 for a revoked key', async () => {
    const { app, apiKeys } = await guardedApp();
    const key = (await apiKeys.create('old', ['send'])).key.reveal();
    expect((await app.inject({ method: 'POST', url: '/send', headers: bearer(key) })).statusCode).toBe(200);
    await apiKeys.revoke('old');
    const res = await app.inject({ method: 'POST', url: '/send', headers: bearer(key) });
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ error: { code: 'UNAUTHENTICATED' } });
  });

  it('answers 403 naming the missing scope when the key lacks it', async () => {
    const { app, apiKeys } = await guardedApp();
    const key = (await apiKeys.create('gmail-only', ['token:gmail'])).key.reveal();
    const res = await app.inject({ method: 'GET', url: '/credentials/m365/access-token', headers: bearer(key) });
    expect(res.statusCode).toBe(403);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="mailgate", error="insufficient_scope", scope="token:m365"');
    expect(res.json()).toEqual({ error: { code: 'FORBIDDEN', message: 'this API key lacks the scope "token:m365"' } });
    expect((await app.inject({ method: 'POST', url: '/send', headers: bearer(key) })).statusCode).toBe(403);
  });

  it('admits the exact scope and admin, and tells the handler who called', async () => {
    const { app, apiKeys } = await guardedApp();
    const m365 = (await apiKeys.create('m365-reader', ['token:m365'])).key.reveal();
    const admin = (await apiKeys.create('root', ['admin'])).key.reveal();
    const sender = (await apiKeys.create('alarm', ['send'])).key.reveal();

    const exact = await app.inject({ method: 'GET', url: '/credentials/m365/access-token', headers: bearer(m365) });
    expect(exact.statusCode).toBe(200);
    expect(exact.json()).toEqual({ caller: 'm365-reader', credential: 'm365' });
    const asAdmin = await app.inject({ method: 'GET', url: '/credentials/m365/access-token', headers: bearer(admin) });
    expect(asAdmin.json()).toEqual({ caller: 'root', credential: 'm365' });
    const send = await app.inject({ method: 'POST', url: '/send', headers: { authorization: `bearer ${sender}` } });
    expect(send.statusCode).toBe(200);
    expect(send.json()).toEqual({ caller: 'alarm' });
  });
});

describe('API key routes', () => {
  async function gateway() {
    const services = await openTestServices();
    const apiKeys = services.apiKeys;
    const app = buildHttpServer(services);
    cleanups.push(async () => {
      await app.close();
      await services.close();
    });
    const admin = (await apiKeys.create('root', ['admin'])).key.reveal();
    return { app, apiKeys, admin };
  }

  it('creates a key (201, the plain key once), lists without key or hash, and revokes with 204', async () => {
    const { app, apiKeys, admin } = await gateway();
    const created = await app.inject({ method: 'POST', url: '/api/v1/apikeys', headers: bearer(admin), payload: { name: 'erp', scopes: ['send'] } });
    expect(created.statusCode).toBe(201);
    expect(created.headers['cache-control']).toBe('no-store');
    const body = created.json() as { name: string; scopes: string[]; key: string };
    expect(body).toMatchObject({ name: 'erp', scopes: ['send'], key: expect.stringMatching(/^mgk_/) });
    expect(await apiKeys.verify(body.key)).toMatchObject({ name: 'erp' });

    const listed = await app.inject({ method: 'GET', url: '/api/v1/apikeys', headers: bearer(admin) });
    expect(listed.statusCode).toBe(200);
    expect((listed.json() as { apiKeys: { name: string }[] }).apiKeys.map((k) => k.name)).toEqual(['erp', 'root']);
    expect(listed.body).not.toContain(body.key);
    expect(listed.body).not.toContain('key_hash');
    expect(listed.body).not.toContain(admin);

    const revoked = await app.inject({ method: 'DELETE', url: '/api/v1/apikeys/erp', headers: bearer(admin) });
    expect(revoked.statusCode).toBe(204);
    expect(await apiKeys.verify(body.key)).toBeUndefined();
    const missing = await app.inject({ method: 'DELETE', url: '/api/v1/apikeys/nobody', headers: bearer(admin) });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ error: { code: 'NOT_FOUND' } });
  });

  it('answers 400 INPUT_INVALID naming the field, and 409 for a duplicate name', async () => {
    const { app, admin } = await gateway();
    const bad = await app.inject({ method: 'POST', url: '/api/v1/apikeys', headers: bearer(admin), payload: { name: 'erp', scopes: ['sned'] } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: { code: 'INPUT_INVALID', message: expect.stringContaining('scopes[0]: expected "admin", "send"') } });
    const noName = await app.inject({ method: 'POST', url: '/api/v1/apikeys', headers: bearer(admin), payload: { scopes: ['send'], extra: 1 } });
    expect(noName.statusCode).toBe(400);
    expect(noName.json()).toMatchObject({ error: { code: 'INPUT_INVALID', message: expect.stringMatching(/name: expected a name, got nothing.*unknown field "extra"|unknown field "extra".*name: expected a name/) } });
    const noBody = await app.inject({ method: 'POST', url: '/api/v1/apikeys', headers: bearer(admin) });
    expect(noBody.statusCode).toBe(400);
    expect(noBody.json()).toMatchObject({ error: { code: 'INPUT_INVALID' } });
    const dup = await app.inject({ method: 'POST', url: '/api/v1/apikeys', headers: bearer(admin), payload: { name: 'root', scopes: ['send'] } });
    expect(dup.statusCode).toBe(409);
    expect(dup.json()).toMatchObject({ error: { code: 'ALREADY_EXISTS' } });
  });

  it('requires the admin scope', async () => {
    const { app, apiKeys } = await gateway();
    const sender = (await apiKeys.create('alarm', ['send', 'token:*'])).key.reveal();
    for (const [method, url] of [['GET', '/api/v1/apikeys'], ['POST', '/api/v1/apikeys'], ['DELETE', '/api/v1/apikeys/root']] as const) {
      const res = await app.inject({ method, url, headers: bearer(sender), payload: method === 'POST' ? { name: 'x', scopes: ['admin'] } : undefined });
      expect(res.statusCode).toBe(403);
      expect(res.json()).toEqual({ error: { code: 'FORBIDDEN', message: 'this API key lacks the scope "admin"' } });
    }
    expect((await app.inject({ method: 'GET', url: '/api/v1/apikeys' })).statusCode).toBe(401);
  });
});
