// Proves the login guard of the relay and proxies: an attempt counts as failed from its start (parallel guesses cannot
// slip through) and is taken back on success, the delay grows per failure, and lockout is per client address first,
// per account only for guessing spread over many addresses, for the lockout period.
import { describe, expect, it } from 'vitest';
import { LoginGuard } from './loginGuard.js';

const failTimes = (guard: LoginGuard, address: string, account: string, n: number) => {
  const delays: number[] = [];
  for (let i = 0; i < n; i++) delays.push(guard.begin(address, account).failed());
  return delays;
};

describe('LoginGuard', () => {
  it('counts an attempt as failed as soon as it begins, so parallel guesses are locked before any is answered', () => {
    const guard = new LoginGuard({ maxFailures: 3 });
    const attempts = [guard.begin('192.0.2.1', 'scanner'), guard.begin('192.0.2.1', 'scanner')];
    expect(guard.lockedFor('192.0.2.1', 'scanner')).toBe(0);
    attempts.push(guard.begin('192.0.2.1', 'scanner'));
    // Three in flight, none settled: the fourth is refused already.
    expect(guard.lockedFor('192.0.2.1', 'scanner')).toBeGreaterThan(0);
  });

  it('takes only its own attempt back on success: earlier failures from the address still count (a right password for one account does not reset guessing at others)', () => {
    const guard = new LoginGuard({ maxFailures: 5 });
    failTimes(guard, '192.0.2.1', 'scanner', 4);
    guard.begin('192.0.2.1', 'alarm-panel').succeeded();
    expect(guard.lockedFor('192.0.2.1', 'scanner')).toBe(0);
    // The success did not count as a failure, nor wipe the four before it: the fifth failure locks the address.
    failTimes(guard, '192.0.2.1', 'other', 1);
    expect(guard.lockedFor('192.0.2.1', 'scanner')).toBeGreaterThan(0);
    expect(guard.lockedFor('192.0.2.1', 'alarm-panel')).toBeGreaterThan(0);
    // Another address is not affected.
    expect(guard.lockedFor('192.0.2.2', 'alarm-panel')).toBe(0);
  });

  it('answers each failure after a growing delay: 250 ms doubling up to 4 s', () => {
    const guard = new LoginGuard({ maxFailures: 100 });
    expect(failTimes(guard, '192.0.2.1', 'scanner', 7)).toEqual([250, 500, 1000, 2000, 4000, 4000, 4000]);
    // Another address starts at the first delay.
    expect(failTimes(guard, '192.0.2.2', 'scanner', 1)).toEqual([250]);
  });

  it('locks out a client address after maxFailures for every account, for the lockout period, but not the account for others', () => {
    const lockoutMs = 15 * 60_000;
    const guard = new LoginGuard({ maxFailures: 5, lockoutMs });
    failTimes(guard, '192.0.2.1', 'scanner', 5);
    const wait = guard.lockedFor('192.0.2.1', 'scanner');
    expect(wait).toBeGreaterThan(lockoutMs - 5000);
    expect(wait).toBeLessThanOrEqual(lockoutMs);
    expect(guard.lockedFor('192.0.2.1', 'another-account')).toBeGreaterThan(0);
    // The device with the right password on another address keeps working: an old password elsewhere is no denial of service.
    expect(guard.lockedFor('192.0.2.9', 'scanner')).toBe(0);
    // Over when the period has passed.
    expect(guard.lockedFor('192.0.2.1', 'scanner', Date.now() + lockoutMs + 1)).toBe(0);
  });

  it('locks an account only after accountFactor × maxFailures failures spread over many addresses', () => {
    const guard = new LoginGuard({ maxFailures: 5, accountFactor: 4 });
    for (let i = 0; i < 19; i++) failTimes(guard, `198.51.100.${i}`, 'scanner', 1);
    expect(guard.lockedFor('203.0.113.7', 'scanner')).toBe(0);
    failTimes(guard, '198.51.100.19', 'scanner', 1);
    expect(guard.lockedFor('203.0.113.7', 'scanner')).toBeGreaterThan(0);
    // Only that account: the same new address may still try another one.
    expect(guard.lockedFor('203.0.113.7', 'printer')).toBe(0);
  });

  it('forgets the oldest addresses beyond maxKeys, so a flood of addresses cannot grow memory without bound', () => {
    const guard = new LoginGuard({ maxFailures: 1, maxKeys: 10 });
    failTimes(guard, '192.0.2.1', 'a', 1);
    expect(guard.lockedFor('192.0.2.1', 'b')).toBeGreaterThan(0);
    for (let i = 0; i < 20; i++) failTimes(guard, `198.51.100.${i}`, `acct${i}`, 1);
    expect(guard.lockedFor('192.0.2.1', 'b')).toBe(0);
  });
});
