// The sending budget of servers with limits: sliding windows over what was sent (shared by every instance through the store), and pauses providers impose.
import { sql } from 'kysely';
import type { Store } from '../store/store.js';
import { COUNTED_LIMITS, hasLimits } from './limits.js';
import type { BudgetView, LimitName, SendingLimits, ServerPause } from './model.js';

export interface BudgetWindows {
  /** The "per minute" window (tests shorten both). */
  minuteMs: number;
  /** The "per day" window: providers count a rolling 24 hours. */
  dayMs: number;
}

export const REAL_WINDOWS: BudgetWindows = { minuteMs: 60_000, dayMs: 86_400_000 };

export type BudgetDecision =
  /** `reservation`: the send_log row to settle when the send is over (absent for a server without limits). */
  | { ok: true; reservation?: number }
  | {
      ok: false;
      /** When the server may take this message. */
      until: Date;
      /** The limit that holds it back. */
      limit: LimitName;
      /** A daily budget is spent (a backup server should take over), rather than a short wait. */
      daily: boolean;
      /** A pause the provider imposed (its reply), rather than Mailgate's own pacing. */
      paused: boolean;
    };

const DAILY: ReadonlySet<LimitName> = new Set(['messagesPerDay', 'recipientsPerDay']);
/** How long a pause read from the store is trusted before it is read again (another instance may have set one). */
const PAUSE_CACHE_MS = 1000;

export class SendBudget {
  /** Reservations for one server run one after another in this process, in the order they were asked (priority order). */
  readonly #queues = new Map<string, Promise<unknown>>();
  readonly #pauses = new Map<string, { pause: ServerPause | undefined; readAt: number }>();
  readonly #prunedAt = new Map<string, number>();
  /**
   * After a refusal, this process refuses the server's later requests until the same moment without asking the store:
   * a message asking later (lower priority, or younger) never takes a slot that frees while an earlier one waits.
   */
  readonly #refusedUntil = new Map<string, { decision: Extract<BudgetDecision, { ok: false }>; limits: string }>();

  constructor(
    private readonly store: Store,
    readonly windows: BudgetWindows = REAL_WINDOWS,
  ) {}

  /**
   * Takes one message of `recipients` from the server's budget, or says until when it must wait. Atomic across
   * instances: on PostgreSQL under an advisory lock per server, on SQLite in one transaction (one writer).
   */
  reserve(server: string, limits: SendingLimits, recipients: number): Promise<BudgetDecision> {
    const previous = this.#queues.get(server) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => this.#reserve(server, limits, recipients, Date.now()));
    this.#queues.set(server, next);
    void next.finally(() => {
      if (this.#queues.get(server) === next) this.#queues.delete(server);
    }).catch(() => undefined);
    return next;
  }

  async #reserve(server: string, limits: SendingLimits, recipients: number, now: number): Promise<BudgetDecision> {
    const refused = this.#refusedUntil.get(server);
    // (Changed limits ask the store again.)
    if (refused && refused.decision.until.getTime() > now && refused.limits === JSON.stringify(limits)) return refused.decision;
    const decision = await this.#decide(server, limits, recipients, now);
    // (A pause is not kept here: it is re-read every second, so a resume in another instance counts at once.)
    if (!decision.ok && !decision.paused) this.#refusedUntil.set(server, { decision, limits: JSON.stringify(limits) });
    else this.#refusedUntil.delete(server);
    return decision;
  }

