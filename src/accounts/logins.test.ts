// Proves one login at the relay or a proxy: a right chosen password costs scrypt once and is then remembered, forgotten
// when told (a password change), unknown account and wrong password get the same answer, repeated failures lock, and
// the audit names account, client and outcome but never the password.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestServices, type TestServices } from '../../test/support/services.js';
import { hashAccountPassword } from './accountPasswords.js';
import { PasswordLogins, type StoredAccount } from './logins.js';

let services: TestServices;
beforeAll(async () => {
  services = await openTestServices();
});
afterAll(async () => services?.close());

const context = (client: string) => ({ client, protocol: 'imap' });

async function timed<T>(run: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const start = process.hrtime.bigint();
  const result = await run();
  return { result, ms: Number(process.hrtime.bigint() - start) / 1e6 };
}

describe('PasswordLogins', () => {
  it('checks a chosen password with scrypt once, then remembers it (a fast answer), and checks again after forget()', async () => {
    const password = 'correct horse battery staple';
    const account: StoredAccount = { name: 'erp', password_hash: await hashAccountPassword(password, false) };
    const logins = new PasswordLogins('proxy', async (name) => (name === 'erp' ? account : undefined), async () => undefined, services.audit, services.logger);

    const first = await timed(() => logins.login('erp', password, context('127.0.0.1')));
    expect(first.result.ok).toBe(true);
    const second = await timed(() => logins.login('erp', password, context('127.0.0.1')));
    expect(second.result.ok).toBe(true);
    // scrypt (N = 2^15) takes tens of milliseconds; the remembered check a SHA-256.
    expect(second.ms).toBeLessThan(first.ms / 4);
    // Remembering is per password: a wrong one is still checked and refused.
    expect((await logins.login('erp', 'correct horse battery stapler', context('127.0.0.2'))).ok).toBe(false);

    logins.forget();
    const third = await timed(() => logins.login('erp', password, context('127.0.0.1')));
    expect(third.result.ok).toBe(true);
    expect(third.ms).toBeGreaterThan(second.ms * 4);
  });

  it('refuses the old password at once after a change, even though it was remembered', async () => {
    const sender = await services.servers.add({ name: 'smtp-out', protocol: 'smtp', host: 'smtp.example.com', port: 587, security: 'starttls', username: 'a@example.com', auth: { type: 'oauth2', credential: 'c' } });
    expect(sender.name).toBe('smtp-out');
    await services.senders.add({ name: 'out', primary: 'smtp-out', from: 'a@example.com' });
    await services.relayAccounts.add({ name: 'panel', sender: 'out', password: 'the first pass phrase' });
    expect((await services.relayAccounts.login('panel', 'the first pass phrase', context('127.0.0.1'))).ok).toBe(true);
    expect((await services.relayAccounts.login('panel', 'the first pass phrase', context('127.0.0.1'))).ok).toBe(true);

    await services.relayAccounts.setPassword('panel', { kind: 'chosen', password: 'the second pass phrase' });
    expect(await services.relayAccounts.login('panel', 'the first pass phrase', context('127.0.0.1'))).toMatchObject({ ok: false, reason: 'invalid' });
    expect((await services.relayAccounts.login('panel', 'the second pass phrase', context('127.0.0.1'))).ok).toBe(true);
  });

  it('answers an unknown account and a wrong password alike, locks after repeated failures, and audits without the password', async () => {
    const account: StoredAccount = { name: 'scanner', password_hash: await hashAccountPassword('right password here', true) };
    let touched = 0;
    const logins = new PasswordLogins('relay', async (name) => (name === 'scanner' ? account : undefined), async () => void (touched += 1), services.audit, services.logger, { maxFailures: 3 });

    const unknown = await logins.login('nobody', 'guess-number-one', { client: '192.0.2.10', protocol: 'smtp' });
    const wrong = await logins.login('scanner', 'guess-number-two', { client: '192.0.2.11', protocol: 'smtp' });
    expect(unknown).toEqual({ ok: false, reason: 'invalid', delayMs: 250 });
    expect(wrong).toEqual({ ok: false, reason: 'invalid', delayMs: 250 });

    await logins.login('scanner', 'guess-number-three', { client: '192.0.2.11', protocol: 'smtp' });
    await logins.login('scanner', 'guess-number-four', { client: '192.0.2.11', protocol: 'smtp' });
    const locked = await logins.login('scanner', 'right password here', { client: '192.0.2.11', protocol: 'smtp' });
    expect(locked).toMatchObject({ ok: false, reason: 'locked' });
    expect((locked as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(0);
    // Another address with the right password is not locked out.
    expect((await logins.login('scanner', 'right password here', { client: '192.0.2.12', protocol: 'smtp' })).ok).toBe(true);
    expect(touched).toBe(1);

    await expect
      .poll(async () => (await services.audit.list(100, { target: 'scanner' })).map((e) => e.action))
      .toEqual(expect.arrayContaining(['relay-account.login.failed', 'relay-account.login.locked', 'relay-account.login']));
    const entries = await services.audit.list(100, {});
    const text = JSON.stringify(entries);
    for (const guess of ['guess-number-one', 'guess-number-two', 'right password here']) expect(text).not.toContain(guess);
    // The unknown name is not written as a target: it may be a password typed into the user field.
    expect(text).not.toContain('nobody');
    expect(entries).toEqual(expect.arrayContaining([expect.objectContaining({ actor: 'smtp:192.0.2.11', action: 'relay-account.login.failed', target: 'scanner', details: { protocol: 'smtp', client: '192.0.2.11', reason: 'wrong password' } })]));
  });
});
