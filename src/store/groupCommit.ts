// Group commit for the hottest writes (an outbox message accepted, an attempt's outcome, a credential's new tokens): the writes that arrive together share one transaction, and each caller still awaits its own committed result.
import { runStatement, type SqlValue } from './statements.js';
import type { Store } from './store.js';

interface Pending {
  sql: string;
  parameters: SqlValue[];
  resolve: (changed: number) => void;
  reject: (err: unknown) => void;
}

/** At most this many writes in one transaction (a long one would hold SQLite's only writer). */
const MAX_BATCH = 256;

/**
 * One per store. A write waits for the end of the current event-loop turn (SQLite), or for the transaction in flight
 * (PostgreSQL), then commits with the writes that arrived meanwhile: one commit (one WAL append, one fsync where the
 * database syncs) for many messages. A write resolves only after its transaction committed. If a batch fails (a unique
 * key taken, say), its writes run again one by one, so only the write at fault sees the error.
 */
class GroupCommit {
  #queue: Pending[] = [];
  #flushing = false;

  constructor(private readonly store: Store) {}

  /** Runs one statement (written by `statement`) in the next batch; resolves with the number of rows it changed, once committed. */
  write(sql: string, parameters: SqlValue[]): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ sql, parameters, resolve, reject });
      if (!this.#flushing) {
        this.#flushing = true;
        setImmediate(() => void this.#flush());
      }
    });
  }

  async #flush(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, MAX_BATCH);
        if (batch.length === 1) {
          await this.#alone(batch[0]!);
          continue;
        }
        let changed: number[];
        try {
          changed = await this.store.db.transaction().execute(async (trx) => {
            const counts: number[] = [];
            for (const write of batch) counts.push(Number((await runStatement(trx, write.sql, write.parameters)).numAffectedRows ?? 0));
            return counts;
          });
        } catch {
          // Rolled back as a whole: each write again in its own transaction, so each caller gets its own outcome.
          for (const write of batch) await this.#alone(write);
          continue;
        }
        batch.forEach((write, i) => write.resolve(changed[i]!));
      }
    } finally {
      this.#flushing = false;
    }
  }

  async #alone(write: Pending): Promise<void> {
    try {
      write.resolve(Number((await runStatement(this.store.db, write.sql, write.parameters)).numAffectedRows ?? 0));
    } catch (err) {
      write.reject(err);
    }
  }
}

const perStore = new WeakMap<Store, GroupCommit>();

function groupCommitOf(store: Store): GroupCommit {
  let group = perStore.get(store);
  if (!group) perStore.set(store, (group = new GroupCommit(store)));
  return group;
}

/**
 * Runs one written statement (see `statement`) in the store's next group; resolves with the number of rows it changed
 * once that transaction committed.
 */
export function writeInGroup(store: Store, sql: string, parameters: SqlValue[]): Promise<number> {
  return groupCommitOf(store).write(sql, parameters);
}
