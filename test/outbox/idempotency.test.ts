// Proves what a send key may do: idempotency keys are its own (another key's identical key is another message, the same key with another body is refused, keys expire), it reads only its own messages, and send:<sender> keys use only their senders.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';

let app: MailgateApp;
let alarmKey: string;
let otherKey: string;
const TTL_MS = 1500;

beforeAll(async () => {
  // No worker: the messages stay queued; what is proven here is acceptance and reading.
  app = await startMailgateApp({ configure: (config) => ({ ...config, outbox: { ...config.outbox, idempotencyKeyMs: TTL_MS } }) });
  expect((await app.api('POST', '/api/v1/servers', { name: 'relay', protocol: 'smtp', host: '127.0.0.1', port: 2525, security: 'none' })).status).toBe(201);
  expect((await app.api('POST', '/api/v1/senders', { name: 'alerts', primary: 'relay', from: 'alerts@example.test' })).status).toBe(201);
  alarmKey = (await app.services.apiKeys.create('alarm-system', ['send'])).key.reveal();
  otherKey = (await app.services.apiKeys.create('other-app', ['send'])).key.reveal();
});
afterAll(async () => app?.close());

const alarm = (subject: string, key: string) => ({ sender: 'alerts', to: 'duty@example.test', subject, text: 'Zone 3', idempotencyKey: key });

describe('idempotency keys', () => {
  it('are per API key: another client\'s identical key does not swallow the real alarm', async () => {
    const squatter = await app.api('POST', '/api/v1/messages', alarm('not the alarm', 'alarm-43'), otherKey);
    expect(squatter.status).toBe(202);
    const real = await app.api('POST', '/api/v1/messages', alarm('FIRE zone 3', 'alarm-43'), alarmKey);
    expect(real.status).toBe(202);
    expect(real.json.id).not.toBe(squatter.json.id);
    expect(real.json.idempotentReplay).toBeUndefined();
  });

  it('replay the first message for the same request, and refuse the same key with another body (409), queueing nothing', async () => {
    const first = await app.api('POST', '/api/v1/messages', alarm('Door open', 'door-7'), alarmKey);
    expect(first.status).toBe(202);
    // Same fields in another order: the same request.
    const { idempotencyKey, ...rest } = alarm('Door open', 'door-7');
    const again = await app.api('POST', '/api/v1/messages', { idempotencyKey, text: rest.text, subject: rest.subject, to: rest.to, sender: rest.sender }, alarmKey);
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ id: first.json.id, idempotentReplay: true });
    const before = (await app.api('GET', '/api/v1/messages?limit=500')).json.messages.length;
    const other = await app.api('POST', '/api/v1/messages', alarm('Door closed', 'door-7'), alarmKey);
    expect(other.status).toBe(409);
    expect(other.json.error.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(other.json.error.message).toContain('"door-7" was used for another message');
    expect((await app.api('GET', '/api/v1/messages?limit=500')).json.messages.length).toBe(before);
    const shown = await app.api('GET', `/api/v1/messages/${first.json.id}`, undefined, alarmKey);
    expect(shown.json.idempotencyKey).toBe('door-7');
  });

  it('expire: after outbox.idempotencyKeyHours the same key is a new message', async () => {
    const first = await app.api('POST', '/api/v1/messages', alarm('Daily check', 'daily'), alarmKey);
    expect(first.status).toBe(202);
    await new Promise((r) => setTimeout(r, TTL_MS + 200));
    const next = await app.api('POST', '/api/v1/messages', alarm('Daily check, next day', 'daily'), alarmKey);
    expect(next.status).toBe(202);
    expect(next.json.id).not.toBe(first.json.id);
  });
});

describe('reading messages', () => {
  it('a send key reads only the messages it submitted (others are 404); an admin key reads all', async () => {
    const mine = await app.api('POST', '/api/v1/messages', alarm('mine', 'read-1'), alarmKey);
    const theirs = await app.api('POST', '/api/v1/messages', alarm('theirs', 'read-1'), otherKey);
    expect((await app.api('GET', `/api/v1/messages/${mine.json.id}`, undefined, alarmKey)).status).toBe(200);
    const foreign = await app.api('GET', `/api/v1/messages/${theirs.json.id}`, undefined, alarmKey);
    expect(foreign.status).toBe(404);
    expect(foreign.json.error.code).toBe('NOT_FOUND');
    expect((await app.api('GET', `/api/v1/messages/${theirs.json.id}`)).status).toBe(200);
  });
});

describe('send:<sender> keys', () => {
  it('send only through their named senders (403 naming them otherwise), and read their own messages', async () => {
    expect((await app.api('POST', '/api/v1/senders', { name: 'billing', primary: 'relay', from: 'billing@example.test' })).status).toBe(201);
    const narrow = (await app.services.apiKeys.create('scanner', ['send:alerts'])).key.reveal();
    const ok = await app.api('POST', '/api/v1/messages', { sender: 'alerts', to: 'duty@example.test', subject: 'scan', text: 'x' }, narrow);
    expect(ok.status).toBe(202);
    expect((await app.api('GET', `/api/v1/messages/${ok.json.id}`, undefined, narrow)).status).toBe(200);
    const refused = await app.api('POST', '/api/v1/messages', { sender: 'billing', to: 'duty@example.test', subject: 'scan', text: 'x' }, narrow);
    expect(refused.status).toBe(403);
    expect(refused.json.error).toMatchObject({ code: 'FORBIDDEN', message: expect.stringContaining('may send only through "alerts"') });
    // Not an admin: the list of every message stays closed to it.
    expect((await app.api('GET', '/api/v1/messages', undefined, narrow)).status).toBe(403);
  });
});
