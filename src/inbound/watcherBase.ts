// The lifecycle every watcher shares: a run loop started once, woken early on demand, and stopped in order.
import { Wakeup } from '../wakeup.js';
import type { Logger } from '../log.js';
import type { OutboxRepository } from '../outbox/repository.js';
import type { ServerRepository } from '../servers/repository.js';
import type { TokenManager } from '../tokens/tokenManager.js';
import type { DeliveryOutcome, InboundOptions } from './delivery.js';
import type { WatcherRepository } from './repository.js';

/** What every watcher uses: its store rows, servers, tokens, the outbox (alerts) and the delivery options. */
export interface WatcherDependencies {
  repo: WatcherRepository;
  servers: ServerRepository;
  tokens: TokenManager;
  outbox: OutboxRepository;
  logger: Logger;
  options: InboundOptions & { reconnectMaxMs: number; idleCheckMs: number };
  /** Told each delivery's outcome (metrics). */
  onDelivery?: (watcher: string, outcome: DeliveryOutcome) => void;
}

export abstract class WatcherBase {
  protected stopping = false;
  #running: Promise<void> | undefined;
  readonly #wakeup = new Wakeup();

  constructor(
    readonly name: string,
    protected readonly deps: WatcherDependencies,
  ) {}

  start(): void {
    this.#running = this.run();
  }

  /** Something changed (a retry was asked for, new mail was signalled): look now. */
  kick(): void {
    this.#wakeup.wake();
  }

  /** Stops the loop, lets the current step finish, and records the watcher as stopped. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.kick();
    await this.beforeStop();
    await this.#running;
    await this.deps.repo.setState(this.name, 'stopped').catch(() => undefined);
  }

  protected sleep(ms: number): Promise<void> {
    return this.#wakeup.sleep(ms);
  }

  /** Ends a session that would otherwise wait (an IMAP IDLE): the default has nothing to end. */
  protected async beforeStop(): Promise<void> {}

  protected abstract run(): Promise<void>;
}
