// What should be alerting right now, read from the store: every alert kind's condition, with its message and the link that fixes it.
import { sql } from 'kysely';
import type { Store } from '../store/store.js';

export const ALERT_KINDS = ['needs_reauthorization', 'client_secret_invalid', 'configuration_error', 'client_secret_expiring', 'refresh_failing', 'send_failing', 'watcher_failing', 'message_parked', 'sending_paused'] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

export interface AlertCondition {
  kind: AlertKind;
  /** What the alert is about: a credential, a watcher, "outbox"; with the stage for expiring secrets ("m365:7"). */
  subject: string;
  message: string;
  link: string | undefined;
}

/** Days before a client secret's expiry at which Mailgate warns; each stage is its own alert. */
const SECRET_EXPIRY_STAGES = [1, 7, 30];
/** A refresh failing for a passing reason alerts only once it has failed this many times in a row. */
const REFRESH_FAILURES_BEFORE_ALERT = 3;
/** The outbox alerts when a message waited this long, or when one failed within the last hour. */
const OUTBOX_STUCK_MS = 15 * 60_000;

export async function currentConditions(store: Store, publicUrl: string, now = Date.now()): Promise<AlertCondition[]> {
  const conditions: AlertCondition[] = [];
  const connect = (name: string) => `${publicUrl}/credentials/${encodeURIComponent(name)}/connect`;

  const credentials = await store.db.selectFrom('credentials').select(['name', 'status', 'status_reason', 'failure_count', 'client_secret_expires_at', 'last_error']).execute();
  for (const c of credentials) {
    if (c.status === 'needs_reauthorization') {
      conditions.push({ kind: 'needs_reauthorization', subject: c.name, message: `credential ${c.name} needs someone to sign in again: ${c.status_reason ?? 'the refresh token is no longer valid'}. Until then mail through it fails. Fix: open the link (or run \`mailgate credential authorize ${c.name}\`).`, link: connect(c.name) });
    } else if (c.status === 'client_secret_invalid') {
      conditions.push({ kind: 'client_secret_invalid', subject: c.name, message: `credential ${c.name}: ${c.status_reason ?? 'the provider no longer accepts the client secret'}. Create a new secret at the provider and paste it into the credential (Edit on the link, or \`mailgate credential update ${c.name} --client-secret-env VAR --client-secret-expires-at DATE\`).`, link: `${publicUrl}/credentials/${encodeURIComponent(c.name)}/edit` });
    } else if (c.status === 'configuration_error') {
      conditions.push({ kind: 'configuration_error', subject: c.name, message: `credential ${c.name}: the provider refuses its token requests (${c.status_reason ?? 'refused'}). Signing in again will not fix this: change what the provider names in the app registration (or the credential's settings with \`mailgate credential update ${c.name}\`), then retry with Refresh on the link or \`mailgate credential refresh ${c.name}\`.`, link: `${publicUrl}/credentials/${encodeURIComponent(c.name)}` });
    } else if (c.status === 'refresh_failing' && c.failure_count >= REFRESH_FAILURES_BEFORE_ALERT) {
      conditions.push({ kind: 'refresh_failing', subject: c.name, message: `credential ${c.name}: refreshing has failed ${c.failure_count} times in a row (${c.last_error ?? 'unknown error'}); Mailgate keeps retrying and serves the current token until it expires.`, link: `${publicUrl}/credentials/${encodeURIComponent(c.name)}` });
    }
    if (c.client_secret_expires_at) {
      const daysLeft = (Date.parse(c.client_secret_expires_at) - now) / 86_400_000;
      const stage = SECRET_EXPIRY_STAGES.find((d) => daysLeft <= d);
      if (stage !== undefined && c.status !== 'client_secret_invalid') {
        const when = daysLeft <= 0 ? 'has expired' : `expires in ${Math.max(1, Math.ceil(daysLeft))} day${Math.ceil(daysLeft) > 1 ? 's' : ''} (${c.client_secret_expires_at.slice(0, 10)})`;
        conditions.push({ kind: 'client_secret_expiring', subject: `${c.name}:${stage}`, message: `the client secret of credential ${c.name} ${when}: create a new one at the provider and paste it into the credential before then (Edit on the link, or \`mailgate credential update ${c.name} --client-secret-env VAR --client-secret-expires-at DATE\`).`, link: `${publicUrl}/credentials/${encodeURIComponent(c.name)}/edit` });
      }
    }
  }

  const hourAgo = new Date(now - 3_600_000).toISOString();
  const failed = await store.db.selectFrom('outbox').select([sql<number>`count(*)`.as('n'), sql<string | null>`max(last_error)`.as('error')]).where('status', '=', 'failed').where('updated_at', '>', hourAgo).executeTakeFirst();
  const oldest = await store.db.selectFrom('outbox').select(sql<string | null>`min(created_at)`.as('oldest')).where('status', 'in', ['queued', 'sending']).executeTakeFirst();
  const failedCount = Number(failed?.n ?? 0);
  const stuck = oldest?.oldest ? now - Date.parse(oldest.oldest) > OUTBOX_STUCK_MS : false;
  if (failedCount > 0 || stuck) {
    const parts = [failedCount > 0 ? `${failedCount} message${failedCount > 1 ? 's' : ''} failed in the last hour (e.g. ${failed?.error ?? 'unknown'})` : '', stuck ? `a message has waited since ${oldest!.oldest}` : ''].filter(Boolean);
    conditions.push({ kind: 'send_failing', subject: 'outbox', message: `sending mail is failing: ${parts.join('; ')}.`, link: `${publicUrl}/outbox` });
  }

  const watchers = await store.db.selectFrom('watchers').innerJoin('watcher_state', 'watcher_state.watcher', 'watchers.name').select(['watchers.name', 'watchers.enabled', 'watcher_state.state', 'watcher_state.last_error']).execute();
  for (const w of watchers) {
    if (w.enabled === 1 && (w.state === 'backoff' || w.state === 'error')) {
      conditions.push({ kind: 'watcher_failing', subject: w.name, message: `watcher ${w.name} cannot read its mailbox: ${w.last_error ?? 'unknown error'}; it keeps retrying.`, link: `${publicUrl}/inbound` });
    }
  }
  const parked = await store.db.selectFrom('inbound_deliveries').select(['watcher', sql<number>`count(*)`.as('n')]).where('status', '=', 'parked').groupBy('watcher').execute();
  for (const p of parked) {
    conditions.push({ kind: 'message_parked', subject: p.watcher, message: `watcher ${p.watcher} has ${p.n} inbound message${Number(p.n) > 1 ? 's' : ''} its webhook did not accept; they wait in the mailbox, unacknowledged, for a retry.`, link: `${publicUrl}/inbound` });
  }

  // A server paused by a provider's throttling reply or a spent daily budget: say which mailbox, which limit, until when.
  const pauses = await store.db.selectFrom('server_pauses').leftJoin('servers', 'servers.name', 'server_pauses.server').select(['server_pauses.server', 'server_pauses.until', 'server_pauses.limit_name', 'server_pauses.reason', 'servers.username']).where('server_pauses.until', '>', new Date(now).toISOString()).execute();
  for (const p of pauses) {
    const mailbox = p.username ? ` (mailbox ${p.username})` : '';
    conditions.push({ kind: 'sending_paused', subject: p.server, message: `server ${p.server}${mailbox} reached its ${p.limit_name} limit: ${p.reason}. Mail through it waits (nothing is lost) and goes again at ${p.until}; a sender with a backup server uses the backup meanwhile when a daily limit is spent.`, link: `${publicUrl}/servers/${encodeURIComponent(p.server)}/test` });
  }
  return conditions;
}
