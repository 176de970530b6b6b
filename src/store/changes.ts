// Change propagation: every write to a definition (credential, server, sender, watcher) is logged, and each running instance polls the log (woken at once by PostgreSQL's NOTIFY) and tells its subscribers.
import crypto from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Logger } from '../log.js';
import type { Database } from './tables.js';

/** The PostgreSQL channel `ChangeLog` notifies on after each write, so other instances poll at once instead of within a second. */
export const CHANGES_CHANNEL = 'mailgate_changes';

export type ChangeTopic = 'credentials' | 'servers' | 'senders' | 'watchers';

export interface Change {
  seq: number;
  topic: ChangeTopic;
  name: string;
}

/** Entries older than this are pruned; an instance that was away longer reloads everything anyway (it restarts). */
const KEEP_MS = 24 * 3_600_000;

/**
 * How one process wakes the others after a write (PostgreSQL: NOTIFY to a LISTEN connection). SQLite has none: the
 * other processes' one-second poll is the only way there, and stays the safety net on PostgreSQL too.
 */
export interface ChangeSignal {
  notify(): Promise<void>;
  /** Calls `wake` on each notification and after each (re)connection; returns the function that stops listening. */
  listen(events: { wake(): void; problem(err: unknown, retryInMs: number): void }): () => Promise<void>;
}

/** The writing side: one per open store, with this process's origin id. */
export class ChangeLog {
  /** Changes made by this process are not told back to it (it acted on them already). */
  readonly origin = crypto.randomUUID();

  constructor(
    private readonly db: Kysely<Database>,
    readonly signal?: ChangeSignal,
  ) {}

  async record(topic: ChangeTopic, name: string): Promise<void> {
    await this.db.insertInto('changes').values({ topic, name, origin: this.origin, at: new Date().toISOString() }).execute();
    // The row is committed: a listener woken now finds it. A lost notification only delays it to the next poll.
    await this.signal?.notify().catch(() => {});
  }

  async latest(): Promise<number> {
    const row = await this.db.selectFrom('changes').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirst();
    return Number(row?.seq ?? 0);
  }

  /** Changes after `seq` made by other processes, oldest first; `seqs` lists every entry read, this process's too. */
  async since(seq: number): Promise<{ last: number; changes: Change[]; seqs: number[] }> {
    const rows = await this.db.selectFrom('changes').select(['seq', 'topic', 'name', 'origin']).where('seq', '>', seq).orderBy('seq').limit(1000).execute();
    const last = rows.length > 0 ? rows[rows.length - 1]!.seq : seq;
    return { last, seqs: rows.map((r) => r.seq), changes: rows.filter((r) => r.origin !== this.origin).map((r) => ({ seq: r.seq, topic: r.topic as ChangeTopic, name: r.name })) };
  }

  async prune(): Promise<void> {
    await this.db.deleteFrom('changes').where('at', '<', new Date(Date.now() - KEEP_MS).toISOString()).execute();
  }
}

type Subscriber = (name: string) => void;

/** How many entries behind its cursor a feed reads again, for entries that committed late (see ChangeFeed.#seen). */
const LOOK_BACK = 100;

/** The reading side, in `serve`: polls the log (one indexed query a second) and calls the topic's subscribers. */
export class ChangeFeed {
  readonly #subscribers = new Map<ChangeTopic, Subscriber[]>();
  #cursor = 0;
  /**
   * Entries already told, within LOOK_BACK of the cursor. On PostgreSQL writers run side by side: an entry can commit
   * after one with a higher number was read, so each poll reads a little behind the cursor and tells what is new.
   */
  readonly #seen = new Set<number>();
  /** The newest entry at start: it and those before it were read by the start itself. */
  #floor = 0;
  #timer: NodeJS.Timeout | undefined;
  #polling: Promise<void> = Promise.resolve();
  /** A poll is queued behind the running one: more wake-ups meanwhile are covered by it. */
  #pollQueued = false;
  #stopListening: (() => Promise<void>) | undefined;
  #lastPrune = 0;

  constructor(
    private readonly log: ChangeLog,
    private readonly logger: Logger,
    private readonly intervalMs = 1000,
  ) {}

  subscribe(topic: ChangeTopic, subscriber: Subscriber): void {
    this.#subscribers.set(topic, [...(this.#subscribers.get(topic) ?? []), subscriber]);
  }

  /** Starts from the newest entry: what happened before this start was read by the start itself. */
  async start(): Promise<void> {
    this.#cursor = await this.log.latest();
    this.#floor = this.#cursor;
    this.#timer = setInterval(() => this.#pollSoon(), this.intervalMs);
    this.#timer.unref();
    this.#stopListening = this.log.signal?.listen({
      wake: () => this.#pollSoon(),
      problem: (err, retryInMs) => this.logger.warn({ err, retryInMs }, 'the change notification connection failed; polling every second meanwhile'),
    });
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#stopListening?.();
    await this.#polling;
  }

  #pollSoon(): void {
    if (this.#pollQueued) return;
    this.#pollQueued = true;
    this.#polling = this.#polling.then(() => {
      this.#pollQueued = false;
      return this.poll();
    });
  }

  /** One poll (the timer calls it; tests may too). */
  async poll(): Promise<void> {
    try {
      const from = Math.max(0, this.#cursor - LOOK_BACK);
      const { last, changes: read, seqs } = await this.log.since(from);
      const changes = read.filter((c) => c.seq > this.#floor && !this.#seen.has(c.seq));
      for (const seq of seqs) this.#seen.add(seq);
      this.#cursor = Math.max(this.#cursor, last);
      for (const seq of this.#seen) if (seq <= this.#cursor - LOOK_BACK) this.#seen.delete(seq);
      for (const change of changes) {
        for (const subscriber of this.#subscribers.get(change.topic) ?? []) {
          try {
            subscriber(change.name);
          } catch (err) {
            this.logger.error({ err, topic: change.topic, name: change.name }, 'a change subscriber failed');
          }
        }
      }
      if (changes.length > 0) this.logger.info({ changes: changes.map((c) => `${c.topic}:${c.name}`) }, 'picked up changes made elsewhere');
      if (Date.now() - this.#lastPrune > 3_600_000) {
        this.#lastPrune = Date.now();
        await this.log.prune();
      }
    } catch (err) {
      this.logger.warn({ err }, 'cannot read the change log; trying again');
    }
  }
}
