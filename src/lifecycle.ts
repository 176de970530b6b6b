// Ordered shutdown: everything that starts registers how it stops; stop runs those steps in reverse, once.
import type { Logger } from './log.js';

type StopStep = { name: string; stop: () => Promise<void> | void };

export class Lifecycle {
  readonly #steps: StopStep[] = [];
  #stopping: Promise<void> | undefined;

  constructor(private readonly logger: Logger) {}

  /** Registers how a started part stops; parts stop in the reverse order of registration. */
  onStop(name: string, stop: StopStep['stop']): void {
    this.#steps.push({ name, stop });
  }

  /** Runs every stop step once (later calls share the first), continuing past a step that fails. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      for (const step of [...this.#steps].reverse()) {
        try {
          await step.stop();
        } catch (err) {
          this.logger.error({ err, part: step.name }, 'error while stopping');
        }
      }
    })();
    return this.#stopping;
  }
}
