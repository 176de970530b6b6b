// Exponential backoff with jitter for failed token refreshes, as a small table of bounds.

export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

/** Refreshes that failed for a passing reason (network, 5xx, 429): 5 s, 10 s, 20 s … up to 15 minutes. */
export const REFRESH_BACKOFF: BackoffPolicy = { baseMs: 5_000, maxMs: 15 * 60_000 };

/**
 * Delay before attempt number `failures + 1`: "equal jitter" (half fixed, half random), so many credentials
 * failing together do not come back at the same instant, yet none retries much sooner than planned.
 */
export function backoffDelay(failures: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, failures - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/**
 * How long a server asked us to wait: `Retry-After` as delay-seconds or as an HTTP-date (RFC 9110 §10.2.3). Undefined
 * when absent or unreadable; 0 for a date in the past.
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-10.2.3
 */
export function retryAfterMs(header: string | null | undefined, now = Date.now()): number | undefined {
  const value = header?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  // Only the IMF-fixdate shapes a server sends (a weekday, a day, a month name, a year); not any text Date.parse takes.
  if (Number.isNaN(at) || !/^[A-Za-z]{3},? /.test(value)) return undefined;
  return Math.max(0, at - now);
}

/** The planned backoff, but never sooner than the server asked, and never beyond the policy's ceiling. */
export function delayHonouringRetryAfter(planned: number, asked: number | undefined, maxMs: number): number {
  return asked === undefined ? planned : Math.min(Math.max(planned, asked), maxMs);
}
