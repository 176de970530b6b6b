// Proves an admin's retry and cancel of outbox messages against the test bed: a 5xx-parked message retried after the fix, a fresh round after giving up, cancel while waiting, refusals, and the race with a worker's lease.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getFreePort } from '../testbed/ports.js';
import { useTestbed } from '../testbed/useTestbed.js';
import { eventually } from '../support/mailbox.js';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';
import type { AttemptRecord } from '../../src/outbox/repository.js';

const bed = useTestbed();
const bob = () => bed.auth.users.bob;
const outcomes = (view: { history: AttemptRecord[] }) => view.history.map((h) => `${h.server}:${h.outcome}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('with a running worker', () => {
  let app: MailgateApp;
  let sendKey: string;

  beforeAll(async () => {
    // One server per route attempt and a long backoff: a one-server route waits about a minute after its first
    // failure (time to cancel it), a two-server route gives up after two quick attempts.
    app = await startMailgateApp({
      outboxWorker: true,
      configure: (config) => ({ ...config, outbox: { ...config.outbox, attemptsPerServer: 1, maxAttempts: 2, retryBaseMs: 60_000, retryMaxMs: 120_000 } }),
    });
    const carol = bed.mail.passwordUser;
    const password = { type: 'password', password: carol.password };
    const submission = { protocol: 'smtp', host: '127.0.0.1', security: 'starttls', tlsCa: bed.mail.caPem, username: carol.email, auth: password };
    expect((await app.api('POST', '/api/v1/servers', { ...submission, name: 'submission', port: bed.mail.ports.submission })).status).toBe(201);
    expect((await app.api('POST', '/api/v1/servers', { ...submission, name: 'down-a', port: await getFreePort() })).status).toBe(201);
    expect((await app.api('POST', '/api/v1/servers', { ...submission, name: 'down-b', port: await getFreePort() })).status).toBe(201);
    expect((await app.api('POST', '/api/v1/senders', { name: 'carol', primary: 'submission', from: carol.email })).status).toBe(201);
    expect((await app.api('POST', '/api/v1/senders', { name: 'stuck', primary: 'down-a', from: carol.email })).status).toBe(201);
    expect((await app.api('POST', '/api/v1/senders', { name: 'dead-route', primary: 'down-a', backups: ['down-b'], from: carol.email })).status).toBe(201);
    sendKey = (await app.services.apiKeys.create('alarm-system', ['send'])).key.reveal();
  });
  afterAll(async () => app?.close());

  const submit = async (body: Record<string, unknown>): Promise<string> => {
    const res = await app.api('POST', '/api/v1/messages', body, sendKey);
    expect(res.status).toBe(202);
    return res.json.id as string;
  };
  const show = (id: string) => app.api('GET', `/api/v1/messages/${id}`).then((r) => r.json);
  const settled = (id: string) => eventually(() => show(id), (m) => m.status === 'sent' || m.status === 'failed', 20_000, `message ${id} to settle`);
  const retry = (id: string) => app.api('POST', `/api/v1/messages/${id}/retry`);
  const cancel = (id: string) => app.api('POST', `/api/v1/messages/${id}/cancel`);

  it('retries a message parked by a 5xx once the cause is fixed, and it is delivered', async () => {
    const subject = `parked ${Date.now()}`;
    bed.mail.sink.rejectRecipients.add(bob().email.toLowerCase());
    let id: string;
    let parked: any;
    try {
      id = await submit({ sender: 'carol', to: bob().email, subject, text: 'x' });
      parked = await settled(id);
    } finally {
      bed.mail.sink.rejectRecipients.delete(bob().email.toLowerCase());
    }
    expect(parked).toMatchObject({ status: 'failed', attempts: 1 });
    expect(parked.lastError).toMatch(/55\d/);
    const failed = (await app.api('GET', '/api/v1/messages?status=failed')).json.messages;
    expect(failed.map((m: { id: string }) => m.id)).toContain(id);
    expect(new Set(failed.map((m: { status: string }) => m.status))).toEqual(new Set(['failed']));

    const retried = await retry(id);
    expect(retried.status).toBe(200);
    expect(retried.json).toMatchObject({ id, status: 'queued', attempts: 0, lastError: null, response: null, rejected: [] });
    expect(retried.json.history.at(-1)).toMatchObject({ server: '-', outcome: 'retried', error: parked.lastError });

    const done = await settled(id);
    expect(done).toMatchObject({ status: 'sent', attempts: 1, server: 'submission', lastError: null });
    expect(outcomes(done)).toEqual(['submission:failed', '-:retried', 'submission:sent']);
    expect(bed.mail.sink.received.some((m) => m.raw.toString().includes(`Subject: ${subject}`))).toBe(true);
  });

  it('gives a message that gave up a fresh round: attempts from zero, the route from the primary', async () => {
    const id = await submit({ sender: 'dead-route', to: bob().email, subject: `dead ${Date.now()}`, text: 'x' });
    const gaveUp = await settled(id);
    expect(gaveUp).toMatchObject({ status: 'failed', attempts: 2 });
    expect(gaveUp.lastError).toMatch(/^gave up after 2 attempts/);
    expect(outcomes(gaveUp)).toEqual(['down-a:next_server', 'down-b:failed']);

    expect((await retry(id)).status).toBe(200);
    const again = await eventually(() => show(id), (m) => m.status === 'failed' && m.history.length > 3, 20_000, `message ${id} to give up again`);
    expect(again.attempts).toBe(2);
    expect(again.lastError).toMatch(/^gave up after 2 attempts/);
    expect(outcomes(again)).toEqual(['down-a:next_server', 'down-b:failed', '-:retried', 'down-a:next_server', 'down-b:failed']);

    const refused = await cancel(id);
    expect(refused.status).toBe(409);
    expect(refused.json.error.code).toBe('STATE_CONFLICT');
    expect(refused.json.error.message).toContain('has failed already');
  });

  it('cancels a message waiting for its retry, the worker leaves it alone, and a retry undoes the cancel', async () => {
    const id = await submit({ sender: 'stuck', to: bob().email, subject: `stuck ${Date.now()}`, text: 'x' });
    const waiting = await eventually(() => show(id), (m) => m.status === 'queued' && m.history.length === 1, 20_000, `message ${id} to wait for its retry`);
    expect(outcomes(waiting)).toEqual(['down-a:next_server']);
    expect(Date.parse(waiting.nextAttemptAt)).toBeGreaterThan(Date.now() + 10_000);

    const notYet = await retry(id);
    expect(notYet.status).toBe(409);
    expect(notYet.json.error.message).toContain(`message ${id} is queued already`);

    const cancelled = await cancel(id);
    expect(cancelled.status).toBe(200);
    expect(cancelled.json).toMatchObject({ id, status: 'cancelled', lastError: 'cancelled by an admin', nextAttemptAt: null, attempts: 1 });
    expect(outcomes(cancelled.json)).toEqual(['down-a:next_server', '-:cancelled']);
    // Due now, yet not taken: the worker claims queued messages only (it polls every 500 ms).
    await app.services.store.db.updateTable('outbox').set({ next_attempt_at: new Date(Date.now() - 1000).toISOString() }).where('id', '=', id).execute();
    await sleep(1500);
    expect(outcomes(await show(id))).toEqual(['down-a:next_server', '-:cancelled']);
    expect((await app.api('GET', '/api/v1/messages?status=cancelled')).json.messages.map((m: { id: string }) => m.id)).toContain(id);

    const undone = await retry(id);
    expect(undone.json).toMatchObject({ status: 'queued', attempts: 0 });
    const tried = await eventually(() => show(id), (m) => m.history.length === 4, 20_000, `message ${id} to be attempted again`);
    expect(outcomes(tried)).toEqual(['down-a:next_server', '-:cancelled', '-:retried', 'down-a:next_server']);
    expect(tried.history[2].error).toBe('cancelled by an admin');
    expect((await cancel(id)).json.status).toBe('cancelled');
    const twice = await cancel(id);
    expect(twice.status).toBe(409);
    expect(twice.json.error.message).toContain('is cancelled already');
  });

  it('refuses to retry or cancel a sent message (409 naming its state) and leaves it as it was', async () => {
    const id = await submit({ sender: 'carol', to: bob().email, subject: `sent ${Date.now()}`, text: 'x' });
    expect((await settled(id)).status).toBe('sent');
    const again = await retry(id);
    expect(again.status).toBe(409);
    expect(again.json.error).toMatchObject({ code: 'STATE_CONFLICT', message: expect.stringContaining(`message ${id} was sent at `) });
    expect(again.json.error.message).toContain('submit it anew');
    const cancelled = await cancel(id);
    expect(cancelled.status).toBe(409);
    expect(cancelled.json.error.message).toContain('nothing to cancel');
    expect(await show(id)).toMatchObject({ status: 'sent', attempts: 1, history: [expect.objectContaining({ outcome: 'sent' })] });
  });
});

describe('without a worker (messages stay queued until something claims them)', () => {
  let app: MailgateApp;
  let sendKey: string;
  const accept = async () => (await app.services.messages.accept({ sender: 'plain', to: bob().email, subject: `queued ${Date.now()}`, text: 'x' }, 'cli')).view.id;
  /** Leases the message as a worker would (another instance's, say). */
  const lease = async (id: string) => {
    const claimed = await app.services.outbox.claimDue('test-worker', 100, 60_000);
    const row = claimed.find((r) => r.id === id);
    expect(row, `lease of ${id}`).toBeDefined();
    return row!;
  };
  const transientFailure = { at: new Date().toISOString(), server: 'relay', outcome: 'retry', error: 'connect ECONNREFUSED' } as const;

  beforeAll(async () => {
    app = await startMailgateApp({ outboxWorker: false });
    expect((await app.api('POST', '/api/v1/servers', { name: 'relay', protocol: 'smtp', host: '127.0.0.1', port: await getFreePort(), security: 'starttls', username: 'x@example.test', auth: { type: 'password', password: 'x' } })).status).toBe(201);
    expect((await app.api('POST', '/api/v1/senders', { name: 'plain', primary: 'relay', from: 'alarms@example.test' })).status).toBe(201);
    sendKey = (await app.services.apiKeys.create('alarm-system', ['send'])).key.reveal();
  });
  afterAll(async () => app?.close());

  it('cancels a queued message, and the audit log names the admin key', async () => {
    const id = await accept();
    const res = await app.api('POST', `/api/v1/messages/${id}/cancel`);
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ id, status: 'cancelled', attempts: 0, lastError: 'cancelled by an admin', history: [{ server: '-', outcome: 'cancelled' }] });
    expect(await app.services.outbox.claimDue('test-worker', 100, 60_000)).toEqual([]);
    const audit = (await app.api('GET', `/api/v1/audit?target=${id}`)).json.entries;
    expect(audit).toMatchObject([{ actor: 'apikey:test-admin', action: 'POST /api/v1/messages/:id/cancel', target: id }]);
  });

  it('refuses to cancel (or retry) a message a worker is sending, and cancels it once the attempt is over', async () => {
    const id = await accept();
    const leased = await lease(id);
    const refused = await app.api('POST', `/api/v1/messages/${id}/cancel`);
    expect(refused.status).toBe(409);
    expect(refused.json.error.code).toBe('STATE_CONFLICT');
    expect(refused.json.error.message).toMatch(/is being sent right now .*try again in a moment/);
    expect((await app.api('POST', `/api/v1/messages/${id}/retry`)).json.error.message).toContain('wait for the outcome');
    expect((await app.services.outbox.get(id)).status).toBe('sending');

    // The attempt fails for a passing reason: the message waits for its retry, and now it can be cancelled.
    await app.services.outbox.reschedule(leased, { at: new Date(Date.now() + 60_000), serverIndex: 0, serverAttempts: 1, error: 'connect ECONNREFUSED', attempt: transientFailure });
    const cancelled = await app.api('POST', `/api/v1/messages/${id}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(outcomes(cancelled.json)).toEqual(['relay:retry', '-:cancelled']);
  });

  it('writes nothing when a worker changed the message between the read and the write (no lost attempt, no double send)', async () => {
    const note: AttemptRecord = { at: new Date().toISOString(), server: '-', outcome: 'cancelled', error: 'cancelled by an admin' };
    const id = await accept();
    const stale = await app.services.outbox.get(id);
    const leased = await lease(id);
    expect(await app.services.outbox.cancel(stale, note)).toBeUndefined();
    expect((await app.services.outbox.get(id)).status).toBe('sending');
    // Queued again after an attempt: the status matches what was read, the row does not.
    await app.services.outbox.reschedule(leased, { at: new Date(Date.now() + 60_000), serverIndex: 0, serverAttempts: 1, error: 'connect ECONNREFUSED', attempt: transientFailure });
    expect(await app.services.outbox.cancel(stale, note)).toBeUndefined();
    const row = await app.services.outbox.get(id);
    expect(row).toMatchObject({ status: 'queued', attempts: 1 });
    expect(await app.services.outbox.requeue(row, note)).toBeUndefined(); // queued is not retryable either

    const view = await app.services.messages.cancel(id);
    expect(outcomes(view)).toEqual(['relay:retry', '-:cancelled']);
  });

  it('answers 404 for an unknown id, 403 to a key without the admin scope, and 400 for an unknown status filter', async () => {
    for (const action of ['retry', 'cancel']) {
      const missing = await app.api('POST', `/api/v1/messages/no-such-id/${action}`);
      expect(missing.status, action).toBe(404);
      expect(missing.json.error.code).toBe('NOT_FOUND');
    }
    const id = await accept();
    expect((await app.api('POST', `/api/v1/messages/${id}/cancel`, undefined, sendKey)).status).toBe(403);
    expect((await app.api('POST', `/api/v1/messages/${id}/retry`, undefined, sendKey)).status).toBe(403);
    expect((await app.services.outbox.get(id)).status).toBe('queued');

    const bad = await app.api('GET', '/api/v1/messages?status=stuck');
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatchObject({ code: 'INPUT_INVALID', message: expect.stringContaining('status: expected one of queued, sending, sent, failed, cancelled') });
    const queued = (await app.api('GET', '/api/v1/messages?status=queued')).json.messages;
    expect(queued.map((m: { id: string }) => m.id)).toEqual([id]);
  });
});