  async #decide(server: string, limits: SendingLimits, recipients: number, now: number): Promise<BudgetDecision> {
    const pause = await this.pauseOf(server, now);
    if (pause) return { ok: false, until: new Date(pause.until), limit: pause.limit, daily: DAILY.has(pause.limit), paused: true };
    if (!hasLimits(limits)) return { ok: true };
    return this.store.db.transaction().execute(async (trx) => {
      if (this.store.kind === 'postgres') await sql`select pg_advisory_xact_lock(hashtext(${`mailgate:send:${server}`}))`.execute(trx);
      const minuteStart = new Date(now - this.#span(this.windows.minuteMs)).toISOString();
      const dayStart = new Date(now - this.#span(this.windows.dayMs)).toISOString();
      let wait: { until: number; limit: LimitName } | undefined;
      const later = (until: number, limit: LimitName) => {
        if (until > now && (!wait || until > wait.until)) wait = { until, limit };
      };
      if (limits.messagesPerMinute !== undefined || limits.recipientsPerMinute !== undefined) {
        const rows = await trx.selectFrom('send_log').select(['sent_at', 'recipients']).where('server', '=', server).where('sent_at', '>', minuteStart).orderBy('sent_at').execute();
        const span = this.#span(this.windows.minuteMs);
        if (limits.messagesPerMinute !== undefined) later(leaveTime(rows, (m) => m + 1 <= limits.messagesPerMinute!, span), 'messagesPerMinute');
        if (limits.recipientsPerMinute !== undefined) later(leaveTime(rows, (_m, r) => r + recipients <= limits.recipientsPerMinute!, span), 'recipientsPerMinute');
      }
      if (!wait && (limits.messagesPerDay !== undefined || limits.recipientsPerDay !== undefined)) {
        const total = await trx.selectFrom('send_log').select([sql<number>`count(*)`.as('messages'), sql<number>`coalesce(sum(recipients), 0)`.as('recipients')]).where('server', '=', server).where('sent_at', '>', dayStart).executeTakeFirst();
        const messages = Number(total?.messages ?? 0);
        const sent = Number(total?.recipients ?? 0);
        const overMessages = limits.messagesPerDay !== undefined && messages + 1 > limits.messagesPerDay;
        const overRecipients = limits.recipientsPerDay !== undefined && sent + recipients > limits.recipientsPerDay;
        if (overMessages || overRecipients) {
          // Spent: when does enough of the day's sending leave the window? (Read only now: up to a day of rows.)
          const rows = await trx.selectFrom('send_log').select(['sent_at', 'recipients']).where('server', '=', server).where('sent_at', '>', dayStart).orderBy('sent_at').execute();
          const span = this.#span(this.windows.dayMs);
          if (overMessages) later(leaveTime(rows, (m) => m + 1 <= limits.messagesPerDay!, span), 'messagesPerDay');
          if (overRecipients) later(leaveTime(rows, (_m, r) => r + recipients <= limits.recipientsPerDay!, span), 'recipientsPerDay');
        }
      }
      if (wait) return { ok: false as const, until: new Date(wait.until), limit: wait.limit, daily: DAILY.has(wait.limit), paused: false };
      const inserted = await trx.insertInto('send_log').values({ server, sent_at: new Date(now).toISOString(), recipients }).returning('id').executeTakeFirstOrThrow();
      if (now - (this.#prunedAt.get(server) ?? 0) > this.windows.minuteMs) {
        this.#prunedAt.set(server, now);
        await trx.deleteFrom('send_log').where('server', '=', server).where('sent_at', '<=', dayStart).execute();
      }
      return { ok: true as const, reservation: inserted.id };
    });
  }

  /**
   * Moves a reservation to the moment its send ended: the provider counted the message before Mailgate had its
   * reply, so a window counted from this moment never holds more than the provider's does, however long the send took.
   */
  async settle(reservation: number | undefined): Promise<void> {
    if (reservation === undefined) return;
    await this.store.db.updateTable('send_log').set({ sent_at: new Date().toISOString() }).where('id', '=', reservation).execute();
  }

  /**
   * A window counts a little longer than its nominal length (1/30 more: 2 s a minute): the provider counts when the
   * message reaches it, a few milliseconds after Mailgate counted it, and must never see one too many in its window.
   */
  #span(windowMs: number): number {
    return windowMs + Math.ceil(windowMs / 30);
  }

  /** Pauses the server until `until` (a longer pause already set is kept): every instance sees it within a second. */
  async pause(server: string, until: Date, limit: LimitName, reason: string): Promise<void> {
    const at = new Date().toISOString();
    const row = { server, until: until.toISOString(), limit_name: limit, reason: reason.slice(0, 500), paused_at: at };
    await this.store.db
      .insertInto('server_pauses')
      .values(row)
      .onConflict((oc) => oc.column('server').doUpdateSet({ until: row.until, limit_name: row.limit_name, reason: row.reason, paused_at: row.paused_at }).where('server_pauses.until', '<', row.until))
      .execute();
    this.#pauses.delete(server);
  }

  /** Ends a pause before its time (an admin who knows the provider lifted it). */
  async resume(server: string): Promise<boolean> {
    const result = await this.store.db.deleteFrom('server_pauses').where('server', '=', server).executeTakeFirst();
    this.#pauses.delete(server);
    this.#refusedUntil.delete(server);
    return Number(result.numDeletedRows) > 0;
  }

  /** The pause in force for the server, if any (read at most once a second per server). */
  async pauseOf(server: string, now = Date.now()): Promise<ServerPause | undefined> {
    const cached = this.#pauses.get(server);
    let pause: ServerPause | undefined;
    if (cached && now - cached.readAt < PAUSE_CACHE_MS) pause = cached.pause;
    else {
      const row = await this.store.db.selectFrom('server_pauses').selectAll().where('server', '=', server).executeTakeFirst();
      pause = row ? toPause(row) : undefined;
      this.#pauses.set(server, { pause, readAt: now });
    }
    return pause && Date.parse(pause.until) > now ? pause : undefined;
  }

  /** Every pause still in force (alerts, metrics, status). */
  async activePauses(now = Date.now()): Promise<ServerPause[]> {
    const rows = await this.store.db.selectFrom('server_pauses').selectAll().where('until', '>', new Date(now).toISOString()).orderBy('server').execute();
    return rows.map(toPause);
  }

  /** What the server's windows hold now and what is left of each limit. */
  async usage(server: string, limits: SendingLimits, now = Date.now()): Promise<BudgetView> {
    const count = async (windowMs: number) => {
      const row = await this.store.db
        .selectFrom('send_log')
        .select([sql<number>`count(*)`.as('messages'), sql<number>`coalesce(sum(recipients), 0)`.as('recipients')])
        .where('server', '=', server)
        .where('sent_at', '>', new Date(now - windowMs).toISOString())
        .executeTakeFirst();
      return { messages: Number(row?.messages ?? 0), recipients: Number(row?.recipients ?? 0) };
    };
    const lastMinute = await count(this.windows.minuteMs);
    const lastDay = await count(this.windows.dayMs);
    const counts: Record<Exclude<LimitName, 'connections'>, number> = { messagesPerMinute: lastMinute.messages, recipientsPerMinute: lastMinute.recipients, messagesPerDay: lastDay.messages, recipientsPerDay: lastDay.recipients };
    const used: BudgetView['used'] = {};
    const left: BudgetView['left'] = {};
    for (const name of COUNTED_LIMITS) {
      const limit = limits[name];
      if (limit === undefined) continue;
      used[name] = counts[name];
      left[name] = Math.max(0, limit - counts[name]);
    }
    return { lastMinute, lastDay, used, left, pause: (await this.pauseOf(server, now)) ?? null };
  }
}

/**
 * The moment enough of the oldest sends have left the window for `fits(messages, recipients)` to hold over what stays
 * (0: it holds now). A message larger than the whole limit fits once the window is empty: it goes alone rather than never.
 */
function leaveTime(rows: readonly { sent_at: string; recipients: number }[], fits: (messages: number, recipients: number) => boolean, spanMs: number): number {
  let messages = rows.length;
  let recipients = 0;
  for (const r of rows) recipients += r.recipients;
  for (let gone = 0; gone <= rows.length; gone++) {
    if (fits(messages, recipients) || messages === 0) return gone === 0 ? 0 : Date.parse(rows[gone - 1]!.sent_at) + spanMs;
    messages -= 1;
    recipients -= rows[gone]!.recipients;
  }
  return 0;
}

function toPause(row: { server: string; until: string; limit_name: string; reason: string; paused_at: string }): ServerPause {
  return { server: row.server, until: row.until, limit: row.limit_name as LimitName, reason: row.reason, pausedAt: row.paused_at };
}
