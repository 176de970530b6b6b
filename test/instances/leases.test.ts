// Proves the coordination primitives several instances share, on SQLite and on the run's real PostgreSQL: a lease has one holder at a time and moves on only once it runs out or is given back, and concurrent outbox claims never hand one message to two instances.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { DatabaseLocation } from '../../src/config/load.js';
import { LeaseRepository } from '../../src/instances/leases.js';
import { createLogger } from '../../src/log.js';
import { OutboxRepository } from '../../src/outbox/repository.js';
import { OUTBOX_CHANNEL, OutboxWakeups } from '../../src/outbox/wakeOthers.js';
import { openStore, type Store } from '../../src/store/store.js';
import { openTestServices, type TestServices } from '../support/services.js';
import { freshPostgresDatabase } from '../support/postgres.js';

const opened: Array<{ close(): Promise<void> }> = [];
afterAll(async () => {
  for (const s of opened.reverse()) await s.close();
});

async function newLocation(kind: DatabaseLocation['kind']): Promise<DatabaseLocation> {
  return kind === 'sqlite' ? { kind, file: path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mailgate-leases-')), 'mailgate.db') } : { kind, url: await freshPostgresDatabase() };
}

async function twoStores(kind: DatabaseLocation['kind']): Promise<[Store, Store]> {
  const location = await newLocation(kind);
  const a = await openStore(location);
  const b = await openStore(location);
  opened.push(a, b);
  return [a, b];
}

describe.each(['sqlite', 'postgres'] as const)('on %s', (kind) => {
  it('a lease has one holder: 40 racing takes give it to exactly one instance, which renews it; the others get it once it runs out or is given back', async () => {
    const [a, b] = await twoStores(kind);
    const leasesA = new LeaseRepository(a);
    const leasesB = new LeaseRepository(b);
    const owners = Array.from({ length: 40 }, (_, i) => `instance-${i}`);
    const results = await Promise.all(owners.map((owner, i) => (i % 2 === 0 ? leasesA : leasesB).acquire('watcher:inbox', owner, 60_000)));
    expect(results.filter(Boolean)).toHaveLength(1);
    const holder = owners[results.indexOf(true)]!;
    expect((await leasesB.list('watcher:')).map((l) => l.owner)).toEqual([holder]);

    // The holder renews (and may take it again); nobody else may while it lasts.
    expect(await leasesA.acquire('watcher:inbox', holder, 60_000)).toBe(true);
    expect(await leasesB.acquire('watcher:inbox', 'latecomer', 60_000)).toBe(false);
    expect(await leasesB.renew('latecomer', ['watcher:inbox'], 60_000)).toEqual(new Set());
    expect(await leasesA.renew(holder, ['watcher:inbox', 'watcher:other'], 60_000)).toEqual(new Set(['watcher:inbox']));

    // Given back: free at once.
    await leasesA.release(holder, ['watcher:inbox']);
    expect(await leasesB.acquire('watcher:inbox', 'latecomer', 150)).toBe(true);
    // Run out (its holder died and renewed no more): the next one takes it, and the old holder's renewal finds nothing.
    expect(await leasesA.acquire('watcher:inbox', holder, 60_000)).toBe(false);
    await new Promise((r) => setTimeout(r, 250));
    expect(await leasesA.acquire('watcher:inbox', holder, 60_000)).toBe(true);
    expect(await leasesB.renew('latecomer', ['watcher:inbox'], 60_000)).toEqual(new Set());
    expect((await leasesA.list()).map((l) => [l.name, l.owner])).toEqual([['watcher:inbox', holder]]);
  });

  it('two instances claiming 300 queued messages at once in batches of 7 get each message exactly once', async () => {
    const prior = process.env.MAILGATE_TEST_DATABASE;
    process.env.MAILGATE_TEST_DATABASE = kind;
    let services: TestServices;
    try {
      services = await openTestServices();
    } finally {
      if (prior === undefined) delete process.env.MAILGATE_TEST_DATABASE;
      else process.env.MAILGATE_TEST_DATABASE = prior;
    }
    opened.push(services);
    expect(services.store.kind).toBe(kind);
    await services.servers.add({ name: 'sink', protocol: 'smtp', host: '127.0.0.1', port: 2525, security: 'none' });
    await services.senders.add({ name: 'alerts', primary: 'sink', from: 'alerts@example.test' });
    for (let i = 0; i < 300; i++) await services.messages.accept({ sender: 'alerts', to: 'duty@example.test', subject: `m${i}`, text: 'x' }, 'cli');

    const other = await openStore(services.config.database);
    opened.push(other);
    const claimers = [services.outbox, new OutboxRepository(other)].flatMap((repo, r) => [0, 1].map((w) => ({ repo, owner: `instance-${r}-worker-${w}` })));
    const claimed = new Map<string, string[]>();
    await Promise.all(
      claimers.map(async ({ repo, owner }) => {
        for (;;) {
          const rows = await repo.claimDue(owner, 7, 60_000);
          if (rows.length === 0) return;
          for (const row of rows) {
            expect(row.lease_owner).toBe(owner);
            claimed.set(row.id, [...(claimed.get(row.id) ?? []), owner]);
          }
        }
      }),
    );
    expect(claimed.size).toBe(300);
    expect([...claimed.values()].filter((owners) => owners.length > 1)).toEqual([]);
    // Both instances took part: the claims really raced.
    expect(new Set([...claimed.values()].map((owners) => owners[0]!.split('-worker')[0])).size).toBe(2);
  });
});

describe('outbox wake-ups across instances (PostgreSQL)', () => {
  it('a message accepted in one instance wakes the others through NOTIFY, one wake-up per burst, and SQLite has none to send', async () => {
    const [a, b] = await twoStores('postgres');
    const logger = createLogger('silent');
    const sender = new OutboxWakeups(a.signal(OUTBOX_CHANNEL)!, logger);
    const woken: number[] = [];
    const stop = new OutboxWakeups(b.signal(OUTBOX_CHANNEL)!, logger).listen(() => woken.push(Date.now()));
    try {
      // The listener also wakes once when its connection is made (notifications may have been missed before it).
      await eventuallyTrue(() => woken.length >= 1, 5000);
      const connected = woken.length;
      // Nothing else wakes this listener: no worker, no poll. Only the NOTIFY can.
      sender.accepted();
      await eventuallyTrue(() => woken.length > connected, 2000);
      // A burst of 50 accepts: one NOTIFY now and one trailing, not fifty.
      await new Promise((r) => setTimeout(r, 100));
      const beforeBurst = woken.length;
      for (let i = 0; i < 50; i++) sender.accepted();
      await new Promise((r) => setTimeout(r, 400));
      expect(woken.length - beforeBurst).toBeGreaterThanOrEqual(1);
      expect(woken.length - beforeBurst).toBeLessThanOrEqual(2);
    } finally {
      sender.stop();
      await stop();
    }
    const [sqlite] = await twoStores('sqlite');
    expect(sqlite.signal(OUTBOX_CHANNEL)).toBeUndefined();
  });
});

async function eventuallyTrue(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not true within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
