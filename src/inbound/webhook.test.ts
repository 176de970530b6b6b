// Proves signed webhooks against a real HTTP receiver on 127.0.0.1 that checks signatures with the same
// verifyWebhookSignature a receiver would run, and answers as receivers do (errors, redirects, silence, floods).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VERSION } from '../version.js';
import { checkWebhookUrl, deliverWebhook, MAX_RESPONSE_BYTES, signWebhook, verifyWebhookSignature, type WebhookResult } from './webhook.js';

const SECRET = 'whsec-test-0123456789abcdef-never-shown';
/** The secret that replaces SECRET in the rotation tests. */
const NEW_SECRET = 'whsec-rotated-fedcba9876543210-never-shown';
const body = { event: 'message', deliveryId: 'dlv_1', message: { subject: 'Pump 3 failed', text: 'Grüße, ✓' } };

interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  raw: string;
}
const received: Received[] = [];
let base: string;
let receiver: http.Server;
/** Whether the receiver managed to write its whole flood before the client went away. */
let floodFinished: boolean | undefined;

beforeAll(async () => {
  receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      received.push({ path, headers: req.headers, raw });
      const status = /^\/status\/(\d{3})$/.exec(path);
      if (path === '/hooks/mail') {
        // what a receiver implements: the raw body, the header, the shared secret
        const check = verifyWebhookSignature(SECRET, raw, req.headers['x-mailgate-signature']);
        if (check.ok) res.writeHead(204).end();
        else res.writeHead(401, { 'content-type': 'text/plain' }).end(check.reason);
      } else if (path === '/hooks/switched') {
        // a receiver whose owner has already put the new secret in
        const check = verifyWebhookSignature(NEW_SECRET, raw, req.headers['x-mailgate-signature']);
        if (check.ok) res.writeHead(204).end();
        else res.writeHead(401, { 'content-type': 'text/plain' }).end(check.reason);
      } else if (status) {
        res.writeHead(Number(status[1]), { 'content-type': 'text/plain' }).end(`answered ${status[1]}`);
      } else if (path === '/busy') {
        res.writeHead(429, { 'content-type': 'text/plain', 'retry-after': '120' }).end('slow down');
      } else if (path === '/down') {
        res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': new Date(Date.now() + 60_000).toUTCString() }).end('maintenance');
      } else if (path === '/gone-for-good') {
        res.writeHead(410, { 'content-type': 'text/plain', 'retry-after': '120' }).end('gone');
      } else if (path === '/moved') {
        res.writeHead(302, { location: `${base}/hooks/mail` }).end();
      } else if (path === '/silent') {
        // never answers
      } else if (path === '/flood') {
        floodFinished = undefined;
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.on('close', () => (floodFinished = res.writableFinished));
        const chunk = Buffer.alloc(64 * 1024, 'x');
        let left = 160; // 10 MiB: far more than socket buffers hold, so an early stop by the client shows
        const pump = () => {
          while (left > 0) {
            left -= 1;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        pump();
      } else if (path === '/echo') {
        // a receiver that repeats what it was given, a secret in its config included
        res.writeHead(500, { 'content-type': 'text/plain', 'x-debug': SECRET }).end(`bad signature; my secret is ${SECRET}; you sent ${req.headers['x-mailgate-signature']}`);
      } else if (path === '/echo-both') {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`I know ${SECRET} and ${NEW_SECRET}`);
      } else res.writeHead(404).end('no such hook');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});
afterAll(async () => {
  receiver.closeAllConnections();
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
});

const deliver = (path: string, overrides: Partial<Parameters<typeof deliverWebhook>[0]> = {}) =>
  deliverWebhook({ url: `${base}${path}`, secret: SECRET, event: 'message', body, deliveryId: 'dlv_1', timeoutMs: 5000, ...overrides });
const last = () => received[received.length - 1]!;
/** POSTs as Mailgate would, but with the body or header changed on the way. */
const post = (path: string, raw: string, headers: Record<string, string>) =>
  fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: raw }).then(async (r) => ({ status: r.status, text: await r.text() }));

