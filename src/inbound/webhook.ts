// Signed webhooks: the signature (Stripe's scheme), its verification as a receiver does it, and one delivery attempt.
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import { VERSION } from '../version.js';
import { retryAfterMs } from '../tokens/backoff.js';

export const WEBHOOK_HEADERS = {
  event: 'x-mailgate-event',
  delivery: 'x-mailgate-delivery',
  signature: 'x-mailgate-signature',
} as const;

/** How far a signature's timestamp may be from the receiver's clock (either way) before it is refused. */
export const DEFAULT_TOLERANCE_SECONDS = 300;
/** Of a response body only this much is read, for the error text: a receiver cannot make Mailgate buffer more. */
export const MAX_RESPONSE_BYTES = 4096;
const DEFAULT_TIMEOUT_MS = 10_000;
/**
 * Connections to receivers are kept open and reused (one TLS handshake, not one per delivery); one idle this long is
 * closed, before a receiver's own idle timeout (Node's servers: 5 s) can close it under a request.
 */
const IDLE_CONNECTION_MS = 4000;
/** node:http rather than fetch: about a quarter of fetch's CPU per request, which counts at hundreds of webhooks a second. */
const agents = {
  'http:': new http.Agent({ keepAlive: true, timeout: IDLE_CONNECTION_MS }),
  'https:': new https.Agent({ keepAlive: true, timeout: IDLE_CONNECTION_MS }),
};
const HEX_SHA256 = /^[0-9a-f]{64}$/;

const hmac = (secret: string, timestamp: number, body: string) => createHmac('sha256', secret).update(`${timestamp}.${body}`, 'utf8').digest('hex');

/**
 * The `x-mailgate-signature` value: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. The timestamp is
 * signed with the body, so a captured request cannot be replayed once it is older than the receiver's tolerance.
 * Several secrets (a rotation in progress) give one `v1` each; a receiver accepts any that matches.
 * @see https://docs.stripe.com/webhooks#verify-manually (the same scheme)
 */
export function signWebhook(secret: string | readonly string[], body: string, timestamp: number): string {
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw new RangeError('timestamp: expected whole unix seconds');
  const secrets = typeof secret === 'string' ? [secret] : secret;
  if (secrets.length === 0) throw new RangeError('secret: expected at least one signing secret');
  return [`t=${timestamp}`, ...secrets.map((s) => `v1=${hmac(s, timestamp, body)}`)].join(',');
}

export const WebhookSignatureProblem = {
  /** No x-mailgate-signature header. */
  MISSING_HEADER: 'MISSING_HEADER',
  /** The header has no (or more than one) `t=<digits>`, or no well-formed `v1=<64 hex>`. */
  MALFORMED_HEADER: 'MALFORMED_HEADER',
  /** No v1 value matches the body under the secret: tampered body, wrong secret, or a body re-serialized before checking. */
  SIGNATURE_MISMATCH: 'SIGNATURE_MISMATCH',
  /** The signature is right but its timestamp is outside the tolerance: a replay, or a clock far off. */
  TIMESTAMP_OUT_OF_TOLERANCE: 'TIMESTAMP_OUT_OF_TOLERANCE',
} as const;
export type WebhookSignatureProblem = (typeof WebhookSignatureProblem)[keyof typeof WebhookSignatureProblem];

export type WebhookVerification = { ok: true; timestamp: number } | { ok: false; reason: WebhookSignatureProblem; message: string };

export interface VerifyOptions {
  /** Default 300 (5 minutes). */
  toleranceSeconds?: number;
  /** The receiver's clock in unix seconds (default: now). */
  now?: number;
}

/**
 * What a receiver runs on the raw request body (the bytes as received: a body parsed and serialized again no longer
 * matches). `secret` may list several secrets while one is being rotated. Comparisons are constant-time.
 */
