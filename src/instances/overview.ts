// Which instance runs what: every registered instance with its heartbeat and the watchers (and alert loop) it holds, for status, the API and the web UI.
import type { Store } from '../store/store.js';
import { LeaseRepository } from './leases.js';
import { listInstances, type InstanceView } from './registry.js';

export interface InstanceOverview extends InstanceView {
  /** Watchers whose lease this instance holds now. */
  watchers: string[];
  /** Whether it runs the alert loop. */
  alerts: boolean;
  /** Outbox messages it is sending now (their leases are its own). */
  sending: number;
}

/** Running instances first; a stopped or silent one is listed (for a week) without anything it held. */
export async function instanceOverview(store: Store, staleMs: number): Promise<InstanceOverview[]> {
  const [instances, leases, sending] = await Promise.all([
    listInstances(store, staleMs),
    new LeaseRepository(store).list(),
    store.db.selectFrom('outbox').select(['lease_owner', (eb) => eb.fn.countAll<number>().as('n')]).where('status', '=', 'sending').groupBy('lease_owner').execute(),
  ]);
  const now = new Date().toISOString();
  const live = leases.filter((l) => l.expiresAt >= now);
  return instances.map((i) => ({
    ...i,
    watchers: i.alive ? live.filter((l) => l.owner === i.id && l.name.startsWith('watcher:')).map((l) => l.name.slice('watcher:'.length)) : [],
    alerts: i.alive && live.some((l) => l.owner === i.id && l.name === 'alerts'),
    sending: Number(sending.find((s) => s.lease_owner === i.id)?.n ?? 0),
  }));
}

/** "12 s ago", "3 min ago": how long ago an ISO time was, for one-line summaries. */
export function ago(iso: string, now = Date.now()): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 120) return `${seconds} s ago`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86_400)} days ago`;
}
