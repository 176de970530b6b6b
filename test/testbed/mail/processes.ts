// Small helpers to start and stop daemons by pid: wait for ports, find a process's children, wait for exits,
// and a watchdog that stops a daemon when the test process dies.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Resolves when every port accepts a TCP connection; false if `deadline` passed or `stillRunning()` turned false. */
export async function waitForPorts(ports: number[], deadlineMs: number, stillRunning: () => boolean): Promise<boolean> {
  const deadline = Date.now() + deadlineMs;
  const pending = new Set(ports);
  while (pending.size > 0) {
    if (!stillRunning() || Date.now() > deadline) return false;
    for (const port of [...pending]) if (await portAnswers(port)) pending.delete(port);
    if (pending.size > 0) await sleep(25);
  }
  return true;
}

/** Running, and not a zombie: an orphaned daemon's zombie may wait seconds here for PID 1 to reap it. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Direct children of `pid`, from /proc (Linux). */
export async function childPids(pid: number): Promise<number[]> {
  const children: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // "pid (comm) state ppid …": comm may contain spaces, so parse after the last ')'
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === pid) children.push(Number(entry));
  }
  return children;
}

/** Waits until none of `pids` is alive; SIGKILLs what is left after `graceMs`. Returns the pids that had to be killed. */
export async function reapPids(pids: number[], graceMs: number): Promise<number[]> {
  const deadline = Date.now() + graceMs;
  while (pids.some(isAlive) && Date.now() < deadline) await sleep(25);
  const stragglers = pids.filter(isAlive);
  for (const pid of stragglers) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited in between
    }
  }
  return stragglers;
}

/**
 * A shell that blocks reading a pipe from this process. The pipe closes when this process ends, however it ends
 * (even SIGKILL, when no 'exit' handler runs): the shell then SIGTERMs `pid`, waits for it, and removes `dir`.
 * So a daemon never outlives the test worker that started it. `release()` (after a normal stop) ends the watchdog.
 */
export function startWatchdog(pid: number, dir: string): { release(): void } {
  // "alive" = /proc/<pid>/stat exists and its state is not Z (zombie)
  const script = [
    'read -r _',
    'kill -TERM "$1" 2>/dev/null',
    'for _ in $(seq 50); do s=$(sed "s/.*) //" /proc/"$1"/stat 2>/dev/null | cut -c1); [ -n "$s" ] && [ "$s" != Z ] || break; sleep 0.1; done',
    'rm -rf -- "$2"',
  ].join('; ');
  const watchdog = spawn('bash', ['-c', script, 'testbed-watchdog', String(pid), dir], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
  watchdog.unref();
  // the pipe must not keep this process alive either
  (watchdog.stdin as unknown as Socket).unref();
  return {
    release() {
      watchdog.kill('SIGKILL');
    },
  };
}
