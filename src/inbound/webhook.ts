// Signed webhooks: the signature (Stripe's scheme), its verification as a receiver does it, and one delivery attempt.
import { createHmac, timingSafeEqual } from 'node:crypto';
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
  return undefined;
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
  fetchImpl?: typeof fetch;
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

  const problem = checkWebhookUrl(request.url);
  if (problem) return fail(false, `webhook URL: ${problem}`);
  const timeoutMs = request.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const payload = JSON.stringify(request.body);
  const timestamp = Math.floor((request.now?.() ?? Date.now()) / 1000);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const response = await (request.fetchImpl ?? fetch)(request.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': `Mailgate/${VERSION}`,
        [WEBHOOK_HEADERS.event]: request.event,
        [WEBHOOK_HEADERS.delivery]: request.deliveryId,
        [WEBHOOK_HEADERS.signature]: signWebhook(request.secret, payload, timestamp),
      },
      body: payload,
      // a redirect would be a POST to an address nobody configured; and 301/302 turn into a GET on the way
      redirect: 'manual',
      signal: controller.signal,
    });
    const { status } = response;
    if (status >= 200 && status < 300) {
      await response.body?.cancel().catch(() => undefined);
      return { ok: true, status, retryable: false, ms: elapsed() };
    }
    if (status >= 300 && status < 400) {
      await response.body?.cancel().catch(() => undefined);
      const location = response.headers.get('location');
      return fail(false, `webhook answered ${status}: point the watcher at the final URL${location ? ` (Location: ${location.slice(0, 500)})` : ''}; redirects are not followed`, status);
    }
    const text = await readBounded(response);
    const retryable = status >= 500 || RETRYABLE_4XX.has(status);
    const asked = retryable ? retryAfterMs(response.headers.get('retry-after')) : undefined;
    return { ...fail(retryable, `webhook answered ${status}${text ? `: ${text}` : ''}`, status), ...(asked !== undefined ? { retryAfterMs: asked } : {}) };
  } catch (err) {
    if (controller.signal.aborted) return fail(true, `webhook did not answer within ${timeoutMs} ms`);
    return fail(true, `webhook request failed: ${networkError(err)}`);
  } finally {
    clearTimeout(timer);
  }
}

/** Up to MAX_RESPONSE_BYTES of the body as one line of text; the rest is never read (the stream is cancelled). */
async function readBounded(response: Response): Promise<string> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let ended = false;
  try {
    while (size < MAX_RESPONSE_BYTES) {
      const { done, value } = await reader.read();
      if (done) {
        ended = true;
        break;
      }
      chunks.push(value);
      size += value.byteLength;
    }
    if (!ended) await reader.cancel().catch(() => undefined);
  } catch {
    // a body cut off (or timed out) halfway still says something: keep what arrived
    ended = true;
  } finally {
    reader.releaseLock();
  }
  const bytes = Buffer.concat(chunks).subarray(0, MAX_RESPONSE_BYTES);
  // fatal: false, so a multi-byte character cut at the limit becomes U+FFFD instead of an exception
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes).replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  return ended && size <= MAX_RESPONSE_BYTES ? text : `${text} …(cut at ${MAX_RESPONSE_BYTES} bytes)`;
}

/** fetch's "fetch failed" hides the reason in `cause`: the socket's code and message. */
function networkError(err: unknown): string {
  const cause = (err as { cause?: unknown })?.cause as (NodeJS.ErrnoException & { message?: string }) | undefined;
  if (cause && typeof cause.message === 'string') return `${cause.message}${typeof cause.code === 'string' && !cause.message.includes(cause.code) ? ` (${cause.code})` : ''}`;
  return err instanceof Error ? err.message : String(err);
}
