// Prometheus metrics (prom-client): counters moved by the work itself, and gauges read from the store at each scrape.
import client from 'prom-client';
import { sql } from 'kysely';
import type { Store } from '../store/store.js';
import { OUTBOX_STATUSES } from '../outbox/repository.js';
import type { ListenerRegistry } from '../listeners/registry.js';
import { CREDENTIAL_STATUSES } from '../credentials/model.js';
import { COUNTED_LIMITS, hasLimits, limitsOfServer } from '../servers/limits.js';
import type { SendBudget } from '../servers/sendBudget.js';

export type RefreshOutcome = 'success' | 'needs_reauthorization' | 'client_secret_invalid' | 'transient_failure' | 'refused';
export type SendOutcome = 'sent' | 'retry' | 'next_server' | 'failed' | 'throttled';
export type WebhookOutcome = 'delivered' | 'retry' | 'parked' | 'skipped';

/** Credential statuses that need a person: each is one series of mailgate_credential_problem. */
const PROBLEM_STATUSES = ['needs_reauthorization', 'client_secret_invalid', 'configuration_error', 'refresh_failing'] as const;

/** One registry per gateway (not prom-client's global one), so tests and several gateways in a process stay apart. */
export class Metrics {
  readonly registry = new client.Registry();
  readonly refreshes: client.Counter<'outcome'>;
  readonly sends: client.Counter<'server' | 'outcome'>;
  readonly webhookDeliveries: client.Counter<'watcher' | 'outcome'>;
  readonly httpDuration: client.Histogram<'method' | 'route' | 'status'>;
  /** Logins at the relay and the proxies: `listener` is smtp-relay, imap-proxy or pop3-proxy; outcome success, invalid, locked, upstream_failed. */
  readonly listenerLogins: client.Counter<'listener' | 'outcome'>;
  /** Messages the relay accepted into the outbox, and the ones it refused, by reply class. */
  readonly relayMessages: client.Counter<'outcome'>;
  /** Bytes relayed by the proxies, client→upstream (`up`) and upstream→client (`down`). */
  readonly proxyBytes: client.Counter<'listener' | 'direction'>;

