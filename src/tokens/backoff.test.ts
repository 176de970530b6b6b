// Proves the refresh backoff: doubling from the base, capped, jittered within the upper half of each step, and Retry-After honoured within the cap.
import { describe, expect, it } from 'vitest';
import { backoffDelay, delayHonouringRetryAfter, REFRESH_BACKOFF, retryAfterMs } from './backoff.js';

describe('backoffDelay', () => {
  it('doubles per failure up to the cap, with jitter in the upper half of each step', () => {
    expect(backoffDelay(1, REFRESH_BACKOFF, () => 0)).toBe(2_500);
    expect(backoffDelay(1, REFRESH_BACKOFF, () => 1)).toBe(5_000);
    expect(backoffDelay(3, REFRESH_BACKOFF, () => 1)).toBe(20_000);
    expect(backoffDelay(30, REFRESH_BACKOFF, () => 1)).toBe(15 * 60_000);
    expect(backoffDelay(30, REFRESH_BACKOFF, () => 0)).toBe(7.5 * 60_000);
  });
});

describe('Retry-After', () => {
  const now = Date.parse('2026-12-03T10:00:00Z');

  it('reads delay-seconds and an HTTP-date, and ignores what is neither', () => {
    expect(retryAfterMs('30', now)).toBe(30_000);
    expect(retryAfterMs(' 0 ', now)).toBe(0);
    expect(retryAfterMs('Thu, 03 Dec 2026 10:02:00 GMT', now)).toBe(120_000);
    expect(retryAfterMs('Thu, 03 Dec 2026 09:00:00 GMT', now)).toBe(0);
    for (const junk of [undefined, null, '', '-5', '1.5', 'soon', '2026-12-03T10:02:00Z']) expect(retryAfterMs(junk, now), String(junk)).toBeUndefined();
  });

  it('waits at least as long as asked, never beyond the ceiling, and keeps the plan without a header', () => {
    expect(delayHonouringRetryAfter(4_600, 30_000, REFRESH_BACKOFF.maxMs)).toBe(30_000);
    expect(delayHonouringRetryAfter(40_000, 30_000, REFRESH_BACKOFF.maxMs)).toBe(40_000);
    expect(delayHonouringRetryAfter(4_600, 86_400_000, REFRESH_BACKOFF.maxMs)).toBe(15 * 60_000);
    expect(delayHonouringRetryAfter(4_600, undefined, REFRESH_BACKOFF.maxMs)).toBe(4_600);
  });
});