describe('a signed delivery', () => {
  it('is accepted by a receiver that verifies it, with the event, delivery id, user agent and JSON body', async () => {
    const result = await deliver('/hooks/mail');
    expect(result).toMatchObject({ ok: true, status: 204, retryable: false });
    expect(result.error).toBeUndefined();
    const request = last();
    expect(request.headers['content-type']).toBe('application/json');
    expect(request.headers['user-agent']).toBe(`Mailgate/${VERSION}`);
    expect(request.headers['x-mailgate-event']).toBe('message');
    expect(request.headers['x-mailgate-delivery']).toBe('dlv_1');
    expect(request.headers['x-mailgate-signature']).toMatch(/^t=\d{10},v1=[0-9a-f]{64}$/);
    expect(JSON.parse(request.raw)).toEqual(body);
  });

  it('keeps the delivery id across retries while each attempt is signed at its own time', async () => {
    await deliver('/hooks/mail', { deliveryId: 'dlv_retry', now: () => Date.now() - 60_000 });
    await deliver('/hooks/mail', { deliveryId: 'dlv_retry' });
    const [first, second] = received.slice(-2);
    expect(first!.headers['x-mailgate-delivery']).toBe('dlv_retry');
    expect(second!.headers['x-mailgate-delivery']).toBe('dlv_retry');
    expect(first!.headers['x-mailgate-signature']).not.toBe(second!.headers['x-mailgate-signature']);
  });

  it('signs "<t>.<body>" with HMAC-SHA256 as documented', () => {
    // the vector docs/webhooks.md shows; any receiver's implementation must reproduce it
    expect(signWebhook('secret', '{"a":1}', 1700000000)).toBe('t=1700000000,v1=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686');
  });
});

describe('while a secret is being rotated', () => {
  it('every request carries one v1 per secret, the new one first, each made with its own secret', async () => {
    const result = await deliver('/hooks/mail', { secret: [NEW_SECRET, SECRET] });
    expect(result).toMatchObject({ ok: true, status: 204 });
    const request = last();
    const header = request.headers['x-mailgate-signature'] as string;
    const match = /^t=(\d{10}),v1=([0-9a-f]{64}),v1=([0-9a-f]{64})$/.exec(header);
    expect(match).not.toBeNull();
    const [, t, first, second] = match!;
    expect(first).not.toBe(second);
    // each v1 on its own verifies under exactly one of the secrets: the first under the new, the second under the old
    const now = Number(t);
    expect(verifyWebhookSignature(NEW_SECRET, request.raw, `t=${t},v1=${first}`, { now })).toMatchObject({ ok: true });
    expect(verifyWebhookSignature(SECRET, request.raw, `t=${t},v1=${first}`, { now })).toMatchObject({ ok: false, reason: 'SIGNATURE_MISMATCH' });
    expect(verifyWebhookSignature(SECRET, request.raw, `t=${t},v1=${second}`, { now })).toMatchObject({ ok: true });
    expect(verifyWebhookSignature(NEW_SECRET, request.raw, `t=${t},v1=${second}`, { now })).toMatchObject({ ok: false, reason: 'SIGNATURE_MISMATCH' });
  });

  it('a receiver still on the old secret and one already on the new both accept; one on neither refuses', async () => {
    expect(await deliver('/hooks/mail', { secret: [NEW_SECRET, SECRET] })).toMatchObject({ ok: true, status: 204 });
    expect(await deliver('/hooks/switched', { secret: [NEW_SECRET, SECRET] })).toMatchObject({ ok: true, status: 204 });
    // the rotation over: only the new secret signs, and a receiver left on the old one refuses
    expect(await deliver('/hooks/switched', { secret: [NEW_SECRET] })).toMatchObject({ ok: true, status: 204 });
    expect(await deliver('/hooks/mail', { secret: [NEW_SECRET] })).toMatchObject({ ok: false, status: 401, error: 'webhook answered 401: SIGNATURE_MISMATCH' });
    expect(last().headers['x-mailgate-signature']).toMatch(/^t=\d{10},v1=[0-9a-f]{64}$/);
  });

  it('neither secret appears in what comes back, whichever the receiver repeats', async () => {
    const result = await deliver('/echo-both', { secret: [NEW_SECRET, SECRET] });
    expect(result).toMatchObject({ ok: false, status: 500, error: 'webhook answered 500: I know [secret] and [secret]' });
  });

  it('signing with no secret at all is refused rather than sent unsigned', () => {
    expect(() => signWebhook([], '{}', 1_700_000_000)).toThrow(RangeError);
  });
});

