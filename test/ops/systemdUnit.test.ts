// Proves contrib/mailgate.service: systemd-analyze accepts it, and its commands, run as docs/install-debian.md sets things up, start Mailgate, wait for readiness and stop it cleanly.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { childEnv, REPO_ROOT, runCli, tempDir } from '../support/cli.js';
import { getFreePort } from '../testbed/ports.js';

const run = promisify(execFile);
const UNIT = fs.readFileSync(path.join(REPO_ROOT, 'contrib/mailgate.service'), 'utf8');
const INSTALL_DOC = fs.readFileSync(path.join(REPO_ROOT, 'docs/install-debian.md'), 'utf8');

/** The unit with its fixed paths moved into a scratch root: the code is this checkout, node is this node. */
function localUnit(root: string): string {
  return UNIT.replaceAll('/opt/mailgate', REPO_ROOT)
    .replaceAll('/etc/mailgate', path.join(root, 'etc'))
    .replaceAll('/var/lib/mailgate', path.join(root, 'var'))
    .replaceAll('/usr/bin/node', process.execPath);
}

/** `Key=value` lines of the [Service] section, in order (comments skipped). */
function serviceSettings(unit: string): Array<[string, string]> {
  const section = unit.split(/^\[Service\]$/m)[1]!.split(/^\[/m)[0]!;
  return section
    .split('\n')
    .filter((line) => /^[A-Za-z]+=/.test(line))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as [string, string]);
}

function setting(unit: string, key: string): string[] {
  return serviceSettings(unit).filter(([k]) => k === key).map(([, v]) => v);
}

describe('contrib/mailgate.service', () => {
  it('passes systemd-analyze verify without a warning', async () => {
    const root = tempDir();
    const file = path.join(root, 'mailgate.service');
    fs.writeFileSync(file, localUnit(root));
    const { stdout, stderr } = await run('systemd-analyze', ['verify', file]);
    expect(`${stdout}${stderr}`.trim()).toBe('');

    // and systemd-analyze does report what it finds: a misspelt key is a warning, a missing program an error
    fs.writeFileSync(file, localUnit(root).replace('NoNewPrivileges=yes', 'NoNewPrivilege=yes'));
    expect((await run('systemd-analyze', ['verify', file])).stderr).toContain("Unknown key 'NoNewPrivilege'");
    fs.writeFileSync(file, localUnit(root).replaceAll(process.execPath, '/nonexistent/node'));
    await expect(run('systemd-analyze', ['verify', file])).rejects.toMatchObject({ stderr: expect.stringContaining('/nonexistent/node') });
  });

  it('runs as its own user in a locked-down sandbox whose only writable place is its state directory', () => {
    expect(setting(UNIT, 'User')).toEqual(['mailgate']);
    expect(setting(UNIT, 'StateDirectory')).toEqual(['mailgate']);
    expect(setting(UNIT, 'Environment')).toContain('MAILGATE_DATA_DIR=/var/lib/mailgate');
    for (const [key, value] of [['ProtectSystem', 'strict'], ['NoNewPrivileges', 'yes'], ['PrivateTmp', 'yes'], ['ProtectHome', 'yes'], ['Restart', 'on-failure'], ['UMask', '0077']]) {
      expect(setting(UNIT, key!), key).toEqual([value]);
    }
    expect(setting(UNIT, 'CapabilityBoundingSet')).toEqual(['']);
    expect(setting(UNIT, 'MemoryDenyWriteExecute')).toEqual([]); // V8's JIT needs writable code pages
    // TimeoutStopSec leaves the default shutdownTimeoutSeconds (15) room to finish in-flight work
    expect(Number(setting(UNIT, 'TimeoutStopSec')[0])).toBeGreaterThan(15);
  });

  it('starts Mailgate set up as the install guide says, returns from ExecStartPost once /readyz answers, and stops on SIGTERM with exit 0', async () => {
    const root = tempDir();
    fs.mkdirSync(path.join(root, 'etc'));
    fs.mkdirSync(path.join(root, 'var'), { mode: 0o700 });
    const unit = localUnit(root);

    // The guide's init line, run as written (with the scratch paths)
    const initLine = INSTALL_DOC.split('\n').find((line) => line.includes(' init --config '))!;
    expect(initLine).toBe('MAILGATE_DATA_DIR=/var/lib/mailgate node /opt/mailgate/dist/cli.js init --config /etc/mailgate/mailgate.yaml');
    const init = await runCli(['init', '--config', path.join(root, 'etc/mailgate.yaml')], { cwd: root, env: { MAILGATE_DATA_DIR: path.join(root, 'var') } });
    expect(init.code, init.stderr).toBe(0);
    expect(fs.existsSync(path.join(root, 'var/master.key'))).toBe(true);

    const port = await getFreePort();
    const env: Record<string, string> = { MAILGATE_LISTEN: `127.0.0.1:${port}` };
    for (const assignment of setting(unit, 'Environment')) env[assignment.split('=')[0]!] = assignment.slice(assignment.indexOf('=') + 1);
    const [startCommand, ...startArgs] = setting(unit, 'ExecStart')[0]!.split(' ');
    const [postCommand, ...postArgs] = setting(unit, 'ExecStartPost')[0]!.split(' ');
    const cwd = setting(unit, 'WorkingDirectory')[0]!;

    const serve = spawn(startCommand!, startArgs, { cwd, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    serve.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    serve.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => serve.once('exit', (code) => resolve(code)));
    try {
      const post = await run(postCommand!, postArgs, { cwd, env: childEnv(env), timeout: 60_000 });
      expect(post.stdout).toMatch(new RegExp(`^ready: http://127\\.0\\.0\\.1:${port}/readyz answered .*"status":"ready"`));
      expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
      // Environment=MAILGATE_LOG_FORMAT=json: the journal gets one JSON object per line
      expect(output.split('\n').filter(Boolean).every((line) => line.startsWith('{'))).toBe(true);
    } finally {
      serve.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(output).toContain('"msg":"stopped"');
  });

  it('has `mailgate ready` give up with exit 4 and the reason when nothing answers', async () => {
    const cwd = tempDir();
    const result = await runCli(['ready', '--timeout', '1'], { cwd, env: { MAILGATE_LISTEN: `127.0.0.1:${await getFreePort()}`, MAILGATE_DATA_DIR: path.join(cwd, 'data') } });
    expect(result.code).toBe(4);
    expect(result.stderr).toMatch(/readyz was not ready within 1 s; last: connection refused \(is `mailgate serve` running with this config\?\)/);
  });
});
