// Runs the built `mailgate` command (dist/cli.js) as a child process, the way an operator would.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(REPO_ROOT, 'dist/cli.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Environment for a child: the parent's PATH and friends, but none of the parent's MAILGATE_* settings. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('MAILGATE_')) env[k] = v;
  return { ...env, ...extra };
}

/**
 * The database of the installation in `cwd` when it is not the SQLite file in its ./data: a PostgreSQL URL kept in
 * the folder by a test that opened its services in process on PostgreSQL (MAILGATE_TEST_DATABASE=postgres, see
 * support/postgres.ts), so the CLI and serve run there use the same database.
 */
function databaseEnv(cwd: string): Record<string, string> {
  const file = path.join(cwd, 'postgres-url');
  return fs.existsSync(file) ? { MAILGATE_DATABASE_URL: fs.readFileSync(file, 'utf8').trim() } : {};
}

/**
 * As databaseEnv, and in the `postgres` project (MAILGATE_TEST_DATABASE=postgres) a folder the CLI meets first gets
 * a fresh PostgreSQL database of its own, kept in the folder: every command and serve run there use it.
 */
async function installationEnv(cwd: string): Promise<Record<string, string>> {
  if (process.env.MAILGATE_TEST_DATABASE !== 'postgres') return databaseEnv(cwd);
  // Loaded only here: support/postgres.ts reads the run's PostgreSQL through vitest's inject.
  const { installationPostgresUrl } = await import('./postgres.js');
  return { MAILGATE_DATABASE_URL: await installationPostgresUrl(cwd) };
}

export function tempDir(prefix = 'mailgate-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export async function runCli(args: string[], options: { cwd: string; env?: Record<string, string>; input?: string; timeoutMs?: number }): Promise<CliResult> {
  const database = await installationEnv(options.cwd);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd, env: childEnv({ ...database, ...options.env }), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`mailgate ${args.join(' ')} did not finish in ${options.timeoutMs ?? 20_000} ms; stderr: ${stderr}`));
    }, options.timeoutMs ?? 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

export interface ServeProcess {
  child: ChildProcess;
  url: string;
  output(): string;
  /** Sends `signal` and resolves with the exit code once the process is gone. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `mailgate serve` and resolves once /healthz answers 200; rejects with its output if it exits first. */
export async function startServe(options: { cwd: string; port: number; env?: Record<string, string>; args?: string[] }): Promise<ServeProcess> {
  const url = `http://127.0.0.1:${options.port}`;
  const child = spawn(process.execPath, [CLI, 'serve', ...(options.args ?? [])], {
    cwd: options.cwd,
    env: childEnv({ ...(await installationEnv(options.cwd)), MAILGATE_LISTEN: `127.0.0.1:${options.port}`, ...options.env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`mailgate serve exited with ${child.exitCode}: ${output}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`mailgate serve did not answer /healthz within 15 s: ${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    url,
    output: () => output,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}

export interface RunningCli {
  child: ChildProcess;
  /** Resolves with the first match of `pattern` in standard output (rejects if the process exits first). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code and the whole output once the process ends. */
  done(): Promise<CliResult>;
}

/**
 * Starts a long-running `mailgate` command (e.g. `credential authorize`) and lets the test talk to it while it runs.
 * It uses the folder's PostgreSQL database only if one was made there already (by runCli, startServe or services).
 */
export function spawnCli(args: string[], options: { cwd: string; env?: Record<string, string> }): RunningCli {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd, env: childEnv({ ...databaseEnv(options.cwd), ...options.env }), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const finished = new Promise<CliResult>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return {
    child,
    async waitFor(pattern, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const match = stdout.match(pattern);
        if (match) return match;
        if (child.exitCode !== null) throw new Error(`mailgate ${args.join(' ')} exited with ${child.exitCode} before printing ${pattern}: ${stdout}${stderr}`);
        if (Date.now() > deadline) throw new Error(`mailgate ${args.join(' ')} did not print ${pattern} within ${timeoutMs} ms: ${stdout}${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    done: () => finished,
  };
}
