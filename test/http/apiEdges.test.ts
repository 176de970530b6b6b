// Proves the API's edges over real HTTP (sockets, curl): keys checked before a body is read, an empty JSON body taken as {},
// hostile path parameters answered without a 500, and JSON replies never cached.
import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';

const run = promisify(execFile);
let app: MailgateApp;

beforeAll(async () => {
  app = await startMailgateApp();
  const created = await app.api('POST', '/api/v1/credentials', { name: 'keep', provider: 'google', clientId: 'id.apps.googleusercontent.com', clientSecret: 'a-client-secret', email: 'ops@example.com' });
  expect(created.status).toBe(201);
});
afterAll(async () => app?.close());

/**
 * Opens a raw connection, sends the head of a POST announcing `contentLength` bytes and then only `sendBytes` of them,
 * and resolves with what the server answered (or `undefined` if it said nothing within `waitMs`).
 */
async function partialPost(path: string, headers: Record<string, string>, contentLength: number, sendBytes: number, waitMs: number): Promise<{ answer: string | undefined; sent: number }> {
  const { port } = new URL(app.url);
  const socket = net.connect(Number(port), '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let answer = '';
  socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
  socket.on('error', () => undefined); // the server may close while we still write: that is an answer too
  const head = [`POST ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Content-Type: application/json', `Content-Length: ${contentLength}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n');
  socket.write(head);
  const chunk = Buffer.alloc(64 * 1024, 'a');
  let sent = 0;
  while (sent < sendBytes) {
    socket.write(chunk);
    sent += chunk.length;
  }
  const deadline = Date.now() + waitMs;
  while (Date.now() < deadline && !/\r\n\r\n/.test(answer)) await new Promise((r) => setTimeout(r, 20));
  socket.destroy();
  return { answer: /\r\n\r\n/.test(answer) ? answer : undefined, sent };
}

describe('API keys are checked before the body is read', () => {
  it('refuses a 30 MB POST without a key with 401 after its first megabyte, without waiting for the rest', async () => {
    // /api/v1/messages accepts bodies of ~36 MB (25 MB messages in base64), so only the key check can stop this one early.
    const { answer, sent } = await partialPost('/api/v1/messages', {}, 30 * 1024 * 1024, 1024 * 1024, 5000);
    expect(sent).toBeLessThan(2 * 1024 * 1024);
    expect(answer).toMatch(/^HTTP\/1\.1 401 /);
    expect(answer).toMatch(/www-authenticate: Bearer realm="mailgate"/i);
    expect(answer).toContain('"code":"UNAUTHENTICATED"');
  });

  it('refuses a 30 MB POST with a wrong key (401) or a key lacking the scope (403) before its body arrives', async () => {
    const wrong = await partialPost('/api/v1/messages', { Authorization: `Bearer mgk_${'x'.repeat(43)}` }, 30 * 1024 * 1024, 64 * 1024, 5000);
    expect(wrong.answer).toMatch(/^HTTP\/1\.1 401 /);
    const reader = (await app.services.apiKeys.create('reader-only', ['token:keep'])).key.reveal();
    const unscoped = await partialPost('/api/v1/messages', { Authorization: `Bearer ${reader}` }, 30 * 1024 * 1024, 64 * 1024, 5000);
    expect(unscoped.answer).toMatch(/^HTTP\/1\.1 403 /);
    expect(unscoped.answer).toContain('lacks the scope \\"send\\"');
  });

  it('still reads and checks the body of an authorized request after the early key check', async () => {
    const res = await app.api('POST', '/api/v1/apikeys', { name: 'after-guard', scopes: ['send'] });
    expect(res.status).toBe(201);
    const bad = await app.api('POST', '/api/v1/apikeys', { name: 'after-guard-2', scopes: ['sned'] });
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ error: { code: 'INPUT_INVALID' } });
    // The guard still tells the handler who called (the audit log names the key).
    const audit = await app.api('GET', '/api/v1/audit?limit=5');
    expect(audit.json.entries.some((e: { actor: string; action: string }) => e.actor === 'apikey:test-admin' && e.action === 'POST /api/v1/apikeys')).toBe(true);
  });
});

