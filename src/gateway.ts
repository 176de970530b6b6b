// The composition root of `mailgate serve`: opens storage, unlocks the secrets, starts HTTP, and knows how to stop it all.
import type { FastifyInstance } from 'fastify';
import { ErrorCode, MailgateError } from './errors.js';
import type { Config } from './config/load.js';
import { buildHttpServer } from './http/server.js';
import { Lifecycle } from './lifecycle.js';
import type { Logger } from './log.js';
import type { Keyring } from './secrets/keyring.js';
import { unlockKeyring } from './secrets/masterKey.js';
import { createServices, redirectUriOf, type Services } from './services.js';
import { openStore, type Store } from './store/store.js';
import { RefreshScheduler } from './tokens/refreshScheduler.js';
import { createOutboxWorker } from './outbox/worker.js';
import { WatcherManager } from './inbound/manager.js';
import { startProxyListeners, stopProxyListeners } from './proxy/start.js';
import { startRelayListeners } from './relay/index.js';
import { ChangeFeed } from './store/changes.js';
import { startRetention } from './retention/schedule.js';
import { OUTBOX_CHANNEL, OutboxWakeups } from './outbox/wakeOthers.js';
import { syncConfigFile } from './configSync.js';

export interface Gateway {
  readonly config: Config;
  readonly store: Store;
  readonly keyring: Keyring;
  readonly services: Services;
  readonly scheduler: RefreshScheduler;
  readonly http: FastifyInstance;
  /** The address HTTP actually listens on (the port is real even when 0 was asked for). */
  readonly url: string;
  /** Stops accepting requests, lets in-flight ones finish (up to the shutdown timeout), then closes storage. */
  stop(): Promise<void>;
}

export async function startGateway(config: Config, logger: Logger): Promise<Gateway> {
  const lifecycle = new Lifecycle(logger);
  try {
    const store = await openStore(config.database);
    lifecycle.onStop('store', () => store.close());

    const { keyring, createdKeyFile, warnings } = await unlockKeyring(config.masterKey, store);
    for (const warning of warnings) logger.warn(warning);
    if (createdKeyFile && config.masterKey.kind === 'file') {
      logger.warn({ keyFile: config.masterKey.file }, 'created a new master key file: back it up, stored secrets cannot be read without it');
    }

    const services = createServices(config, logger, store, keyring);
    // The listeners' last state reaches the store before it closes (`mailgate status` reads it, a failed start included).
    lifecycle.onStop('listener status', () => services.listeners.flush());
    const scheduler = new RefreshScheduler(services.credentialRepo, services.tokens, logger.child({ component: 'scheduler' }), {
      intervalMs: config.tokens.schedulerIntervalSeconds * 1000,
      aheadMs: Math.max(2 * config.tokens.refreshMarginSeconds * 1000, 10 * 60_000),
      keepAliveMs: config.tokens.keepAliveDays * 86_400_000,
    });

    // mailgate.yaml's servers and senders, as the file says now (API-made ones are left alone); every name the file
    // gives checked against the store first, all problems in one CONFIG_INVALID (exit 2) and nothing written.
    for (const notice of await syncConfigFile(services)) logger.warn({ key: notice.key }, `${notice.key}: ${notice.text}`);
    const worker = createOutboxWorker(services);
    // Several instances on PostgreSQL: a message accepted here also wakes the others' workers (NOTIFY), so an idle one
    // sends it at once when this one is busy.
    const outboxSignal = store.signal(OUTBOX_CHANNEL);
    const wakeups = outboxSignal ? new OutboxWakeups(outboxSignal, logger.child({ component: 'outbox' })) : undefined;
    services.wakeOutbox = () => {
      worker.wake();
      wakeups?.accepted();
    };

    const firstAdmin = await services.admins.ensureFirstAdmin(config.adminPassword);
    if (firstAdmin.kind === 'created') logger.info({ username: firstAdmin.username }, 'created the first admin from MAILGATE_ADMIN_PASSWORD');

    const http = buildHttpServer(services);
    const inflight = countInflight(http);
    lifecycle.onStop('http', () => closeWithin(http, config.shutdownTimeoutMs, logger, inflight));
    const url = await listen(http, config);
    // Local endpoints for password-only programs (SMTP relay, IMAP/POP3 proxies), before any worker starts: one that
    // cannot listen fails the start (exit 2 naming its config key) with nothing else running yet. Stopped before the
    // workers (steps run in reverse), so a transaction in flight still reaches the store.
    const relay = await startRelayListeners(services, logger.child({ component: 'relay' }));
    lifecycle.onStop('relay listeners', () => relay.stop(config.shutdownTimeoutMs));
    const proxies = await startProxyListeners(services, logger.child({ component: 'proxy' }));
    lifecycle.onStop('proxy listeners', () => stopProxyListeners(proxies));
    scheduler.start();
    lifecycle.onStop('refresh scheduler', () => scheduler.stop());
    await worker.start();
    const stopWakeups = wakeups?.listen(() => worker.wake());
    // The worker finishes its sends before HTTP drains and the store closes; a message accepted meanwhile stays queued
    // (durable) for the next start.
    lifecycle.onStop('outbox worker', () => worker.stop(config.shutdownTimeoutMs));
    lifecycle.onStop('outbox wake-ups', async () => {
      wakeups?.stop();
      await stopWakeups?.();
    });
    // This instance among the others on the database: heartbeats (status shows them) and leases (each watcher and the
    // alert loop runs in one instance). SQLite has one instance: leases and "running" marks left by a crash are stale.
    if (store.kind === 'sqlite') {
      await services.leases.releaseAll();
      await services.instances.markOthersStopped();
    }
    await services.instances.start();
    lifecycle.onStop('instance registration', () => services.instances.stop());
    const coordination = { leases: services.leases, instance: services.instances, leaseMs: config.instances.leaseMs };
    const watchers = new WatcherManager(services, logger.child({ component: 'watchers' }), coordination);
    services.watcherChanged = (name) => watchers.changed(name);
    await watchers.start();
    lifecycle.onStop('watchers', () => watchers.stop());
    // Changes made elsewhere (the CLI, another instance, the config file at another start) reach this one within a
    // second: watchers restart or stop, pooled connections and cached app settings are dropped.
    const changes = new ChangeFeed(store.changes, logger.child({ component: 'changes' }));
    changes.subscribe('watchers', (name) => watchers.changed(name));
    changes.subscribe('credentials', (name) => services.tokens.forget(name));
    changes.subscribe('servers', (name) => {
      services.transports.forget(name);
      void services.serverRepo.usedBy(name).then(
        (users) => users.watchers.forEach((watcher) => watchers.changed(watcher)),
        (err: unknown) => logger.warn({ err, server: name }, 'cannot find the watchers of a changed server'),
      );
    });
    await changes.start();
    lifecycle.onStop('change feed', () => changes.stop());
    const retention = startRetention(services, logger.child({ component: 'retention' }));
    lifecycle.onStop('retention', () => retention.stop());
    // One instance evaluates and sends alerts: the holder of the "alerts" lease, kept across its evaluation interval.
    const alertLeaseMs = Math.max(config.instances.leaseMs, 2 * config.alerts.evaluateMs);
    services.alerts.start({ gate: () => services.leases.acquire('alerts', services.instances.id, alertLeaseMs) });
    lifecycle.onStop('alerts', async () => {
      await services.alerts.stop();
      await services.leases.release(services.instances.id, ['alerts']).catch(() => undefined);
    });
    if (firstAdmin.kind === 'setup') {
      // The one way in on a fresh install without MAILGATE_ADMIN_PASSWORD: a single-use link, valid for 24 hours.
      logger.warn({ setupUrl: `${config.publicUrl}/setup?token=${firstAdmin.token}`, expiresAt: firstAdmin.expiresAt }, 'no admin account yet: open setupUrl in a browser to create one (single use)');
    }
    logger.info({ url, redirectUri: redirectUriOf(config), publicUrl: config.publicUrl, database: config.database.kind, keyId: keyring.current.id }, 'mailgate is serving');

    return { config, store, keyring, services, scheduler, http, url, stop: () => lifecycle.stop() };
  } catch (err) {
    await lifecycle.stop();
    throw err;
  }
}