describe('a receiver refuses', () => {
  it('a tampered body', async () => {
    const raw = JSON.stringify(body);
    const header = signWebhook(SECRET, raw, Math.floor(Date.now() / 1000));
    expect(await post('/hooks/mail', raw.replace('Pump 3', 'Pump 4'), { 'x-mailgate-signature': header })).toEqual({ status: 401, text: 'SIGNATURE_MISMATCH' });
  });

  it('a signature made with another secret', async () => {
    const result = await deliver('/hooks/mail', { secret: 'some-other-secret-of-16+' });
    expect(result).toMatchObject({ ok: false, status: 401, retryable: false, error: 'webhook answered 401: SIGNATURE_MISMATCH' });
  });

  it('a request signed longer ago than the tolerance (a replay), and one from a clock far ahead', async () => {
    expect(await deliver('/hooks/mail', { now: () => Date.now() - 360_000 })).toMatchObject({ ok: false, status: 401, error: 'webhook answered 401: TIMESTAMP_OUT_OF_TOLERANCE' });
    expect(await deliver('/hooks/mail', { now: () => Date.now() + 360_000 })).toMatchObject({ ok: false, status: 401, error: 'webhook answered 401: TIMESTAMP_OUT_OF_TOLERANCE' });
  });

  it('a request without the signature header, or with a malformed one', async () => {
    expect(await post('/hooks/mail', JSON.stringify(body), {})).toEqual({ status: 401, text: 'MISSING_HEADER' });
    expect(await post('/hooks/mail', JSON.stringify(body), { 'x-mailgate-signature': 'v1=abc' })).toEqual({ status: 401, text: 'MALFORMED_HEADER' });
  });

  it('nothing signed by the old secret once it is gone, but accepts both while a rotation lists both', () => {
    const raw = JSON.stringify(body);
    const now = 1_700_000_000;
    const rotating = signWebhook(['old-secret-0123456789', SECRET], raw, now);
    expect(rotating).toMatch(/^t=1700000000,v1=[0-9a-f]{64},v1=[0-9a-f]{64}$/);
    expect(verifyWebhookSignature(SECRET, raw, rotating, { now })).toEqual({ ok: true, timestamp: now });
    const oldOnly = signWebhook('old-secret-0123456789', raw, now);
    expect(verifyWebhookSignature(SECRET, raw, oldOnly, { now })).toMatchObject({ ok: false, reason: 'SIGNATURE_MISMATCH' });
    expect(verifyWebhookSignature([SECRET, 'old-secret-0123456789'], raw, oldOnly, { now })).toMatchObject({ ok: true });
  });
});

describe('retry decisions', () => {
  it('a 5xx answer is retryable and its text is kept', async () => {
    expect(await deliver('/status/500')).toMatchObject({ ok: false, status: 500, retryable: true, error: 'webhook answered 500: answered 500' });
    expect(await deliver('/status/503')).toMatchObject({ retryable: true });
  });

  it('408, 425 and 429 are retryable; other 4xx are not', async () => {
    for (const status of [408, 425, 429]) expect(await deliver(`/status/${status}`)).toMatchObject({ ok: false, status, retryable: true });
    expect(await deliver('/status/400')).toMatchObject({ ok: false, status: 400, retryable: false, error: 'webhook answered 400: answered 400' });
    expect(await deliver('/status/404')).toMatchObject({ ok: false, status: 404, retryable: false });
  });

  it('a retryable answer carries the receiver\'s Retry-After (seconds or date); a final one does not', async () => {
    expect(await deliver('/busy')).toMatchObject({ ok: false, status: 429, retryable: true, retryAfterMs: 120_000 });
    const down = await deliver('/down');
    expect(down).toMatchObject({ ok: false, status: 503, retryable: true });
    expect(down.retryAfterMs).toBeGreaterThan(55_000);
    expect(down.retryAfterMs).toBeLessThanOrEqual(60_000);
    const gone = await deliver('/gone-for-good');
    expect(gone).toMatchObject({ ok: false, status: 410, retryable: false });
    expect(gone.retryAfterMs).toBeUndefined();
    expect((await deliver('/status/503')).retryAfterMs).toBeUndefined();
  });

  it('a redirect is not followed: a failure that names the fix', async () => {
    const before = received.length;
    const result = await deliver('/moved');
    expect(result).toMatchObject({ ok: false, status: 302, retryable: false });
    expect(result.error).toBe(`webhook answered 302: point the watcher at the final URL (Location: ${base}/hooks/mail); redirects are not followed`);
    expect(received.slice(before).map((r) => r.path)).toEqual(['/moved']);
  });

  it('a receiver that never answers times out, retryable', async () => {
    const result = await deliver('/silent', { timeoutMs: 300 });
    expect(result).toMatchObject({ ok: false, retryable: true, error: 'webhook did not answer within 300 ms' });
    expect(result.status).toBeUndefined();
    expect(result.ms).toBeGreaterThanOrEqual(290);
    expect(result.ms).toBeLessThan(3000);
  });

  it('nothing listening is a retryable network error that names the cause', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const result = await deliverWebhook({ url: `http://127.0.0.1:${port}/hooks/mail`, secret: SECRET, event: 'message', body, deliveryId: 'dlv_1' });
    expect(result).toMatchObject({ ok: false, retryable: true });
    expect(result.error).toMatch(/^webhook request failed: .*ECONNREFUSED/);
  });

  it('an invalid URL fails at once, not retryable', async () => {
    expect(await deliverWebhook({ url: 'ftp://example.com/x', secret: SECRET, event: 'message', body, deliveryId: 'dlv_1' })).toMatchObject({
      ok: false,
      retryable: false,
      error: 'webhook URL: expected an http:// or https:// URL, not ftp:',
    });
  });
});

