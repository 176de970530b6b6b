// The overview page's figures for the last 24 hours, read from the store: sent and failed messages, inbound deliveries, credential failures and the outbox depth, per UTC hour.
import { sql } from 'kysely';
import { currentConditions, type AlertCondition } from '../alerts/conditions.js';
import type { Store } from '../store/store.js';

export const HOURS_SHOWN = 24;
const HOUR_MS = 3_600_000;
/** Statuses a credential enters when its token requests fail (credential_events records each entry into one). */
export const CREDENTIAL_FAILURE_STATUSES = ['refresh_failing', 'needs_reauthorization', 'client_secret_invalid', 'configuration_error'] as const;

export interface OverviewData {
  /** What needs a person now: the same conditions as `mailgate status` and the alerts. */
  conditions: AlertCondition[];
  /** The start of each hour shown (ISO 8601, UTC), oldest first; the last one is the current hour. */
  hours: string[];
  sent: number[];
  failed: number[];
  /** Inbound messages handed to their webhook, by the hour of delivery. */
  delivered: number[];
  /** Inbound messages that arrived in the hour and wait parked (their webhook did not accept them). */
  parked: number[];
  /** Credentials that entered a failing status in the hour (a refresh refused or failing). */
  credentialFailures: number[];
  /** Messages waiting (queued or sending) at the end of each hour; the last value is now. */
  outboxDepth: number[];
  /** Credentials whose last token refresh fell in the window, and how many credentials there are. */
  refreshedCredentials: number;
  credentialCount: number;
}

/** The hour index of `iso` within the window starting at `start`, or -1 when outside it. */
function bucket(iso: string | null, start: number): number {
  if (!iso) return -1;
  const index = Math.floor((Date.parse(iso) - start) / HOUR_MS);
  return index >= 0 && index < HOURS_SHOWN ? index : -1;
}

function count(values: ReadonlyArray<string | null>, start: number): number[] {
  const counts = new Array<number>(HOURS_SHOWN).fill(0);
  for (const v of values) {
    const i = bucket(v, start);
    if (i >= 0) counts[i]!++;
  }
  return counts;
}

/**
 * Reads the window's rows with portable SQL (SQLite and PostgreSQL alike compare the ISO text) and counts them per
 * hour here, so no dialect's date functions are needed.
 */
export async function loadOverview(store: Store, publicUrl: string, now = Date.now()): Promise<OverviewData> {
  const start = Math.floor(now / HOUR_MS) * HOUR_MS - (HOURS_SHOWN - 1) * HOUR_MS;
  const since = new Date(start).toISOString();
  const hours = Array.from({ length: HOURS_SHOWN }, (_, i) => new Date(start + i * HOUR_MS).toISOString());

  const [conditions, outbox, inbound, events, refreshed, credentials] = await Promise.all([
    currentConditions(store, publicUrl, now),
    // Every message that waited at some point in the window: still waiting, or finished (updated) within it.
    store.db
      .selectFrom('outbox')
      .select(['status', 'created_at', 'updated_at', 'sent_at'])
      .where((eb) => eb.or([eb('status', 'in', ['queued', 'sending']), eb('updated_at', '>=', since)]))
      .execute(),
    store.db
      .selectFrom('inbound_deliveries')
      .select(['status', 'created_at', 'delivered_at'])
      .where((eb) => eb.or([eb('delivered_at', '>=', since), eb.and([eb('status', '=', 'parked'), eb('created_at', '>=', since)])]))
      .execute(),
    store.db.selectFrom('credential_events').select(['at']).where('at', '>=', since).where('to_status', 'in', [...CREDENTIAL_FAILURE_STATUSES]).execute(),
    store.db.selectFrom('credentials').select(sql<number>`count(*)`.as('n')).where('last_refreshed_at', '>=', since).executeTakeFirst(),
    store.db.selectFrom('credentials').select(sql<number>`count(*)`.as('n')).executeTakeFirst(),
  ]);

  const sent = count(outbox.filter((m) => m.status === 'sent').map((m) => m.sent_at ?? m.updated_at), start);
  const failed = count(outbox.filter((m) => m.status === 'failed').map((m) => m.updated_at), start);
  const delivered = count(inbound.filter((d) => d.delivered_at !== null).map((d) => d.delivered_at), start);
  const parked = count(inbound.filter((d) => d.status === 'parked').map((d) => d.created_at), start);

  // Depth at the end of hour i (or now, for the current hour): accepted by then and not yet finished by then.
  const outboxDepth = hours.map((_, i) => {
    const at = Math.min(start + (i + 1) * HOUR_MS, now);
    return outbox.filter((m) => {
      if (Date.parse(m.created_at) > at) return false;
      if (m.status === 'queued' || m.status === 'sending') return true;
      const finished = Date.parse(m.status === 'sent' ? (m.sent_at ?? m.updated_at) : m.updated_at);
      return finished > at;
    }).length;
  });

  return {
    conditions,
    hours,
    sent,
    failed,
    delivered,
    parked,
    credentialFailures: count(events.map((e) => e.at), start),
    outboxDepth,
    refreshedCredentials: Number(refreshed?.n ?? 0),
    credentialCount: Number(credentials?.n ?? 0),
  };
}
