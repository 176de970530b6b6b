// Runs one watcher per enabled watcher definition inside `serve`, and restarts or stops them as definitions change.
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

export class WatcherManager {
  readonly #running = new Map<string, Running>();
  readonly #deps: WatcherDependencies;
  #queue: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(services: Services, logger: Logger) {
    const inbound = services.config.inbound;
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
    for (const row of await this.#deps.repo.list()) await this.#reconcile(row.name);
  }

  /** A definition changed (or a retry was asked for): restart that watcher, one change at a time. */
  changed(name: string): void {
    this.#queue = this.#queue.then(() => this.#reconcile(name)).catch((err: unknown) => this.#deps.logger.error({ err, watcher: name }, 'cannot restart watcher'));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#queue;
    await Promise.all([...this.#running.values()].map((w) => w.stop()));
    this.#running.clear();
  }

  async #reconcile(name: string): Promise<void> {
    if (this.#stopped) return;
    const current = this.#running.get(name);
    if (current) {
      await current.stop();
      this.#running.delete(name);
    }
    const row = await this.#deps.repo.find(name);
    if (!row || !settingsOf(row).enabled) return;
    const server = await this.#deps.servers.find(row.server);
    const watcher = server?.protocol === 'pop3' ? new Pop3Watcher(name, this.#deps) : new ImapWatcher(name, this.#deps);
    watcher.start();
    this.#running.set(name, watcher);
  }
}
