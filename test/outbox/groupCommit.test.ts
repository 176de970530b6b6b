// Proves that the outbox's group commit keeps every write's own outcome: accepts arriving together are each committed when they resolve, a duplicate idempotency key among them fails alone, and lease-checked outcome writes that share a transaction each say whether their own lease held.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/store/store.js';
import { openTestServices, type TestServices } from '../support/services.js';

let services: TestServices;
/** A second connection to the same database: it sees only what was committed. */
let observer: Store;

beforeAll(async () => {
  services = await openTestServices();
  await services.servers.add({ name: 'relay', protocol: 'smtp', host: '127.0.0.1', port: 2525, security: 'none' });
  await services.senders.add({ name: 'alerts', primary: 'relay', from: 'alerts@example.test' });
  observer = await openStore(services.config.database);
});
afterAll(async () => {
  await observer?.close();
  await services?.close();
});

const message = (i: number, idempotencyKey?: string) => ({ sender: 'alerts', to: 'duty@example.test', subject: `group ${i}`, text: `message ${i}`, ...(idempotencyKey ? { idempotencyKey } : {}) });
const committed = async (id: string) => (await observer.db.selectFrom('outbox').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;

describe('outbox group commit', () => {
  it('accepts arriving together resolve only once their rows are committed (another connection sees each one at once)', async () => {
    const seen = await Promise.all(
      Array.from({ length: 40 }, (_, i) => services.messages.accept(message(i), 'cli').then(async ({ view }) => ({ id: view.id, committed: await committed(view.id) }))),
    );
    expect(new Set(seen.map((s) => s.id)).size).toBe(40);
    expect(seen.filter((s) => !s.committed)).toEqual([]);
  });

  it('a duplicate idempotency key among accepts arriving together fails alone: the others are stored, the duplicate replays the first', async () => {
    const results = await Promise.allSettled([
      ...Array.from({ length: 20 }, (_, i) => services.messages.accept(message(100 + i), 'cli')),
      services.messages.accept(message(200, 'same-key'), 'cli'),
      services.messages.accept(message(200, 'same-key'), 'cli'),
    ]);
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    const accepted = results.map((r) => (r as PromiseFulfilledResult<Awaited<ReturnType<TestServices['messages']['accept']>>>).value);
    const [first, second] = accepted.slice(20);
    expect(first!.view.id).toBe(second!.view.id);
    expect([first!.created, second!.created].sort()).toEqual([false, true]);
    expect(new Set(accepted.map((a) => a.view.id)).size).toBe(21);
    for (const a of accepted) expect(await committed(a.view.id)).toBe(true);
  });

  it('outcome writes sharing a transaction each report their own lease: a stale holder and a second write to the same message get false', async () => {
    await services.outbox.claimDue('drain', 1000, 60_000); // earlier tests' messages out of the way
    const ids = await Promise.all([1, 2, 3].map(async (i) => (await services.messages.accept(message(300 + i), 'cli')).view.id));
    const claimed = await services.outbox.claimDue('worker-a', 10, 60_000);
    expect(claimed.map((r) => r.id).sort()).toEqual([...ids].sort());
    const [a, b, c] = ids.map((id) => claimed.find((r) => r.id === id)!);
    const attempt = { at: new Date().toISOString(), server: 'relay', outcome: 'sent', response: '250 ok' } as const;
    const sent = { server: 'relay', response: '250 ok', rejected: [], attempt };
    const outcomes = await Promise.all([
      services.outbox.markSent(a!, sent),
      services.outbox.markSent({ ...b!, lease_owner: 'worker-b' }, sent), // a lease it does not hold
      services.outbox.markFailed(c!, { error: 'refused', attempt: { ...attempt, outcome: 'failed' } }),
      services.outbox.markSent(a!, sent), // the same message again: no longer sending
      services.outbox.reschedule(b!, { at: new Date(), serverIndex: 0, serverAttempts: 1, error: 'try later', attempt: { ...attempt, outcome: 'retry' } }),
    ]);
    expect(outcomes).toEqual([true, false, true, false, true]);
    expect((await services.outbox.get(a!.id)).status).toBe('sent');
    expect((await services.outbox.get(b!.id))).toMatchObject({ status: 'queued', attempts: 1, last_error: 'try later', lease_owner: null });
    expect((await services.outbox.get(c!.id))).toMatchObject({ status: 'failed', last_error: 'refused' });
  });
});
