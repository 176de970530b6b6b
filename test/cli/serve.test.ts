// Proves the README's promise end to end: `mailgate init` and `mailgate serve` on the embedded default, and one clear line with exit code 2 for what an operator must fix.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, childEnv, runCli, startServe, tempDir } from '../support/cli.js';
import { getFreePort } from '../testbed/ports.js';

describe('mailgate serve', () => {
  it('serves /healthz and /readyz on its embedded default, with SQLite and the key file in ./data, and stops cleanly on SIGTERM', async () => {
    const cwd = tempDir();
    const serve = await startServe({ cwd, port: await getFreePort() });
    const health = await fetch(`${serve.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${serve.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(fs.existsSync(path.join(cwd, 'data', 'mailgate.db'))).toBe(true);
    expect(fs.statSync(path.join(cwd, 'data', 'master.key')).mode & 0o777).toBe(0o600);
    const unknown = await fetch(`${serve.url}/api/v1/nothing-here`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { code: 'NOT_FOUND' } });

    expect(await serve.stop('SIGTERM')).toBe(0);
    // An orderly close checkpoints SQLite's write-ahead log and removes it.
    expect(fs.existsSync(path.join(cwd, 'data', 'mailgate.db-wal'))).toBe(false);
    expect(serve.output()).toContain('"msg":"stopped"');
  });

  it('does not wait for idle sockets at shutdown (a browser\'s unused preconnections, keep-alive connections)', async () => {
    const cwd = tempDir();
    const serve = await startServe({ cwd, port: await getFreePort() });
    // A socket that never sends a request, as Chromium opens ahead of time, and a keep-alive one after a request.
    const idle = net.connect({ host: '127.0.0.1', port: Number(new URL(serve.url).port) });
    await new Promise((resolve) => idle.once('connect', resolve));
    const keepAlive = await fetch(`${serve.url}/healthz`, { headers: { connection: 'keep-alive' } });
    expect(keepAlive.status).toBe(200);
    const closedByServer = new Promise((resolve) => idle.once('close', resolve));
    expect(await serve.stop('SIGTERM')).toBe(0);
    await closedByServer;
    // Had it waited, the shutdown timeout would have cut them with this warning.
    expect(serve.output()).not.toContain('did not finish in time');
    expect(serve.output()).toContain('"msg":"stopped"');
  });

  it('stops cleanly on SIGINT too, and starts again on the same data', async () => {
    const cwd = tempDir();
    const port = await getFreePort();
    const first = await startServe({ cwd, port });
    expect(await first.stop('SIGINT')).toBe(0);
    const second = await startServe({ cwd, port });
    expect((await fetch(`${second.url}/readyz`)).status).toBe(200);
    expect(await second.stop()).toBe(0);
  });

  it('prints one clear line and exits 2 for a malformed config', async () => {
    const cwd = tempDir();
    fs.writeFileSync(path.join(cwd, 'mailgate.yaml'), 'servers:\n  primary:\n    protocol: smtp\n    host: smtp.office365.com\n    port: "587x"\n    security: starttls\n');
    const result = await runCli(['serve'], { cwd, env: { MAILGATE_LISTEN: `127.0.0.1:${await getFreePort()}` } });
    expect(result.code).toBe(2);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^mailgate: invalid configuration .*servers\.primary\.port: expected 1-65535, got "587x"$/);
    expect(fs.existsSync(path.join(cwd, 'data'))).toBe(false);
  });

  it('prints one clear line and exits 2 for a wrong master key, without echoing either key', async () => {
    const cwd = tempDir();
    const port = await getFreePort();
    const rightKey = 'a'.repeat(64);
    const wrongKey = 'b'.repeat(64);
    const first = await startServe({ cwd, port, env: { MAILGATE_MASTER_KEY: rightKey } });
    expect(await first.stop()).toBe(0);
    const result = await runCli(['serve'], { cwd, env: { MAILGATE_LISTEN: `127.0.0.1:${port}`, MAILGATE_MASTER_KEY: wrongKey } });
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/^mailgate: wrong master key: MAILGATE_MASTER_KEY holds key k[0-9a-f]+, but this store was set up with key k[0-9a-f]+/);
    expect(result.stderr).not.toContain(rightKey);
    expect(result.stderr).not.toContain(wrongKey);
    expect(result.stdout).toBe('');
  });

  it('prints one clear line and exits 2 when the listen address is taken', async () => {
    const cwd = tempDir();
    const port = await getFreePort();
    const first = await startServe({ cwd, port });
    const second = await runCli(['serve'], { cwd: tempDir(), env: { MAILGATE_LISTEN: `127.0.0.1:${port}` } });
    expect(second.code).toBe(2);
    expect(second.stderr).toContain(`cannot listen on 127.0.0.1:${port}: the address is in use`);
    await first.stop();
  });
});

describe('mailgate init', () => {
  it('writes a starter config that serve accepts and a 0600 key file, and changes nothing when run again', async () => {
    const cwd = tempDir();
    const first = await runCli(['init'], { cwd });
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('created the master key file');
    const key = fs.readFileSync(path.join(cwd, 'data', 'master.key'), 'utf8');
    expect(fs.statSync(path.join(cwd, 'data', 'master.key')).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(path.join(cwd, 'mailgate.yaml'), 'utf8')).toContain('listen: 127.0.0.1:8025');

    const second = await runCli(['init'], { cwd });
    expect(second.code).toBe(0);
    expect(second.stdout).toContain('exists already');
    expect(fs.readFileSync(path.join(cwd, 'data', 'master.key'), 'utf8')).toBe(key);

    const port = await getFreePort();
    const serve = await startServe({ cwd, port });
    expect((await fetch(`${serve.url}/readyz`)).status).toBe(200);
    expect(await serve.stop()).toBe(0);
  });
});

describe('mailgate serve at a terminal', () => {
  it('prints one readable line per event at a terminal (JSON elsewhere): where the UI is, and the setup link', async () => {
    const cwd = tempDir();
    const port = await getFreePort();
    // `script` gives serve a real terminal (a pty), as `npm start` in a shell has.
    const child = spawn('script', ['-qfec', `${process.execPath} ${CLI} serve`, '/dev/null'], { cwd, env: childEnv({ MAILGATE_LISTEN: `127.0.0.1:${port}` }), stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await expect.poll(() => out, { timeout: 20_000, interval: 200 }).toMatch(/mailgate is serving/);
      expect(out).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d INFO  mailgate is serving  url=http://127\\.0\\.0\\.1:${port} `, 'm'));
      expect(out).toMatch(/^\d\d:\d\d:\d\d WARN  no admin account yet: open setupUrl in a browser to create one \(single use\)  setupUrl=http:\/\/127\.0\.0\.1:\d+\/setup\?token=\S+ /m);
      expect(out).not.toContain('"msg":');
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  });
});