  constructor(store: Store, listeners?: ListenerRegistry, budget?: SendBudget) {
    const registers = [this.registry];
    client.collectDefaultMetrics({ register: this.registry, prefix: 'mailgate_process_' });
    this.refreshes = new client.Counter({ name: 'mailgate_token_refreshes_total', help: 'Token requests (refresh, client credentials, service account) by outcome', labelNames: ['outcome'], registers });
    this.sends = new client.Counter({ name: 'mailgate_sends_total', help: 'SMTP delivery attempts by server and outcome', labelNames: ['server', 'outcome'], registers });
    this.webhookDeliveries = new client.Counter({ name: 'mailgate_webhook_deliveries_total', help: 'Inbound webhook deliveries by watcher and outcome', labelNames: ['watcher', 'outcome'], registers });
    this.httpDuration = new client.Histogram({
      name: 'mailgate_http_request_duration_seconds',
      help: 'HTTP request durations by method, route pattern and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });

    this.listenerLogins = new client.Counter({ name: 'mailgate_listener_logins_total', help: 'Logins at the SMTP relay and the IMAP/POP3 proxies by listener and outcome', labelNames: ['listener', 'outcome'], registers });
    this.relayMessages = new client.Counter({ name: 'mailgate_relay_messages_total', help: 'Messages submitted to the SMTP relay: accepted into the outbox, or refused (by reason)', labelNames: ['outcome'], registers });
    this.proxyBytes = new client.Counter({ name: 'mailgate_proxy_bytes_total', help: 'Bytes relayed by the IMAP/POP3 proxies by direction (up: client to server)', labelNames: ['listener', 'direction'], registers });
    new client.Gauge({
      name: 'mailgate_listener_sessions',
      help: 'Open connections of each relay/proxy listener (state: connected or authenticated)',
      labelNames: ['listener', 'kind', 'state'],
      registers,
      collect() {
        this.reset();
        for (const l of listeners?.list() ?? []) {
          this.set({ listener: l.id, kind: l.kind, state: 'connected' }, l.sessions - l.authenticated);
          this.set({ listener: l.id, kind: l.kind, state: 'authenticated' }, l.authenticated);
        }
      },
    });
    new client.Gauge({
      name: 'mailgate_listener_up',
      help: '1 while a relay/proxy listener listens, 0 when it failed to start',
      labelNames: ['listener', 'kind'],
      registers,
      collect() {
        this.reset();
        for (const l of listeners?.list() ?? []) this.set({ listener: l.id, kind: l.kind }, l.state === 'listening' ? 1 : 0);
      },
    });

    new client.Gauge({
      name: 'mailgate_credentials',
      help: 'Credentials by status',
      labelNames: ['status'],
      registers,
      async collect() {
        this.reset();
        const rows = await store.db.selectFrom('credentials').select(['status', sql<number>`count(*)`.as('n')]).groupBy('status').execute();
        for (const status of CREDENTIAL_STATUSES) this.set({ status }, 0);
        for (const r of rows) this.set({ status: r.status }, Number(r.n));
      },
    });
    new client.Gauge({
      name: 'mailgate_credential_problem',
      help: '1 for each credential a person must look at, by its status (needs_reauthorization, client_secret_invalid, configuration_error, refresh_failing)',
      labelNames: ['credential', 'status'],
      registers,
      async collect() {
        this.reset();
        const rows = await store.db.selectFrom('credentials').select(['name', 'status']).where('status', 'in', [...PROBLEM_STATUSES]).execute();
        for (const r of rows) this.set({ credential: r.name, status: r.status }, 1);
      },
    });
    new client.Gauge({
      name: 'mailgate_client_secret_expiry_seconds',
      help: 'Seconds until each credential\'s client secret expires, where its expiry date is known (negative: expired)',
      labelNames: ['credential'],
      registers,
      async collect() {
        this.reset();
        const rows = await store.db.selectFrom('credentials').select(['name', 'client_secret_expires_at']).where('client_secret_expires_at', 'is not', null).execute();
        for (const r of rows) this.set({ credential: r.name }, Math.round((Date.parse(r.client_secret_expires_at!) - Date.now()) / 1000));
      },
    });
    new client.Gauge({
      name: 'mailgate_access_token_expiry_seconds',
      help: 'Seconds until each credential\'s access token expires (negative: expired)',
      labelNames: ['credential'],
      registers,
      async collect() {
        this.reset();
        const rows = await store.db.selectFrom('credentials').select(['name', 'expires_at']).where('expires_at', 'is not', null).execute();
        for (const r of rows) this.set({ credential: r.name }, Math.round((Date.parse(r.expires_at!) - Date.now()) / 1000));
      },
    });
    new client.Gauge({
      name: 'mailgate_outbox_messages',
      help: 'Outbox messages by status',
      labelNames: ['status'],
      registers,
      async collect() {
        this.reset();
        const rows = await store.db.selectFrom('outbox').select(['status', sql<number>`count(*)`.as('n')]).groupBy('status').execute();
        for (const status of OUTBOX_STATUSES) this.set({ status }, 0);
        for (const r of rows) this.set({ status: r.status }, Number(r.n));
      },
    });
    new client.Gauge({
      name: 'mailgate_outbox_oldest_waiting_seconds',
      help: 'Age of the oldest message waiting to be sent (0 when none waits)',
      registers,
      async collect() {
        const row = await store.db.selectFrom('outbox').select(sql<string | null>`min(created_at)`.as('oldest')).where('status', 'in', ['queued', 'sending']).executeTakeFirst();
        this.set(row?.oldest ? Math.round((Date.now() - Date.parse(row.oldest)) / 1000) : 0);
      },
    });
    new client.Gauge({
      name: 'mailgate_watcher_state',
      help: '1 for each watcher\'s current state',
      labelNames: ['watcher', 'state'],
      registers,
      async collect() {
        this.reset();
        const rows = await store.db.selectFrom('watcher_state').select(['watcher', 'state']).execute();
        for (const r of rows) this.set({ watcher: r.watcher, state: r.state }, 1);
      },
    });
    new client.Gauge({
      name: 'mailgate_inbound_parked',
      help: 'Inbound deliveries parked (waiting for a person), by watcher',
      labelNames: ['watcher'],
      registers,
      async collect() {
        this.reset();
        const rows = await store.db.selectFrom('inbound_deliveries').select(['watcher', sql<number>`count(*)`.as('n')]).where('status', '=', 'parked').groupBy('watcher').execute();
        for (const r of rows) this.set({ watcher: r.watcher }, Number(r.n));
      },
    });
    if (budget) registerBudgetGauges(store, budget, registers);
  }
}

/** Each SMTP server's sending limits: what its windows hold, what is left, and whether a provider paused it. */
function registerBudgetGauges(store: Store, budget: SendBudget, registers: client.Registry[]): void {
  const read = async () => {
    const rows = await store.db.selectFrom('servers').select(['name', 'host', 'username', 'limits']).where('protocol', '=', 'smtp').execute();
    const out = [];
    for (const r of rows) {
      const limits = limitsOfServer(r).effective;
      if (hasLimits(limits)) out.push({ server: r.name, usage: await budget.usage(r.name, limits) });
    }
    return out;
  };
  // The three gauges are collected at once (prom-client awaits them together): they share one read per scrape.
  let reading: ReturnType<typeof read> | undefined;
  const shared = () => {
    reading ??= read().finally(() => setImmediate(() => (reading = undefined)));
    return reading;
  };
  new client.Gauge({
    name: 'mailgate_server_budget_used',
    help: 'What an SMTP server with sending limits has used of each limit in its window (a minute or a rolling day)',
    labelNames: ['server', 'limit'],
    registers,
    async collect() {
      this.reset();
      for (const { server, usage } of await shared()) for (const name of COUNTED_LIMITS) if (usage.used[name] !== undefined) this.set({ server, limit: name }, usage.used[name]);
    },
  });
  new client.Gauge({
    name: 'mailgate_server_budget_remaining',
    help: 'What is left of each sending limit of an SMTP server in its window',
    labelNames: ['server', 'limit'],
    registers,
    async collect() {
      this.reset();
      for (const { server, usage } of await shared()) for (const name of COUNTED_LIMITS) if (usage.left[name] !== undefined) this.set({ server, limit: name }, usage.left[name]);
    },
  });
  new client.Gauge({
    name: 'mailgate_server_paused',
    help: '1 while an SMTP server is paused (a provider throttling reply or a spent daily budget), by the limit named',
    labelNames: ['server', 'limit'],
    registers,
    async collect() {
      this.reset();
      for (const { server, usage } of await shared()) if (usage.pause) this.set({ server, limit: usage.pause.limit }, 1);
    },
  });
}
