// Proves the login guard of the relay, the proxies and the web UI: checks in progress count against the limit (parallel
// guesses cannot slip through, parallel right passwords wait their turn), the delay grows per failure, and lockout is per
// client address first, per account only for guessing spread over many addresses, for the lockout period.
import { describe, expect, it } from 'vitest';
import { LoginGuard, type LoginAttempt } from './loginGuard.js';

async function begin(guard: LoginGuard, address: string, account: string): Promise<LoginAttempt> {
  const attempt = await guard.begin(address, account);
  if ('lockedForMs' in attempt) throw new Error(`locked for ${attempt.lockedForMs} ms`);
  return attempt;
}

const failTimes = async (guard: LoginGuard, address: string, account: string, n: number) => {
  const delays: number[] = [];
  for (let i = 0; i < n; i++) delays.push((await begin(guard, address, account)).failed());
  return delays;
};

describe('LoginGuard', () => {
  it('checks at most as many passwords at once as failures are still allowed: parallel guesses find the address locked', async () => {
    const guard = new LoginGuard({ maxFailures: 3 });
    const results = await Promise.all(
      Array.from({ length: 12 }, async () => {
        const attempt = await guard.begin('192.0.2.1', 'scanner');
        if ('lockedForMs' in attempt) return 'locked';
        await new Promise((r) => setTimeout(r, 5)); // a wrong password, checked
        attempt.failed();
        return 'checked';
      }),
    );
    expect(results.filter((r) => r === 'checked')).toHaveLength(3);
    expect(results.filter((r) => r === 'locked')).toHaveLength(9);
  });

  it('lets twenty parallel logins with the right password all through, in turns (a mail program opening a pool of connections)', async () => {
    const guard = new LoginGuard({ maxFailures: 5 });
    let inFlight = 0;
    let most = 0;
    const results = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const attempt = await begin(guard, '192.0.2.1', 'alarm-panel');
        most = Math.max(most, ++inFlight);
        await new Promise((r) => setTimeout(r, 5));
        inFlight -= 1;
        attempt.succeeded();
        return 'ok';
      }),
    );
    expect(results).toEqual(Array(20).fill('ok'));
    expect(most).toBeLessThanOrEqual(5);
    expect(guard.lockedFor('192.0.2.1', 'alarm-panel')).toBe(0);
  });

  it('counts nothing for a right password, and keeps the address\'s earlier failures (one account\'s right password does not reset guessing at others)', async () => {
    const guard = new LoginGuard({ maxFailures: 5 });
    await failTimes(guard, '192.0.2.1', 'scanner', 4);
    (await begin(guard, '192.0.2.1', 'alarm-panel')).succeeded();
    expect(guard.lockedFor('192.0.2.1', 'scanner')).toBe(0);
    await failTimes(guard, '192.0.2.1', 'other', 1);
    expect(guard.lockedFor('192.0.2.1', 'scanner')).toBeGreaterThan(0);
    expect(guard.lockedFor('192.0.2.1', 'alarm-panel')).toBeGreaterThan(0);
    expect(guard.lockedFor('192.0.2.2', 'alarm-panel')).toBe(0);
  });

  it('answers each failure after a growing delay: 250 ms doubling up to 4 s', async () => {
    const guard = new LoginGuard({ maxFailures: 100 });
    expect(await failTimes(guard, '192.0.2.1', 'scanner', 7)).toEqual([250, 500, 1000, 2000, 4000, 4000, 4000]);
    // Another address starts at the first delay.
    expect(await failTimes(guard, '192.0.2.2', 'scanner', 1)).toEqual([250]);
  });

  it('locks out a client address after maxFailures for every account, for the lockout period, but not the account for others', async () => {
    const lockoutMs = 15 * 60_000;
    const guard = new LoginGuard({ maxFailures: 5, lockoutMs });
    await failTimes(guard, '192.0.2.1', 'scanner', 5);
    const wait = guard.lockedFor('192.0.2.1', 'scanner');
    expect(wait).toBeGreaterThan(lockoutMs - 5000);
    expect(wait).toBeLessThanOrEqual(lockoutMs);
    expect(guard.lockedFor('192.0.2.1', 'another-account')).toBeGreaterThan(0);
    // The device with the right password on another address keeps working: an old password elsewhere is no denial of service.
    expect(guard.lockedFor('192.0.2.9', 'scanner')).toBe(0);
    // Over when the period has passed.
    expect(guard.lockedFor('192.0.2.1', 'scanner', Date.now() + lockoutMs + 1)).toBe(0);
  });

  it('locks an account only after accountFactor × maxFailures failures spread over many addresses', async () => {
    const guard = new LoginGuard({ maxFailures: 5, accountFactor: 4 });
    for (let i = 0; i < 19; i++) await failTimes(guard, `198.51.100.${i}`, 'scanner', 1);
    expect(guard.lockedFor('203.0.113.7', 'scanner')).toBe(0);
    await failTimes(guard, '198.51.100.19', 'scanner', 1);
    expect(guard.lockedFor('203.0.113.7', 'scanner')).toBeGreaterThan(0);
    // Only that account: the same new address may still try another one.
    expect(guard.lockedFor('203.0.113.7', 'printer')).toBe(0);
  });

  it('forgets the oldest addresses beyond maxKeys, so a flood of addresses cannot grow memory without bound', async () => {
    const guard = new LoginGuard({ maxFailures: 1, maxKeys: 10 });
    await failTimes(guard, '192.0.2.1', 'a', 1);
    expect(guard.lockedFor('192.0.2.1', 'b')).toBeGreaterThan(0);
    for (let i = 0; i < 20; i++) await failTimes(guard, `198.51.100.${i}`, `acct${i}`, 1);
    expect(guard.lockedFor('192.0.2.1', 'b')).toBe(0);
  });
});
