// Proves that `mailgate … | head` ends quietly: when the reader of its output is gone, the CLI exits 0 without an EPIPE trace.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { childEnv, CLI, runCli, tempDir } from '../support/cli.js';

/**
 * Runs the CLI with its standard output on a pipe whose only reader is closed before the CLI writes (what `head` does once
 * it has its lines, made certain): every write then fails with EPIPE.
 */
function runWithClosedOutput(args: string[], cwd: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`mailgate ${args.join(' ')} did not finish; stderr: ${stderr}`));
    }, 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

describe('mailgate output into a closed pipe', () => {
  it('exits 0 without a stack trace when nothing reads its output any more (help, and a list from the store)', async () => {
    const cwd = tempDir();
    expect((await runCli(['apikey', 'create', '--name', 'piped', '--scope', 'send'], { cwd })).code).toBe(0);
    for (const args of [['--help'], ['apikey', 'list'], ['apikey', 'list', '--json']]) {
      const res = await runWithClosedOutput(args, cwd);
      expect(res.stderr, args.join(' ')).toBe('');
      expect(res.code, args.join(' ')).toBe(0);
    }
  });

  it('still reports a real failure on standard error with its exit code', async () => {
    const res = await runWithClosedOutput(['apikey', 'revoke', 'nobody'], tempDir());
    expect(res.stderr).toMatch(/^mailgate: .*nobody/);
    expect(res.code).toBe(2);
  });
});