describe('a POST with Content-Type: application/json and no body', () => {
  it('is taken as {} (curl scripts that set the header on every call), not refused as an empty JSON body', async () => {
    const curl = (path: string) =>
      run('curl', ['-sS', '-X', 'POST', '-H', 'Content-Type: application/json', '-H', `Authorization: Bearer ${app.adminKey}`, '-w', '\n%{http_code}', `${app.url}${path}`]).then(({ stdout }) => {
        const lines = stdout.split('\n');
        return { status: Number(lines.pop()), json: JSON.parse(lines.join('\n')) as Record<string, any> };
      });
    const authorize = await curl('/api/v1/credentials/keep/authorize');
    expect(authorize.status).toBe(200);
    expect(authorize.json.authorizationUrl).toMatch(/^https:\/\/accounts\.google\.com\//);
    // A route that needs fields says which ones are missing, as for any other incomplete body.
    const incomplete = await curl('/api/v1/apikeys');
    expect(incomplete.status).toBe(400);
    expect(incomplete.json.error.code).toBe('INPUT_INVALID');
    expect(incomplete.json.error.message).toContain('name');
  });

  it('still refuses a JSON body that does not parse, and a prototype-poisoning one', async () => {
    const broken = await fetch(`${app.url}/api/v1/apikeys`, { method: 'POST', headers: { authorization: `Bearer ${app.adminKey}`, 'content-type': 'application/json' }, body: '{"name":' });
    expect(broken.status).toBe(400);
    const poisoned = await fetch(`${app.url}/api/v1/apikeys`, { method: 'POST', headers: { authorization: `Bearer ${app.adminKey}`, 'content-type': 'application/json' }, body: '{"__proto__":{"admin":true},"name":"x","scopes":["send"]}' });
    expect(poisoned.status).toBe(400);
  });
});

describe('hostile path parameters and caching', () => {
  it('answers 403 with a clean challenge, not a 500, when a path parameter holds a control or non-Latin-1 character', async () => {
    const reader = (await app.services.apiKeys.create('gmail-reader', ['token:gmail'])).key.reveal();
    for (const [encoded, shown] of [['a%00', 'token:a'], ['a%0D%0ASet-Cookie:%20x=1', 'token:aSet-Cookie: x=1'], ['caf%C3%A9%E2%82%AC', 'token:caf'], ['%22q%5C', 'token:q']]) {
      const res = await fetch(`${app.url}/api/v1/credentials/${encoded}/access-token`, { headers: { authorization: `Bearer ${reader}` } });
      expect(res.status, encoded).toBe(403);
      expect(res.headers.get('www-authenticate')).toBe(`Bearer realm="mailgate", error="insufficient_scope", scope="${shown}"`);
      expect(res.headers.get('set-cookie')).toBeNull();
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('FORBIDDEN');
    }
    expect(app.logs()).not.toContain('"level":"error"');
  });

  it('marks every JSON API answer Cache-Control: no-store (success, refusal, not found), keeping a route\'s own value', async () => {
    const answers = [
      await fetch(`${app.url}/api/v1/credentials`, { headers: { authorization: `Bearer ${app.adminKey}` } }),
      await fetch(`${app.url}/api/v1/credentials/keep`, { headers: { authorization: `Bearer ${app.adminKey}` } }),
      await fetch(`${app.url}/api/v1/credentials`),
      await fetch(`${app.url}/api/v1/credentials/nobody`, { headers: { authorization: `Bearer ${app.adminKey}` } }),
      await fetch(`${app.url}/api/v1/no-such-route`),
    ];
    expect(answers.map((r) => r.status)).toEqual([200, 200, 401, 404, 404]);
    for (const res of answers) expect(res.headers.get('cache-control'), res.url).toBe('no-store');
  });
});

describe('an over-large message', () => {
  it('gets the same 400 INPUT_INVALID naming the size limit whether the size check or the body limit catches it (no 413 FST_ERR_CTP_BODY_TOO_LARGE)', async () => {
    const sendKey = (await app.services.apiKeys.create('big-sender', ['send'])).key.reveal();
    const limitMb = app.services.config.outbox.maxMessageBytes / 1048576;
    // Past the route's body limit (1.4 × the message limit + 1 MB): fastify stops reading; the answer keeps our shape.
    const huge = JSON.stringify({ sender: 'x', to: 'a@example.test', subject: 's', text: 'x'.repeat(Math.ceil(app.services.config.outbox.maxMessageBytes * 1.5 + 2 * 1048576)) });
    const res = await fetch(`${app.url}/api/v1/messages`, { method: 'POST', headers: { authorization: `Bearer ${sendKey}`, 'content-type': 'application/json' }, body: huge });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('INPUT_INVALID');
    expect(body.error.message).toMatch(new RegExp(`^message: \\d+\\.\\d MB of request is over the ${limitMb} MB limit \\(outbox\\.maxMessageMegabytes`));
  });
});

describe('a PATCH names the definition in its URL only', () => {
  it('refuses a body naming another server, sender or watcher (400 naming both), and leaves both as they were', async () => {
    const server = (name: string, host: string) => ({ name, protocol: 'smtp', host, port: 587, security: 'starttls', auth: { type: 'none' } });
    for (const s of [server('edge-a', 'a.example.test'), server('edge-b', 'b.example.test'), { name: 'edge-imap', protocol: 'imap', host: '127.0.0.1', port: 9, security: 'none', username: 'u', auth: { type: 'password', password: 'not-used' } }]) {
      expect((await app.api('POST', '/api/v1/servers', s)).status).toBe(201);
    }
    for (const name of ['edge-sa', 'edge-sb']) expect((await app.api('POST', '/api/v1/senders', { name, primary: 'edge-a', from: `${name}@example.test` })).status).toBe(201);
    for (const name of ['edge-wa', 'edge-wb']) {
      expect((await app.api('POST', '/api/v1/watchers', { name, server: 'edge-imap', enabled: false, webhook: { url: 'https://hooks.example.test/in', secret: 'a-webhook-secret-123456' } })).status).toBe(201);
    }

    const cases: Array<[string, string, string, Record<string, unknown>]> = [
      ['servers', 'edge-a', 'edge-b', { name: 'edge-b', host: 'evil.example.test' }],
      ['senders', 'edge-sa', 'edge-sb', { name: 'edge-sb', from: 'evil@example.test' }],
      ['watchers', 'edge-wa', 'edge-wb', { name: 'edge-wb', folder: 'Evil' }],
    ];
    for (const [collection, target, other, body] of cases) {
      const before = (await app.api('GET', `/api/v1/${collection}/${other}`)).json;
      const refused = await app.api('PATCH', `/api/v1/${collection}/${target}`, body);
      expect(refused.status, refused.text).toBe(400);
      expect(refused.json.error.code).toBe('INPUT_INVALID');
      expect(refused.json.error.message).toContain(`name cannot be changed (this is ${collection.slice(0, -1)} "${target}", the body names "${other}")`);
      expect((await app.api('GET', `/api/v1/${collection}/${other}`)).json).toEqual(before);
      // the same name as the URL is fine
      expect((await app.api('PATCH', `/api/v1/${collection}/${target}`, { name: target })).status).toBe(200);
    }
  });
});
