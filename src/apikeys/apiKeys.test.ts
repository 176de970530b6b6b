// Proves the API key service on a real SQLite store: a key is shown once and only its hash is kept, verify/revoke, and input named field by field.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../store/store.js';
import { allows, createApiKeyService, type ApiKeyServiceOptions } from './apiKeys.js';
import { isScope, sendersAllowed } from './scopes.js';
import { hashApiKey } from './keyMaterial.js';

const open: Store[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

async function setUp(options: ApiKeyServiceOptions = {}) {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mailgate-apikeys-')), 'mailgate.db');
  const store = await openStore({ kind: 'sqlite', file });
  open.push(store);
  return { file, store, apiKeys: createApiKeyService(store, options) };
}

describe('API keys', () => {
  it('creates a key with a recognisable mgk_ prefix that verifies to its name and scopes', async () => {
    const { apiKeys } = await setUp();
    const created = await apiKeys.create('alarm-system', ['send', 'token:m365']);
    const key = created.key.reveal();
    expect(key).toMatch(/^mgk_[A-Za-z0-9_-]{43}$/);
    expect(created).toMatchObject({ name: 'alarm-system', scopes: ['send', 'token:m365'] });
    expect(await apiKeys.verify(key)).toEqual({ id: created.id, name: 'alarm-system', scopes: ['send', 'token:m365'] });
  });

  it('keeps the key out of JSON and logs: it is a Secret until revealed', async () => {
    const { apiKeys } = await setUp();
    const created = await apiKeys.create('ci', ['admin']);
    expect(JSON.stringify(created)).not.toContain(created.key.reveal());
    expect(String(created.key)).toBe('[redacted]');
  });

  it('stores only the SHA-256 of the key: the plain key is nowhere in the database files', async () => {
    const { file, store, apiKeys } = await setUp();
    const key = (await apiKeys.create('erp', ['send'])).key.reveal();
    await apiKeys.verify(key);
    const row = await store.db.selectFrom('api_keys').selectAll().where('name', '=', 'erp').executeTakeFirstOrThrow();
    expect(row.key_hash).toBe(hashApiKey(key));
    // Check the WAL too (it holds recent writes until a checkpoint), then the main file after close.
    const bytes = () => [file, `${file}-wal`].filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f).toString('latin1')).join('');
    expect(bytes()).toContain(row.key_hash);
    expect(bytes()).not.toContain(key);
    expect(bytes()).not.toContain(key.slice('mgk_'.length));
    await store.close();
    open.splice(open.indexOf(store), 1);
    expect(bytes()).not.toContain(key);
  });

  it('refuses unknown, malformed and revoked keys alike', async () => {
    const { apiKeys } = await setUp();
    const key = (await apiKeys.create('monitoring', ['send'])).key.reveal();
    expect(await apiKeys.verify(`mgk_${'A'.repeat(43)}`)).toBeUndefined();
    expect(await apiKeys.verify('not-a-key')).toBeUndefined();
    expect(await apiKeys.verify(`${key}x`)).toBeUndefined();
    expect(await apiKeys.verify('')).toBeUndefined();

    const revoked = await apiKeys.revoke('monitoring');
    expect(revoked.revokedAt).not.toBeNull();
    expect(await apiKeys.verify(key)).toBeUndefined();
    // Revoking again changes nothing, including the time it was revoked.
    expect((await apiKeys.revoke('monitoring')).revokedAt).toBe(revoked.revokedAt);
  });

  it('says NOT_FOUND when revoking a name that has no key', async () => {
    const { apiKeys } = await setUp();
    await expect(apiKeys.revoke('ghost')).rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining('"ghost"') });
  });

  it('refuses a second active key with the same name, but lets a revoked key give its name up', async () => {
    const { apiKeys } = await setUp();
    const first = (await apiKeys.create('tracker', ['send'])).key.reveal();
    await expect(apiKeys.create('tracker', ['admin'])).rejects.toMatchObject({ code: 'ALREADY_EXISTS', message: expect.stringContaining('mailgate apikey revoke tracker') });
    await apiKeys.revoke('tracker');
    const second = await apiKeys.create('tracker', ['admin']);
    expect(await apiKeys.verify(first)).toBeUndefined();
    expect(await apiKeys.verify(second.key.reveal())).toMatchObject({ name: 'tracker', scopes: ['admin'] });
  });

  it('lets only one of two concurrent creates of a name win', async () => {
    const { apiKeys } = await setUp();
    const results = await Promise.allSettled([apiKeys.create('race', ['send']), apiKeys.create('race', ['send'])]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.find((r) => r.status === 'rejected')).toMatchObject({ reason: { code: 'ALREADY_EXISTS' } });
  });

  it('names the field and the fix for a bad name or scope, every problem at once', async () => {
    const { apiKeys } = await setUp();
    const err = await apiKeys.create('my key', ['send', 'sned', 'token:', 'token:a/b']).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'INPUT_INVALID' });
    const message = (err as Error).message;
    expect(message).toContain('name: expected 1-100 letters, digits, ".", "_" or "-"');
    expect(message).toContain('got "my key"');
    expect(message).toContain('scopes[1]: expected "admin", "send", "send:<sender>", "metrics", "token:<credential>" or "token:*", got "sned"');
    expect(message).toContain('scopes[2]:');
    expect(message).toContain('scopes[3]:');
    await expect(apiKeys.create('ok', [])).rejects.toMatchObject({ code: 'INPUT_INVALID', message: expect.stringContaining('scopes: expected at least one scope') });
    await expect(apiKeys.create('-flag', ['send'])).rejects.toMatchObject({ code: 'INPUT_INVALID' });
    expect(await apiKeys.list()).toEqual([]);
  });

  it('lists keys without the key or its hash, revoked ones marked', async () => {
    const { apiKeys } = await setUp();
    const a = await apiKeys.create('b-app', ['send', 'send']);
    await apiKeys.create('a-app', ['token:*']);
    await apiKeys.revoke('b-app');
    const listed = await apiKeys.list();
    expect(listed.map((k) => [k.name, k.scopes, k.revokedAt === null])).toEqual([
      ['a-app', ['token:*'], true],
      ['b-app', ['send'], false],
    ]);
    const text = JSON.stringify(listed);
    expect(text).not.toContain(a.key.reveal());
    expect(text).not.toContain(hashApiKey(a.key.reveal()));
    expect(Object.keys(listed[0]!).sort()).toEqual(['createdAt', 'id', 'lastUsedAt', 'name', 'revokedAt', 'scopes']);
  });

  it('refuses a key revoked by another process within the one-second verification cache, and at once in this process', async () => {
    let now = new Date('2030-01-01T10:00:00.000Z');
    const { store, apiKeys: gateway } = await setUp({ now: () => now });
    const cli = createApiKeyService(store, { now: () => now });
    const key = (await gateway.create('erp', ['send'])).key.reveal();
    expect(await gateway.verify(key)).toMatchObject({ name: 'erp' });
    await cli.revoke('erp');
    now = new Date('2030-01-01T10:00:00.500Z');
    expect(await gateway.verify(key)).toMatchObject({ name: 'erp' });
    now = new Date('2030-01-01T10:00:01.001Z');
    expect(await gateway.verify(key)).toBeUndefined();

    const other = (await gateway.create('erp2', ['send'])).key.reveal();
    expect(await gateway.verify(other)).toMatchObject({ name: 'erp2' });
    await gateway.revoke('erp2');
    expect(await gateway.verify(other)).toBeUndefined();
  });

  it('records last use at most once a minute per key', async () => {
    let now = new Date('2030-01-01T10:00:00.000Z');
    const { apiKeys } = await setUp({ now: () => now });
    const key = (await apiKeys.create('cron', ['send'])).key.reveal();
    const lastUsed = async () => (await apiKeys.list())[0]!.lastUsedAt;
    expect(await lastUsed()).toBeNull();
    await apiKeys.verify(key);
    expect(await lastUsed()).toBe('2030-01-01T10:00:00.000Z');
    now = new Date('2030-01-01T10:00:59.000Z');
    await apiKeys.verify(key);
    expect(await lastUsed()).toBe('2030-01-01T10:00:00.000Z');
    now = new Date('2030-01-01T10:01:01.000Z');
    await apiKeys.verify(key);
    expect(await lastUsed()).toBe('2030-01-01T10:01:01.000Z');
  });
});