async function listen(http: FastifyInstance, config: Config): Promise<string> {
  const { host, port } = config.listen;
  try {
    await http.listen({ host, port });
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const reason = code === 'EADDRINUSE' ? 'the address is in use (another Mailgate?)' : code === 'EADDRNOTAVAIL' ? 'no such local address' : (cause as Error).message;
    throw new MailgateError(ErrorCode.LISTEN_FAILED, `cannot listen on ${host}:${port}: ${reason} (set MAILGATE_LISTEN or "listen:" to a free host:port)`, { cause });
  }
  const address = http.server.address();
  if (address === null || typeof address === 'string') return `http://${host}:${port}`;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${shownHost}:${address.port}`;
}

/**
 * fastify.close() waits for in-flight requests; once none is left, every remaining connection is cut — keep-alive
 * sockets and the ones browsers open ahead of time and never use, which would otherwise hold shutdown until Node's
 * 60 s header timeout. Past the timeout, connections with requests still running are cut too.
 */
async function closeWithin(http: FastifyInstance, timeoutMs: number, logger: Logger, inflight: () => number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const closed = http.close().then(() => 'closed' as const);
  const poll = setInterval(() => {
    if (inflight() === 0) http.server.closeAllConnections();
  }, 100);
  const outcome = await Promise.race([closed, timeout]);
  clearTimeout(timer);
  clearInterval(poll);
  if (outcome === 'timeout') {
    logger.warn({ timeoutMs, inflight: inflight() }, 'in-flight requests did not finish in time; closing their connections');
    http.server.closeAllConnections();
  }
}

/** Counts requests that have not finished (their response closed), so shutdown knows when only idle sockets are left. */
function countInflight(http: FastifyInstance): () => number {
  let inflight = 0;
  http.server.on('request', (_request, response: import('node:http').ServerResponse) => {
    inflight++;
    response.once('close', () => inflight--);
  });
  return () => inflight;
}