export function verifyWebhookSignature(
  secret: string | readonly string[],
  body: string,
  header: string | readonly string[] | null | undefined,
  options: VerifyOptions = {},
): WebhookVerification {
  const refuse = (reason: WebhookSignatureProblem, message: string): WebhookVerification => ({ ok: false, reason, message });
  const value = typeof header === 'string' ? header : header?.join(',');
  if (value === undefined || value === null || value.trim() === '') return refuse(WebhookSignatureProblem.MISSING_HEADER, `no ${WEBHOOK_HEADERS.signature} header`);

  const pairs = value.split(',').map((part) => {
    const eq = part.indexOf('=');
    return eq < 0 ? ['', ''] : [part.slice(0, eq).trim(), part.slice(eq + 1).trim()];
  });
  const timestamps = pairs.filter(([k]) => k === 't').map(([, v]) => v!);
  // unknown schemes (a future v2) are skipped, as Stripe's receivers do
  const signatures = pairs.filter(([k, v]) => k === 'v1' && HEX_SHA256.test(v!)).map(([, v]) => Buffer.from(v!, 'hex'));
  if (timestamps.length !== 1 || !/^\d{1,12}$/.test(timestamps[0]!)) return refuse(WebhookSignatureProblem.MALFORMED_HEADER, 'expected exactly one t=<unix seconds>');
  if (signatures.length === 0) return refuse(WebhookSignatureProblem.MALFORMED_HEADER, 'expected v1=<hex HMAC-SHA256>');
  const timestamp = Number(timestamps[0]);

  const secrets = typeof secret === 'string' ? [secret] : secret;
  const expected = secrets.map((s) => Buffer.from(hmac(s, timestamp, body), 'hex'));
  // every pair is compared, so the time taken does not tell which (or whether an early) one matched
  let matched = false;
  for (const want of expected) for (const got of signatures) matched = timingSafeEqual(want, got) || matched;
  if (!matched) return refuse(WebhookSignatureProblem.SIGNATURE_MISMATCH, 'no v1 signature matches the body under the secret');

  const now = options.now ?? Math.floor(Date.now() / 1000);
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (Math.abs(now - timestamp) > tolerance) {
    return refuse(WebhookSignatureProblem.TIMESTAMP_OUT_OF_TOLERANCE, `signed at ${timestamp}, ${now - timestamp} s from now; tolerance ${tolerance} s`);
  }
  return { ok: true, timestamp };
}

/** The problem with a webhook URL, or undefined. Plain http is allowed: many receivers live on the LAN. */
export function checkWebhookUrl(url: string): string | undefined {
  const parsed = parseWebhookUrl(url);
  return typeof parsed === 'string' ? parsed : undefined;
}

/** The URL, or what is wrong with it. */
function parseWebhookUrl(url: string): URL | string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'expected an absolute http:// or https:// URL';
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return `expected an http:// or https:// URL, not ${parsed.protocol.replace(/:$/, '')}:`;
  if (parsed.hostname === '') return 'expected a host in the URL';
  // fetch refuses such URLs, and a password in a URL ends up in every log that shows it: the signature authenticates instead
  if (parsed.username !== '' || parsed.password !== '') return 'credentials in the URL (user:password@) are not supported; the receiver checks the signature instead';
  return parsed;
}

export interface WebhookRequest {
  url: string;
  /**
   * The signing secret, or while a secret is being rotated the secrets that sign: the current one first, then the
   * one it replaced (one `v1=` each, in this order).
   */
  secret: string | readonly string[];
  /** x-mailgate-event. */
  event: string;
  /** Sent as JSON; signed as the exact bytes sent. */
  body: object;
  /** x-mailgate-delivery: the same on every retry of one delivery, so a receiver can drop duplicates. */
  deliveryId: string;
  /** For the whole attempt: connect, answer and the (bounded) response body. Default 10 s. */
  timeoutMs?: number;
  /** The clock, in ms (tests). */
  now?: () => number;
}

export interface WebhookResult {
  /** A 2xx answer: the receiver has the message. */
  ok: boolean;
  status?: number;
  /** Worth trying again later (network, timeout, 408/425/429/5xx). Either way a failed delivery is parked, never dropped. */
  retryable: boolean;
  /** What went wrong, with at most 4 KB of the receiver's answer; never the secret. */
  error?: string;
  /** The receiver's `Retry-After` on a retryable answer (429, 503 …), in milliseconds: the next try waits at least this. */
  retryAfterMs?: number;
  ms: number;
}

/** RFC 9110 §15.5.9 Request Timeout, RFC 8470 Too Early, RFC 6585 Too Many Requests: "not now", not "never". */
const RETRYABLE_4XX = new Set([408, 425, 429]);