describe('allows', () => {
  it('grants admin everything, send only send, token:NAME only that credential, token:* every credential', () => {
    const admin = { scopes: ['admin'] as const };
    const sender = { scopes: ['send'] as const };
    const m365 = { scopes: ['token:m365'] as const };
    const anyToken = { scopes: ['token:*'] as const };
    expect(['admin', 'send', 'token:m365'].every((s) => allows(admin, s))).toBe(true);
    expect([allows(sender, 'send'), allows(sender, 'admin'), allows(sender, 'token:m365')]).toEqual([true, false, false]);
    expect([allows(m365, 'token:m365'), allows(m365, 'token:gmail'), allows(m365, 'send'), allows(m365, 'token:*')]).toEqual([true, false, false, false]);
    expect([allows(anyToken, 'token:m365'), allows(anyToken, 'token:gmail'), allows(anyToken, 'send'), allows(anyToken, 'admin')]).toEqual([true, true, false, false]);
    expect(allows({ scopes: [] }, 'send')).toBe(false);
  });

  it('lets send:<sender> keys pass the send routes, limited to their senders; send and admin keys send through any', () => {
    const narrow = { scopes: ['send:alerts', 'send:billing'] as const };
    expect([allows(narrow, 'send'), allows(narrow, 'admin'), allows(narrow, 'token:m365')]).toEqual([true, false, false]);
    expect(sendersAllowed(narrow)).toEqual(['alerts', 'billing']);
    expect(sendersAllowed({ scopes: ['send'] })).toBeUndefined();
    expect(sendersAllowed({ scopes: ['admin'] })).toBeUndefined();
    expect(isScope('send:alerts')).toBe(true);
    expect(isScope('send:')).toBe(false);
    expect(isScope('send:a b')).toBe(false);
  });
});
