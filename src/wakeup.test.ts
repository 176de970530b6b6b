// Proves that a wake is never lost: one that arrives between sleeps ends the next sleep at once.
import { describe, expect, it } from 'vitest';
import { Wakeup } from './wakeup.js';

describe('Wakeup', () => {
  it('ends a sleep when woken, and remembers a wake that came while nobody slept', async () => {
    const wakeup = new Wakeup();
    const sleeping = wakeup.sleep(60_000);
    wakeup.wake();
    await sleeping;
    wakeup.wake();
    const started = Date.now();
    await wakeup.sleep(60_000);
    expect(Date.now() - started).toBeLessThan(10_000); // far below the 60 s it asked for: the remembered wake ended it
    const timed = Date.now();
    await wakeup.sleep(20);
    expect(Date.now() - timed).toBeGreaterThanOrEqual(15);
  });
});
