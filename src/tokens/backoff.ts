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