/** POSTs one signed webhook; never throws: every outcome is a WebhookResult. */
export async function deliverWebhook(request: WebhookRequest): Promise<WebhookResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  // A receiver may echo what it got, or worse: nothing it says reaches the result with a secret in it.
  const secrets = (typeof request.secret === 'string' ? [request.secret] : request.secret).filter((s) => s !== '');
  const clean = (text: string) => secrets.reduce((t, s) => t.split(s).join('[secret]'), text);
  const fail = (retryable: boolean, error: string, status?: number): WebhookResult => ({
    ok: false,
    ...(status !== undefined ? { status } : {}),
    retryable,
    error: clean(error),
    ms: elapsed(),
  });

  const url = parseWebhookUrl(request.url);
  if (typeof url === 'string') return fail(false, `webhook URL: ${url}`);
  const timeoutMs = request.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const payload = JSON.stringify(request.body);
  const timestamp = Math.floor((request.now?.() ?? Date.now()) / 1000);
  const headers = {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(payload)),
    'user-agent': `Mailgate/${VERSION}`,
    [WEBHOOK_HEADERS.event]: request.event,
    [WEBHOOK_HEADERS.delivery]: request.deliveryId,
    [WEBHOOK_HEADERS.signature]: signWebhook(request.secret, payload, timestamp),
  };
  // A timer, not an AbortSignal (which costs a fifth of a request's CPU): it ends the request, or the response being read.
  const attempt: Attempt = { timedOut: false, request: undefined };
  const timer = setTimeout(() => {
    attempt.timedOut = true;
    attempt.request?.destroy(new Error(`no answer within ${timeoutMs} ms`));
  }, timeoutMs);
  try {
    // Redirects are never followed (node:http does not): a redirect would be a POST to an address nobody configured.
    const response = await post(url, headers, payload, attempt);
    const status = response.statusCode ?? 0;
    if (status >= 200 && status < 300) {
      // the receiver has it: a body that then stalls or is cut off changes nothing
      await discard(response);
      return { ok: true, status, retryable: false, ms: elapsed() };
    }
    if (status >= 300 && status < 400) {
      await discard(response);
      const location = response.headers.location;
      return fail(false, `webhook answered ${status}: point the watcher at the final URL${location ? ` (Location: ${location.slice(0, 500)})` : ''}; redirects are not followed`, status);
    }
    const text = await readBounded(response);
    const retryable = status >= 500 || RETRYABLE_4XX.has(status);
    const asked = retryable ? retryAfterMs(header(response.headers['retry-after'])) : undefined;
    return { ...fail(retryable, `webhook answered ${status}${text ? `: ${text}` : ''}`, status), ...(asked !== undefined ? { retryAfterMs: asked } : {}) };
  } catch (err) {
    if (attempt.timedOut) return fail(true, `webhook did not answer within ${timeoutMs} ms`);
    return fail(true, `webhook request failed: ${networkError(err)}`);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * One POST; resolves with the response once its head arrived. A kept-open connection the receiver closed meanwhile
 * fails before the request reached it: that one is sent again once, on a new connection.
 */
function post(url: URL, headers: Record<string, string>, payload: string, attempt: Attempt, retried = false): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const secure = url.protocol === 'https:';
    const req = (secure ? https : http).request(url, { method: 'POST', headers, agent: agents[secure ? 'https:' : 'http:'] }, resolve);
    attempt.request = req;
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (!retried && req.reusedSocket && !attempt.timedOut && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) resolve(post(url, headers, payload, attempt, true));
      else reject(err);
    });
    req.end(payload);
  });
}

/** One delivery attempt's request (the one sent again after a stale connection included) and whether its time ran out. */
interface Attempt {
  timedOut: boolean;
  request: http.ClientRequest | undefined;
}

/**
 * Reads a body nobody needs to its end, so that its connection is reused for the next delivery; more than
 * MAX_RESPONSE_BYTES of it ends the connection instead. A body that stalls ends with the attempt's timeout.
 */
function discard(response: http.IncomingMessage): Promise<void> {
  return new Promise((resolve) => {
    let size = 0;
    response.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_RESPONSE_BYTES) response.destroy();
    });
    response.on('error', () => undefined);
    response.on('end', resolve);
    response.on('close', resolve);
  });
}

const header = (value: string | string[] | undefined): string | null => (Array.isArray(value) ? (value[0] ?? null) : (value ?? null));

/** Up to MAX_RESPONSE_BYTES of the body as one line of text; the rest is never read (the connection is closed). */
async function readBounded(response: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  let ended = false;
  try {
    for await (const chunk of response as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= MAX_RESPONSE_BYTES) break;
    }
    if (size < MAX_RESPONSE_BYTES) ended = true;
    // leaving the loop early destroys the response and its connection: a flood is not read on
  } catch {
    // a body cut off (or timed out) halfway still says something: keep what arrived
    ended = true;
  }
  const bytes = Buffer.concat(chunks).subarray(0, MAX_RESPONSE_BYTES);
  // fatal: false, so a multi-byte character cut at the limit becomes U+FFFD instead of an exception
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes).replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  return ended && size <= MAX_RESPONSE_BYTES ? text : `${text} …(cut at ${MAX_RESPONSE_BYTES} bytes)`;
}

/** The socket's message and code (a wrapped error's `cause` when there is one). */
function networkError(err: unknown): string {
  const e = ((err as { cause?: unknown })?.cause ?? err) as (NodeJS.ErrnoException & { message?: string }) | undefined;
  if (e && typeof e.message === 'string') return `${e.message}${typeof e.code === 'string' && !e.message.includes(e.code) ? ` (${e.code})` : ''}`;
  return String(err);
}
