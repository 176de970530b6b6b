// Proves how the first admin comes to be and how operators manage admins from the shell: MAILGATE_ADMIN_PASSWORD, the setup link in the log, `mailgate admin …`.
import { describe, expect, it } from 'vitest';
import { getFreePort } from '../testbed/ports.js';
import { runCli, startServe, tempDir } from '../support/cli.js';
import { eventually } from '../support/mailbox.js';

/** Signs in through the real form over HTTP; returns the status of the POST (303 = signed in). */
async function signIn(url: string, username: string, password: string): Promise<number> {
  const form = await fetch(`${url}/login`);
  const cookie = form.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const csrf = /name="_csrf" value="([^"]+)"/.exec(await form.text())?.[1] ?? '';
  const res = await fetch(`${url}/login`, { method: 'POST', redirect: 'manual', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ _csrf: csrf, username, password }) });
  return res.status;
}

describe('the first admin', () => {
  it('is created from MAILGATE_ADMIN_PASSWORD as "admin", and the password never reaches the log', async () => {
    const cwd = tempDir();
    const serve = await startServe({ cwd, port: await getFreePort(), env: { MAILGATE_ADMIN_PASSWORD: 'first admin passphrase' } });
    try {
      expect(await signIn(serve.url, 'admin', 'first admin passphrase')).toBe(303);
      expect(await signIn(serve.url, 'admin', 'not the passphrase')).toBe(401);
      expect(serve.output()).toContain('created the first admin from MAILGATE_ADMIN_PASSWORD');
      expect(serve.output()).not.toContain('first admin passphrase');
    } finally {
      await serve.stop();
    }
  });

  it('without a password, comes from a one-time setup link printed to the log', async () => {
    const cwd = tempDir();
    const serve = await startServe({ cwd, port: await getFreePort() });
    try {
      // serve answers as soon as it listens; the setup line follows a moment later (a loaded CI machine read the log before it).
      const output = await eventually(async () => serve.output(), (text) => text.includes('"setupUrl"'), 5000, 'the setup link in the log');
      const link = /"setupUrl":"([^"]+)"/.exec(output)?.[1];
      expect(link).toMatch(new RegExp(`^${serve.url}/setup\\?token=[\\w-]{32}$`));
      const page = await fetch(link!);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('Create the first admin');
      expect((await fetch(`${serve.url}/setup?token=forged`)).status).toBe(403);
    } finally {
      await serve.stop();
    }
  });

  it('refuses a too-short MAILGATE_ADMIN_PASSWORD at start with exit 2, naming the variable but not the value', async () => {
    const cwd = tempDir();
    const res = await runCli(['serve'], { cwd, env: { MAILGATE_ADMIN_PASSWORD: 'tiny-pw', MAILGATE_LISTEN: `127.0.0.1:${await getFreePort()}` } });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('MAILGATE_ADMIN_PASSWORD: too short (7 characters): use at least 12');
    expect(res.stderr + res.stdout).not.toContain('tiny-pw');
  });
});

describe('mailgate admin', () => {
  it('adds an admin from standard input, lists it without any hash, changes the password from a variable, and prints a setup link only while no admin exists', async () => {
    const cwd = tempDir();
    const link = await runCli(['admin', 'setup-link'], { cwd });
    expect(link.code).toBe(0);
    expect(link.stdout).toMatch(/^http:\/\/127\.0\.0\.1:8025\/setup\?token=[\w-]{32}\n/);

    const added = await runCli(['admin', 'add', 'ops'], { cwd, input: 'a sturdy passphrase\n' });
    expect(added.stderr).toBe('');
    expect(added.stdout).toContain('created admin ops');

    const listed = await runCli(['admin', 'list', '--json'], { cwd });
    expect(JSON.parse(listed.stdout)).toEqual([{ username: 'ops', createdAt: expect.any(String), lastLoginAt: null }]);
    expect(listed.stdout).not.toContain('scrypt');

    const weak = await runCli(['admin', 'password', 'ops'], { cwd, input: 'short\n' });
    expect(weak.code).toBe(2);
    expect(weak.stderr).toContain('password: use at least 12 characters');

    const changed = await runCli(['admin', 'password', 'ops', '--password-env', 'NEW_PW'], { cwd, env: { NEW_PW: 'another sturdy passphrase' } });
    expect(changed.code).toBe(0);
    expect(changed.stdout).toContain('changed the password of ops');

    const noMore = await runCli(['admin', 'setup-link'], { cwd });
    expect(noMore.code).not.toBe(0);
    expect(noMore.stderr).toContain('an admin exists already');

    const unknown = await runCli(['admin', 'password', 'nobody', '--password-env', 'NEW_PW'], { cwd, env: { NEW_PW: 'another sturdy passphrase' } });
    expect(unknown.stderr).toContain('no admin named nobody');
  }, 120_000);
});
