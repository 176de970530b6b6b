// An in-process Mailgate (real services, real HTTP on a free loopback port) for end-to-end tests against the test bed.
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { createLogger } from '../../src/log.js';
import { buildHttpServer } from '../../src/http/server.js';
import { createOutboxWorker } from '../../src/outbox/worker.js';
import { WatcherManager } from '../../src/inbound/manager.js';
import { startProxyListeners, stopProxyListeners } from '../../src/proxy/start.js';
import { startRelayListeners } from '../../src/relay/index.js';
import type { Config } from '../../src/config/load.js';
import type { BudgetWindows } from '../../src/servers/sendBudget.js';
import { getFreePort } from '../testbed/ports.js';
import { openTestServices, type TestServices } from './services.js';

export interface MailgateApp {
  url: string;
  services: TestServices;
  http: FastifyInstance;
  /** Where the IMAP/POP3 proxy listeners listen (with `proxies: true` and a `proxy.imap` / `proxy.pop3` in the config). */
  proxies: { imap: { host: string; port: number } | undefined; pop3: { host: string; port: number } | undefined };
  adminKey: string;
  /** Every log line written so far (JSON), for assertions that no secret reached the log. */
  logs(): string;
  api(method: string, path: string, body?: unknown, key?: string): Promise<{ status: number; json: any; text: string }>;
  close(): Promise<void>;
}

export async function startMailgateApp(options: { configure?: (config: Config) => Config; reopen?: MailgateApp; outboxWorker?: boolean; watchers?: boolean; relay?: boolean; proxies?: boolean; budgetWindows?: BudgetWindows } = {}): Promise<MailgateApp> {
  const port = await getFreePort();
  const url = `http://127.0.0.1:${port}`;
  let captured = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      captured += chunk.toString();
      callback();
    },
  });
  const services = await openTestServices({
    publicUrl: url,
    logger: createLogger('debug', sink),
    ...(options.configure ? { configure: options.configure } : {}),
    ...(options.budgetWindows ? { budgetWindows: options.budgetWindows } : {}),
    ...(options.reopen ? { cwd: options.reopen.services.cwd, masterKey: options.reopen.services.masterKey } : {}),
  });
  const http = buildHttpServer(services);
  await http.listen({ host: '127.0.0.1', port });
  const worker = options.outboxWorker ? createOutboxWorker(services) : undefined;
  if (worker) {
    services.wakeOutbox = () => worker.wake();
    await worker.start();
  }
  const watchers = options.watchers ? new WatcherManager(services, services.logger.child({ component: 'watchers' }), { leases: services.leases, instance: services.instances, leaseMs: services.config.instances.leaseMs }) : undefined;
  if (watchers) {
    await services.instances.start();
    services.watcherChanged = (name) => watchers.changed(name);
    await watchers.start();
  }
  const proxies = options.proxies ? await startProxyListeners(services, services.logger.child({ component: 'proxy' })) : [];
  const relay = options.relay ? await startRelayListeners(services, services.logger.child({ component: 'relay' })) : undefined;
  const adminKey = options.reopen ? options.reopen.adminKey : (await services.apiKeys.create('test-admin', ['admin'])).key.reveal();
  return {
    url,
    services,
    http,
    adminKey,
    proxies: { imap: proxies.find((l) => l.id === 'proxy.imap')?.address, pop3: proxies.find((l) => l.id === 'proxy.pop3')?.address },
    logs: () => captured,
    async api(method, path, body, key = adminKey) {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: res.status, json, text };
    },
    async close() {
      await stopProxyListeners(proxies);
      await relay?.stop(2000);
      await watchers?.stop();
      if (watchers) await services.instances.stop();
      await worker?.stop(5000);
      // A browser's preconnected sockets never send a request, so close() would wait for Node's 60 s headers timeout.
      const closing = http.close();
      http.server.closeAllConnections();
      await closing;
      await services.close();
    },
  };
}
