// The running instances of one database: each `serve` registers itself, beats its heart, and says when it stops; status and the web UI read the list.
import crypto from 'node:crypto';
import os from 'node:os';
import type { Store } from '../store/store.js';
import { VERSION } from '../version.js';

export interface InstanceView {
  id: string;
  hostname: string;
  pid: number;
  version: string;
  startedAt: string;
  heartbeatAt: string;
  stoppedAt: string | null;
  /** Running: not stopped, and its last heartbeat is younger than the lease period. */
  alive: boolean;
}

/** Stopped (or silent) instances are forgotten after a week. */
const FORGET_AFTER_MS = 7 * 86_400_000;

export class InstanceRegistry {
  /** This process's identity: owner of its leases, shown in status. */
  readonly id = `${os.hostname().slice(0, 40)}-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;

  constructor(
    private readonly store: Store,
    /** An instance whose heartbeat is older than this is taken for dead. */
    private readonly staleMs: number,
  ) {}

  #timer: NodeJS.Timeout | undefined;

  /** Registers this process as running, and beats its heart every third of the stale period until `stop`. */
  async start(): Promise<void> {
    await this.register();
    const beat = () => {
      this.#timer = setTimeout(() => void this.heartbeat().catch(() => undefined).finally(() => this.#timer && beat()), Math.max(500, Math.floor(this.staleMs / 3)));
      this.#timer.unref();
    };
    beat();
  }

  async stop(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.stopped();
  }

  async register(): Promise<void> {
    const at = new Date().toISOString();
    await this.store.db.insertInto('instances').values({ id: this.id, hostname: os.hostname(), pid: process.pid, version: VERSION, started_at: at, heartbeat_at: at, stopped_at: null }).execute();
    await this.store.db.deleteFrom('instances').where('heartbeat_at', '<', new Date(Date.now() - FORGET_AFTER_MS).toISOString()).execute();
  }

  async heartbeat(): Promise<void> {
    await this.store.db.updateTable('instances').set({ heartbeat_at: new Date().toISOString() }).where('id', '=', this.id).execute();
  }

  async stopped(): Promise<void> {
    const at = new Date().toISOString();
    await this.store.db.updateTable('instances').set({ heartbeat_at: at, stopped_at: at }).where('id', '=', this.id).execute();
  }

  /** At the start of the only instance a SQLite database may have: any other one still marked running crashed. */
  async markOthersStopped(): Promise<void> {
    await this.store.db.updateTable('instances').set({ stopped_at: new Date().toISOString() }).where('id', '!=', this.id).where('stopped_at', 'is', null).execute();
  }

  /** How many instances run now (this one included, at least 1). */
  async aliveCount(): Promise<number> {
    const row = await this.store.db
      .selectFrom('instances')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('stopped_at', 'is', null)
      .where('heartbeat_at', '>=', new Date(Date.now() - this.staleMs).toISOString())
      .executeTakeFirst();
    return Math.max(1, Number(row?.n ?? 0));
  }

}

/** The instances of a database as `mailgate status` (another process) sees them. */
export async function listInstances(store: Store, staleMs: number): Promise<InstanceView[]> {
  const rows = await store.db.selectFrom('instances').selectAll().orderBy('started_at', 'desc').execute();
  const threshold = new Date(Date.now() - staleMs).toISOString();
  const views = rows.map((r) => ({
    id: r.id,
    hostname: r.hostname,
    pid: Number(r.pid),
    version: r.version,
    startedAt: r.started_at,
    heartbeatAt: r.heartbeat_at,
    stoppedAt: r.stopped_at,
    alive: r.stopped_at === null && r.heartbeat_at >= threshold,
  }));
  return [...views.filter((v) => v.alive), ...views.filter((v) => !v.alive)];
}
