// Proves the outbox lease rules: a send that outlasts its lease is not sent a second time by the same worker (its lease is renewed), and an outcome is written only by the worker that still holds the lease.
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { OutboxWorker } from '../../src/outbox/worker.js';
import { eventually } from '../support/mailbox.js';
import { openTestServices, type TestServices } from '../support/services.js';
import { getFreePort } from '../testbed/ports.js';

let services: TestServices;
let slowSink: SMTPServer;
const received: string[] = [];

beforeAll(async () => {
  const port = await getFreePort();
  // A bare SMTP peer (smtp-server) that takes 1.5 s to accept each message: longer than the test's 300 ms lease.
  slowSink = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, _session, callback) {
      let raw = '';
      stream.on('data', (c: Buffer) => (raw += c.toString()));
      stream.on('end', () => setTimeout(() => {
        received.push(/^Subject: (.*)$/m.exec(raw)?.[1] ?? '');
        callback();
      }, 1500));
    },
  });
  await new Promise<void>((resolve) => slowSink.listen(port, '127.0.0.1', resolve));
  services = await openTestServices();
  await services.servers.add({ name: 'slow', protocol: 'smtp', host: '127.0.0.1', port, security: 'none' });
  await services.senders.add({ name: 'alerts', primary: 'slow', from: 'alerts@example.test' });
});
afterAll(async () => {
  await new Promise<void>((resolve) => slowSink?.close(() => resolve()));
  await services?.close();
});

describe('outbox leases', () => {
  it('a send slower than the lease is sent once: the worker renews its own leases and never requeues them', async () => {
    const worker = new OutboxWorker({
      outbox: services.outbox,
      senders: services.senders,
      servers: services.serverRepo,
      transports: services.transports,
      tokens: services.tokens,
      budget: services.sendBudget,
      logger: createLogger('silent'),
      options: services.config.outbox,
      requeueOnStart: false,
      leaseMs: 300,
      leaseCheckMs: 100,
    });
    const { view } = await services.messages.accept({ sender: 'alerts', to: 'duty@example.test', subject: 'slow one', text: 'x' }, 'cli');
    await worker.start();
    try {
      await eventually(() => services.messages.show(view.id), (m) => m.status === 'sent', 10_000, 'the message to be sent');
      // Time for a wrongly requeued copy to go out as well.
      await new Promise((r) => setTimeout(r, 2000));
    } finally {
      await worker.stop(5000);
    }
    expect(received.filter((s) => s === 'slow one')).toHaveLength(1);
    expect((await services.messages.show(view.id)).attempts).toBe(1);
  });

  it('writes an outcome only while the lease is still the writer\'s (a stale worker cannot overwrite the new holder)', async () => {
    const { view } = await services.messages.accept({ sender: 'alerts', to: 'duty@example.test', subject: 'contested', text: 'x' }, 'cli');
    const [stale] = await services.outbox.claimDue('worker-a', 100, 1);
    expect(stale?.id).toBe(view.id);
    await new Promise((r) => setTimeout(r, 5));
    expect(await services.outbox.requeueExpiredLeases('worker-b')).toBe(1);
    const [current] = await services.outbox.claimDue('worker-b', 100, 60_000);
    expect(current?.id).toBe(view.id);
    const attempt = { at: new Date().toISOString(), server: 'slow', outcome: 'sent', response: '250 ok' } as const;
    expect(await services.outbox.markSent(stale!, { server: 'slow', response: '250 ok', rejected: [], attempt })).toBe(false);
    expect(await services.outbox.markFailed(stale!, { error: 'x', attempt: { ...attempt, outcome: 'failed' } })).toBe(false);
    expect((await services.outbox.get(view.id))).toMatchObject({ status: 'sending', lease_owner: 'worker-b', attempts: 0 });
    expect(await services.outbox.markSent(current!, { server: 'slow', response: '250 ok', rejected: [], attempt })).toBe(true);
    expect((await services.outbox.get(view.id)).status).toBe('sent');
  });
});
