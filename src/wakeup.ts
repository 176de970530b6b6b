// A sleep that can be cut short: a wake that arrives while nobody sleeps is remembered, so the next sleep returns at once.

export class Wakeup {
  #pending = false;
  #done: (() => void) | undefined;

  /** Resolves after `ms` (Infinity: only when woken), or at once if a wake came since the last sleep. */
  sleep(ms: number): Promise<void> {
    if (this.#pending) {
      this.#pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = Number.isFinite(ms) ? setTimeout(finish, ms) : undefined;
      const self = this;
      function finish() {
        clearTimeout(timer);
        if (self.#done === finish) self.#done = undefined;
        resolve();
      }
      this.#done = finish;
    });
  }

  wake(): void {
    if (this.#done) this.#done();
    else this.#pending = true;
  }
}
