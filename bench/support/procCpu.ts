// Bench helper: CPU time of processes read from /proc (a process, a PostgreSQL postmaster with its backends) and how busy the whole machine was, for "CPU per message" figures.
import fs from 'node:fs';

/** Linux reports CPU times in clock ticks; 100 per second on every kernel this runs on (getconf CLK_TCK). */
const TICK_MS = 10;

interface Stat {
  ppid: number;
  /** utime + stime of the process itself, ms. */
  ownMs: number;
  /** cutime + cstime: children it has waited for (a postmaster's exited backends), ms. */
  reapedMs: number;
}

function readStat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // gone
  }
  // The command name (field 2) may contain spaces and parentheses: the fields after the last ')' are fixed.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const n = (i: number) => Number(fields[i - 3]);
  return { ppid: n(4), ownMs: (n(14) + n(15)) * TICK_MS, reapedMs: (n(16) + n(17)) * TICK_MS };
}

/** CPU ms used so far by one process (0 once it is gone). */
export function processCpuMs(pid: number | undefined): number {
  if (pid === undefined) return 0;
  return readStat(pid)?.ownMs ?? 0;
}

/** CPU ms used so far by a process and its children, the live ones and the ones it reaped (PostgreSQL: postmaster + backends). */
export function treeCpuMs(rootPid: number): number {
  const root = readStat(rootPid);
  if (!root) return 0;
  let total = root.ownMs + root.reapedMs;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat && stat.ppid === rootPid) total += stat.ownMs;
  }
  return total;
}

/** The postmaster's pid of a cluster whose data folder is `dataDir` (first line of postmaster.pid). */
export function postmasterPid(dataDir: string): number {
  return Number(fs.readFileSync(`${dataDir}/postmaster.pid`, 'utf8').split('\n')[0]);
}

export interface MachineSample {
  busy: number;
  total: number;
}

/** The machine's CPU counters (all cores) from /proc/stat. */
export function machineSample(): MachineSample {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (values[3] ?? 0) + (values[4] ?? 0); // idle + iowait
  const total = values.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** Fraction of all cores busy between two samples (everyone's processes, not only the bench's). */
export function busyFraction(before: MachineSample, after: MachineSample): number {
  const total = after.total - before.total;
  return total > 0 ? (after.busy - before.busy) / total : 0;
}
