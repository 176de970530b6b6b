// Runs the enabled watchers inside `serve`: each in exactly one instance (the holder of its lease), restarted or stopped as definitions change, and taken over when its instance dies.
import type { LeaseRepository } from '../instances/leases.js';
import type { InstanceRegistry } from '../instances/registry.js';
import type { Logger } from '../log.js';
import type { Services } from '../services.js';
import { ImapWatcher } from './imapWatcher.js';
import type { WatcherDependencies } from './watcherBase.js';
import { Pop3Watcher } from './pop3Watcher.js';
import { settingsOf } from './repository.js';

interface Running {
  kick(): void;
  stop(): Promise<void>;
}

/** What decides where a watcher runs: the leases, this instance, and how long a lease lasts. */
export interface WatcherCoordination {
  leases: LeaseRepository;
  instance: Pick<InstanceRegistry, 'id' | 'aliveCount'>;
  leaseMs: number;
}

export const watcherLease = (name: string) => `watcher:${name}`;

/**
 * Every third of a lease period, `#balance` renews this instance's watcher leases, stops a watcher whose lease was
 * lost, and takes free ones up to a fair share (enabled watchers / running instances, rounded up); an instance over
 * its share hands one back per round, so a newly started instance gets its part within a few rounds. A watcher whose
 * instance died is taken over once its lease runs out: one lease period at most, plus a round.
 */
export class WatcherManager {
  readonly #running = new Map<string, Running>();
  /** Watchers whose lease this instance holds (running, or about to be). */
  readonly #held = new Set<string>();
  readonly #deps: WatcherDependencies;
  readonly #coordination: WatcherCoordination;
  #queue: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(services: Services, logger: Logger, coordination: WatcherCoordination) {
    const inbound = services.config.inbound;
    this.#coordination = coordination;
    this.#deps = {
      repo: services.watcherRepo,
      servers: services.serverRepo,
      tokens: services.tokens,
      outbox: services.outbox,
      logger,
      options: inbound,
      onDelivery: (watcher, outcome) => services.metrics.webhookDeliveries.inc({ watcher, outcome }),
    };
  }

  async start(): Promise<void> {
    await this.#serialized(() => this.#balance());
    this.#schedule();
  }

  /** A definition changed here or in another instance (or a retry was asked for): restart that watcher, one change at a time. */
  changed(name: string): void {
    void this.#serialized(() => this.#reconcile(name));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#queue;
    await Promise.all([...this.#running.values()].map((w) => w.stop()));
    this.#running.clear();
    // Handed back at once: another instance need not wait for the leases to run out.
    const { leases, instance } = this.#coordination;
    await leases.release(instance.id, [...this.#held].map(watcherLease)).catch((err: unknown) => this.#deps.logger.warn({ err }, 'cannot release the watcher leases'));
    this.#held.clear();
  }

  #serialized(step: () => Promise<void>): Promise<void> {
    this.#queue = this.#queue.then(step).catch((err: unknown) => this.#deps.logger.error({ err }, 'watcher coordination failed'));
    return this.#queue;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#serialized(() => this.#balance()).finally(() => this.#schedule()), Math.max(500, Math.floor(this.#coordination.leaseMs / 3)));
    this.#timer.unref();
  }

  async #balance(): Promise<void> {
    if (this.#stopped) return;
    const { leases, instance, leaseMs } = this.#coordination;
    const { enabled, share } = await this.#fairShare();
    const kept = await leases.renew(instance.id, [...this.#held].map(watcherLease), leaseMs);
    for (const name of [...this.#held]) {
      if (kept.has(watcherLease(name))) continue;
      this.#deps.logger.warn({ watcher: name }, 'lost the watcher lease (this instance did not renew it in time): stopping it here, another instance runs it');
      this.#held.delete(name);
      await this.#stopRunning(name);
    }
    for (const name of [...this.#held]) if (!enabled.includes(name)) await this.#hand(name);
    if (this.#held.size > share) {
      const surplus = [...this.#held].sort().at(-1)!;
      this.#deps.logger.info({ watcher: surplus, share }, 'handing a watcher to another instance (fair share)');
      await this.#hand(surplus);
    }
    for (const name of enabled) {
      if (this.#held.size >= share) break;
      if (this.#held.has(name)) continue;
      if (await leases.acquire(watcherLease(name), instance.id, leaseMs)) {
        this.#held.add(name);
        await this.#reconcile(name);
      }
    }
  }

  /** The enabled watchers, and how many of them one instance runs: their count over the running instances, rounded up. */
  async #fairShare(): Promise<{ enabled: string[]; share: number }> {
    const enabled = (await this.#deps.repo.list()).filter((row) => settingsOf(row).enabled).map((row) => row.name);
    return { enabled, share: Math.ceil(enabled.length / (await this.#coordination.instance.aliveCount())) };
  }

  /** Stops a watcher here and gives its lease back. */
  async #hand(name: string): Promise<void> {
    await this.#stopRunning(name);
    this.#held.delete(name);
    await this.#coordination.leases.release(this.#coordination.instance.id, [watcherLease(name)]);
  }

  async #stopRunning(name: string): Promise<void> {
    const current = this.#running.get(name);
    if (!current) return;
    this.#running.delete(name);
    await current.stop();
  }

  async #reconcile(name: string): Promise<void> {
    if (this.#stopped) return;
    await this.#stopRunning(name);
    const row = await this.#deps.repo.find(name);
    if (!row || !settingsOf(row).enabled) {
      if (this.#held.has(name)) await this.#hand(name);
      return;
    }
    if (!this.#held.has(name)) {
      // Not ours: take it only when it is free (new, or its instance gave it back or died) and within our share.
      const { leases, instance, leaseMs } = this.#coordination;
      if (this.#held.size >= (await this.#fairShare()).share) return;
      if (!(await leases.acquire(watcherLease(name), instance.id, leaseMs))) return;
      this.#held.add(name);
    }
    const server = await this.#deps.servers.find(row.server);
    const watcher = server?.protocol === 'pop3' ? new Pop3Watcher(name, this.#deps) : new ImapWatcher(name, this.#deps);
    watcher.start();
    this.#running.set(name, watcher);
  }
}