describe('connections', () => {
  /** A receiver that answers 204 and counts the TCP connections it was given. */
  async function countingReceiver(keepAliveTimeout: number) {
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(204).end());
    });
    server.keepAliveTimeout = keepAliveTimeout;
    let connections = 0;
    server.on('connection', () => (connections += 1));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    return { url, connections: () => connections, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
  }

  it('consecutive deliveries to one receiver share one kept-open connection', async () => {
    const receiver = await countingReceiver(5000);
    try {
      for (let i = 0; i < 5; i++) expect(await deliverWebhook({ url: receiver.url, secret: SECRET, event: 'message', body, deliveryId: `dlv_keep_${i}` })).toMatchObject({ ok: true, status: 204 });
      expect(receiver.connections()).toBe(1);
    } finally {
      await receiver.close();
    }
  });

  it('a receiver that closed the idle connection meanwhile gets the next delivery on a new one', async () => {
    const receiver = await countingReceiver(50);
    try {
      expect(await deliverWebhook({ url: receiver.url, secret: SECRET, event: 'message', body, deliveryId: 'dlv_idle_1' })).toMatchObject({ ok: true });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await deliverWebhook({ url: receiver.url, secret: SECRET, event: 'message', body, deliveryId: 'dlv_idle_2' })).toMatchObject({ ok: true });
      expect(receiver.connections()).toBe(2);
    } finally {
      await receiver.close();
    }
  });
});

describe('what comes back', () => {
  it('reads at most 4 KB of an error body and stops reading the rest', async () => {
    const result = await deliver('/flood');
    expect(result).toMatchObject({ ok: false, status: 500, retryable: true });
    expect(result.error).toMatch(new RegExp(`^webhook answered 500: x{${MAX_RESPONSE_BYTES}} …\\(cut at ${MAX_RESPONSE_BYTES} bytes\\)$`));
    await expect.poll(() => floodFinished, { timeout: 5000 }).toBe(false);
  });

  it('never contains the secret, even when the receiver repeats it', async () => {
    const results: WebhookResult[] = [
      await deliver('/echo'),
      await deliver('/hooks/mail'),
      await deliver('/status/500'),
      await deliver('/silent', { timeoutMs: 200 }),
      await deliverWebhook({ url: 'not a url', secret: SECRET, event: 'message', body, deliveryId: 'dlv_1' }),
    ];
    expect(results[0]!.error).toMatch(/my secret is \[secret\]; you sent t=\d+,v1=/);
    for (const result of results) expect(JSON.stringify(result)).not.toContain(SECRET);
  });
});

describe('checkWebhookUrl', () => {
  it('accepts http and https URLs with a host, plain http included (receivers on the LAN)', () => {
    expect(checkWebhookUrl('https://hooks.example.com/mailgate')).toBeUndefined();
    expect(checkWebhookUrl('http://192.168.1.20:8080/inbound')).toBeUndefined();
  });

  it('names what is wrong with anything else', () => {
    expect(checkWebhookUrl('hooks.example.com/mailgate')).toBe('expected an absolute http:// or https:// URL');
    expect(checkWebhookUrl('mailto:ops@example.com')).toBe('expected an http:// or https:// URL, not mailto:');
    expect(checkWebhookUrl('https://user:pw@hooks.example.com/')).toMatch(/^credentials in the URL/);
  });
});
