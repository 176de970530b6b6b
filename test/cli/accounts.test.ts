// Proves `mailgate relay-account …`, `mailgate proxy-account …` and the listeners in `mailgate status` as an operator runs
// them: a generated password printed once with the five fields to type, chosen passwords from stdin, env or file (never
// an argument, never echoed), hashes only in the database, audit with field names, guards on senders and servers in
// use, and a listener that `serve` could not start making status exit 1 with its reason.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCli, spawnCli, tempDir, type RunningCli } from '../support/cli.js';
import { getFreePort } from '../testbed/ports.js';

// Each command is a fresh Node process opening the store: a few seconds apiece on a loaded 2-core machine.
vi.setConfig({ testTimeout: 120_000 });

const GENERATED = /^password: ([A-HJ-NP-Za-km-z2-9]{24})$/m;
let cwd: string;
let relayPort: number;

function query<T>(sql: string, ...params: unknown[]): T[] {
  const db = new SQLite(path.join(cwd, 'data', 'mailgate.db'), { readonly: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

beforeAll(async () => {
  cwd = tempDir();
  relayPort = await getFreePort();
  fs.writeFileSync(path.join(cwd, 'mailgate.yaml'), `relay:\n  listeners:\n    - listen: "127.0.0.1:${relayPort}"\n      tls: starttls\n`);
  for (const args of [
    ['server', 'add', 'm365-smtp', '--protocol', 'smtp', '--host', 'smtp.office365.com', '--port', '587', '--security', 'starttls', '--username', 'alerts@contoso.example', '--credential', 'm365'],
    ['server', 'add', 'm365-imap', '--protocol', 'imap', '--host', 'outlook.office365.com', '--port', '993', '--security', 'tls', '--username', 'alerts@contoso.example', '--credential', 'm365'],
    ['sender', 'add', 'alarms', '--primary', 'm365-smtp', '--from', 'Alarms <alarms@contoso.example>'],
  ]) {
    const done = await runCli(args, { cwd });
    expect(done.code, done.stderr).toBe(0);
  }
});

describe('mailgate relay-account', () => {
  it('add --generate-password prints the password once with server, port, security and user for the configured listener; only a hash is stored', async () => {
    const added = await runCli(['relay-account', 'add', 'scanner', '--sender', 'alarms', '--allow-from', 'scanner@contoso.example,@branch.contoso.example', '--generate-password'], { cwd });
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    const password = GENERATED.exec(added.stdout)![1]!;
    expect(added.stdout.split(password)).toHaveLength(2); // printed exactly once
    expect(added.stdout).toContain('added relay account scanner: sends through alarms; may also send as scanner@contoso.example, @branch.contoso.example');
    expect(added.stdout).toContain('it cannot be shown again');
    expect(added.stdout).toContain(
      [`SMTP (relay.listeners[0]):`, `  server:   127.0.0.1`, `  port:     ${relayPort}`, `  security: STARTTLS`, `  user:     scanner`, `  password: (the one printed above)`].join('\n'),
    );
    expect(added.stdout).toMatch(/note: the certificate is self-signed/);

    const rows = query<{ password_hash: string; allow_from: string }>('select password_hash, allow_from from relay_accounts where name = ?', 'scanner');
    expect(rows).toEqual([{ password_hash: expect.stringMatching(/^sha256\$[0-9a-f]{64}$/), allow_from: '["scanner@contoso.example","@branch.contoso.example"]' }]);
    expect(rows[0]!.password_hash).not.toContain(password);

    const list = await runCli(['relay-account', 'list'], { cwd });
    expect(list.stdout).toMatch(/scanner\s+alarms\s+scanner@contoso.example,@branch.contoso.example\s+generated\s+never/);
    const json = await runCli(['relay-account', 'list', '--json'], { cwd });
    expect(JSON.parse(json.stdout)).toEqual([expect.objectContaining({ name: 'scanner', sender: 'alarms', passwordKind: 'generated' })]);
    const show = await runCli(['relay-account', 'show', 'scanner', '--json'], { cwd });
    expect(JSON.parse(show.stdout).settings).toEqual([expect.objectContaining({ server: '127.0.0.1', port: relayPort, security: 'STARTTLS', user: 'scanner' })]);
    for (const out of [list.stdout, json.stdout, show.stdout]) {
      expect(out).not.toContain(password);
      expect(out).not.toContain(rows[0]!.password_hash);
    }

    const audit = query<{ actor: string; details: string }>("select actor, details from audit_log where action = 'relay-account.add' and target = 'scanner'");
    expect(audit).toHaveLength(1);
    expect(JSON.parse(audit[0]!.details)).toEqual({ fields: ['sender', 'allowFrom', 'generatePassword'] });
  });

  it('takes a chosen password from standard input, --password-env or --password-file (scrypt), never printing it', async () => {
    const secret = 'printer password on stdin';
    const stdin = await runCli(['relay-account', 'add', 'printer', '--sender', 'alarms'], { cwd, input: `${secret}\n` });
    expect(stdin.code, stdin.stderr).toBe(0);
    expect(stdin.stdout).not.toContain(secret);
    expect(stdin.stdout).toContain('password: (the password you set)');

    const fromEnv = await runCli(['relay-account', 'add', 'panel', '--sender', 'alarms', '--password-env', 'PANEL_PASSWORD'], { cwd, env: { PANEL_PASSWORD: 'panel password from env' } });
    expect(fromEnv.code, fromEnv.stderr).toBe(0);
    const file = path.join(cwd, 'erp.pw');
    fs.writeFileSync(file, 'erp password from a file\n');
    const fromFile = await runCli(['relay-account', 'add', 'erp', '--sender', 'alarms', '--password-file', file], { cwd });
    expect(fromFile.code, fromFile.stderr).toBe(0);
    const hashes = query<{ name: string; password_hash: string }>("select name, password_hash from relay_accounts where name in ('printer', 'panel', 'erp') order by name");
    expect(hashes.map((h) => h.name)).toEqual(['erp', 'panel', 'printer']);
    for (const h of hashes) expect(h.password_hash).toMatch(/^scrypt\$/);
  });

  it('refuses a missing, doubled or weak password naming the option and the fix, without echoing it, and adds nothing', async () => {
    const none = await runCli(['relay-account', 'add', 'nopw', '--sender', 'alarms'], { cwd, input: '' });
    expect(none.code).toBe(2);
    expect(none.stderr.trim()).toBe('mailgate: password: none given; use --generate-password (recommended), --password-env VAR, --password-file FILE, or pipe it on standard input');

    const both = await runCli(['relay-account', 'add', 'both', '--sender', 'alarms', '--generate-password', '--password-env', 'X'], { cwd, env: { X: 'a long enough password' } });
    expect(both.code).toBe(2);
    expect(both.stderr.trim()).toBe('mailgate: --password-env, --generate-password: give only one way to set the password');

    const weak = await runCli(['relay-account', 'add', 'weak', '--sender', 'alarms'], { cwd, input: 'hunter2\n' });
    expect(weak.code).toBe(2);
    expect(weak.stderr.trim()).toBe('mailgate: password: use at least 12 characters, or --generate-password');
    expect(weak.stderr + weak.stdout).not.toContain('hunter2');

    const noSender = await runCli(['relay-account', 'add', 'lost', '--sender', 'nobody', '--generate-password'], { cwd });
    expect(noSender.code).toBe(2);
    expect(noSender.stderr).toContain('sender: no sender named "nobody" (add one with `mailgate sender add`');
    expect(noSender.stdout).not.toMatch(GENERATED);
    expect(query("select name from relay_accounts where name in ('nopw', 'both', 'weak', 'lost')")).toEqual([]);
  });

  it('password gives a new generated password (printed once) replacing the old hash; remove forgets the account', async () => {
    const before = query<{ password_hash: string }>("select password_hash from relay_accounts where name = 'printer'")[0]!.password_hash;
    const changed = await runCli(['relay-account', 'password', 'printer', '--generate-password'], { cwd });
    expect(changed.code, changed.stderr).toBe(0);
    expect(changed.stdout).toContain('new password for relay account printer: the old one no longer works');
    const password = GENERATED.exec(changed.stdout)![1]!;
    const after = query<{ password_hash: string }>("select password_hash from relay_accounts where name = 'printer'")[0]!.password_hash;
    expect(after).not.toBe(before);
    expect(after).toMatch(/^sha256\$/);
    expect(changed.stdout.split(password)).toHaveLength(2);
    expect(JSON.parse(query<{ details: string }>("select details from audit_log where action = 'relay-account.password' and target = 'printer'")[0]!.details)).toEqual({ fields: ['generatePassword'] });

    const removed = await runCli(['relay-account', 'remove', 'printer'], { cwd });
    expect(removed.code).toBe(0);
    expect(removed.stdout).toContain('removed relay account printer');
    const again = await runCli(['relay-account', 'remove', 'printer'], { cwd });
    expect(again.code).toBe(2);
    expect(again.stderr.trim()).toBe('mailgate: no relay account named "printer"');
  });

  it('refuses to remove a sender that relay accounts use, naming them', async () => {
    const refused = await runCli(['sender', 'remove', 'alarms'], { cwd });
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim()).toBe('mailgate: sender alarms is still used by relay accounts erp, panel, scanner: give them another sender (mailgate relay-account or PATCH /api/v1/relay-accounts/:name) or remove them first');
  });
});

describe('mailgate proxy-account', () => {
  it('adds, lists, shows and removes a proxy account bound to an IMAP server; the server cannot be removed meanwhile', async () => {
    const added = await runCli(['proxy-account', 'add', 'tickets', '--server', 'm365-imap', '--generate-password'], { cwd });
    expect(added.code, added.stderr).toBe(0);
    const password = GENERATED.exec(added.stdout)![1]!;
    // No proxy.imap in the config: say how to add one instead of printing settings that do not work.
    expect(added.stdout).toContain('no IMAP listener is configured yet: add proxy.imap to mailgate.yaml and restart `mailgate serve`; then the program logs in as tickets');

    const list = await runCli(['proxy-account', 'list'], { cwd });
    expect(list.stdout).toMatch(/tickets\s+m365-imap\s+generated\s+never/);
    expect(list.stdout).not.toContain(password);

    const smtp = await runCli(['proxy-account', 'add', 'wrong', '--server', 'm365-smtp', '--generate-password'], { cwd });
    expect(smtp.code).toBe(2);
    expect(smtp.stderr.trim()).toBe('mailgate: server: m365-smtp is an SMTP server; a proxy account needs an IMAP or POP3 server');

    const refused = await runCli(['server', 'remove', 'm365-imap'], { cwd });
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim()).toBe('mailgate: server m365-imap is still used by proxy account tickets: point them to another server or remove them first');

    expect((await runCli(['proxy-account', 'remove', 'tickets'], { cwd })).code).toBe(0);
    expect((await runCli(['server', 'remove', 'm365-imap'], { cwd })).code).toBe(0);
  });
});

describe('mailgate status: listeners', () => {
  let serve: RunningCli | undefined;
  let blocker: net.Server | undefined;
  afterAll(async () => {
    if (serve && serve.child.exitCode === null) {
      serve.child.kill('SIGKILL');
      await serve.done();
    }
    await new Promise((resolve) => (blocker ? blocker.close(resolve) : resolve(undefined)));
  });

  it('says a configured listener has not started before serve ran, then names the one serve could not start (exit 1)', async () => {
    const before = await runCli(['status'], { cwd });
    expect(before.code).toBe(0);
    expect(before.stdout).toContain('listeners: 1 configured, none started yet (they start with `mailgate serve`)');

    // The IMAP proxy's port is taken by another program: that listener fails (and serve's start with it).
    const dir = tempDir();
    const imapPort = await getFreePort();
    blocker = net.createServer((s) => s.destroy());
    await new Promise<void>((resolve) => blocker!.listen(imapPort, '127.0.0.1', resolve));
    fs.writeFileSync(path.join(dir, 'mailgate.yaml'), `proxy:\n  imap:\n    listen: "127.0.0.1:${imapPort}"\n    tls: implicit\n`);
    serve = spawnCli(['serve'], { cwd: dir, env: { MAILGATE_LISTEN: `127.0.0.1:${await getFreePort()}` } });

    // serve gives up at once: exit 2, one line naming the config key and the fix — and leaves the reason for status.
    const ended = await serve.done();
    expect(ended.code).toBe(2);
    expect(ended.stderr).toMatch(/proxy\.imap\.listen: cannot listen on 127\.0\.0\.1:\d+: the address is in use/);
    await expect.poll(async () => (await runCli(['status'], { cwd: dir })).code, { timeout: 15_000, interval: 500 }).toBe(1);
    const status = await runCli(['status'], { cwd: dir });
    expect(status.stdout).toMatch(/^listeners: 1 \(1 failed\), as written by serve \(pid \d+\) at \d{4}-\d\d-\d\dT/m);
    expect(status.stdout).toContain(`  proxy.imap: failed 127.0.0.1:${imapPort} (imap-proxy, TLS implicit)`);
    expect(status.stdout).toContain(`  - listener failed (proxy.imap, 127.0.0.1:${imapPort}): `);
    expect(status.stdout).toContain('address is in use');
    const json = JSON.parse((await runCli(['status', '--json'], { cwd: dir })).stdout);
    expect(json.ok).toBe(false);
    expect(json.listeners.listeners).toEqual([expect.objectContaining({ id: 'proxy.imap', state: 'failed', tls: 'implicit' })]);
  });
});
