// Proves the refresh backoff: doubling from the base, capped, and jittered within the upper half of each step.
import { describe, expect, it } from 'vitest';
import { backoffDelay, REFRESH_BACKOFF } from './backoff.js';

describe('backoffDelay', () => {
  it('doubles per failure up to the cap, with jitter in the upper half of each step', () => {
    expect(backoffDelay(1, REFRESH_BACKOFF, () => 0)).toBe(2_500);
    expect(backoffDelay(1, REFRESH_BACKOFF, () => 1)).toBe(5_000);
    expect(backoffDelay(3, REFRESH_BACKOFF, () => 1)).toBe(20_000);
    expect(backoffDelay(30, REFRESH_BACKOFF, () => 1)).toBe(15 * 60_000);
    expect(backoffDelay(30, REFRESH_BACKOFF, () => 0)).toBe(7.5 * 60_000);
  });
});
