// Builds the domain services from an open store and keyring, once, for `serve` and for CLI commands alike.
import { createApiKeyService, type ApiKeyService } from './apikeys/apiKeys.js';
import type { Config } from './config/load.js';
import { CredentialRepository } from './credentials/repository.js';
import { CredentialService } from './credentials/service.js';
import type { Logger } from './log.js';
import { AuthorizationFlow } from './oauth/authorization.js';
import type { Keyring } from './secrets/keyring.js';
import type { Store } from './store/store.js';
import { TokenManager } from './tokens/tokenManager.js';
import { OutboxRepository } from './outbox/repository.js';
import { OutboxService } from './outbox/service.js';
import { SmtpTransports } from './outbox/transports.js';
import { SenderService } from './senders/service.js';
import { ServerRepository } from './servers/repository.js';
import { ServerService } from './servers/service.js';
import { WatcherRepository } from './inbound/repository.js';
import { WatcherService } from './inbound/service.js';
import { Metrics } from './observability/metrics.js';
import { AlertService } from './alerts/alerts.js';
import { AuditLog } from './audit/auditLog.js';
import { AdminAccounts } from './web/adminAccounts.js';
import { ProxyAccounts, RelayAccounts } from './accounts/service.js';
import { ListenerRegistry } from './listeners/registry.js';
import { LeaseRepository } from './instances/leases.js';
import { InstanceRegistry } from './instances/registry.js';
import { SendBudget, type BudgetWindows } from './servers/sendBudget.js';

export interface Services {
  config: Config;
  logger: Logger;
  store: Store;
  keyring: Keyring;
  apiKeys: ApiKeyService;
  credentialRepo: CredentialRepository;
  credentials: CredentialService;
  authorization: AuthorizationFlow;
  tokens: TokenManager;
  serverRepo: ServerRepository;
  servers: ServerService;
  senders: SenderService;
  outbox: OutboxRepository;
  messages: OutboxService;
  transports: SmtpTransports;
  /** Servers' sending limits: what was sent in their windows, and pauses providers imposed (shared by all instances). */
  sendBudget: SendBudget;
  /** Wakes the outbox worker of this process (set by the gateway when it runs one). */
  wakeOutbox: () => void;
  watcherRepo: WatcherRepository;
  watchers: WatcherService;
  /** Tells the running watchers of this process that a definition changed (set by the gateway). */
  watcherChanged: (name: string) => void;
  metrics: Metrics;
  alerts: AlertService;
  audit: AuditLog;
  /** The web UI's admin accounts. */
  admins: AdminAccounts;
  /** Logins of password-only programs at the SMTP relay (each bound to a sender)… */
  relayAccounts: RelayAccounts;
  /** …and at the IMAP/POP3 proxies (each bound to an upstream server). */
  proxyAccounts: ProxyAccounts;
  /** The relay and proxy listeners of this process, their state and sessions (empty outside `serve`). */
  listeners: ListenerRegistry;
  /** The `serve` processes on this database (this process registers only in `serve`)… */
  instances: InstanceRegistry;
  /** …and the leases that give each watcher and the alert loop to one of them. */
  leases: LeaseRepository;
}

/** The redirect URI every provider must know: shown by `credential show`, pasted into the provider's portal. */
export function redirectUriOf(config: Config): string {
  return `${config.publicUrl}/oauth/callback`;
}

/** `budgetWindows`: tests shorten the minute and the day of the sending limits. */
export function createServices(config: Config, logger: Logger, store: Store, keyring: Keyring, options: { budgetWindows?: BudgetWindows } = {}): Services {
  const redirectUri = redirectUriOf(config);
  const credentialRepo = new CredentialRepository(store, keyring);
  const listeners = new ListenerRegistry(store);
  const sendBudget = new SendBudget(store, options.budgetWindows);
  const metrics = new Metrics(store, listeners, sendBudget);
  const tokens = new TokenManager(credentialRepo, logger.child({ component: 'tokens' }), {
    onOutcome: (outcome) => metrics.refreshes.inc({ outcome }),
    onStatusChange: () => services.alerts.nudge(),
    refreshMarginMs: config.tokens.refreshMarginSeconds * 1000,
    reauthorizeLink: (name) => `${config.publicUrl}/credentials/${encodeURIComponent(name)}/connect`,
  });
  const serverRepo = new ServerRepository(store, keyring);
  const transports = new SmtpTransports(tokens, config.outbox.connectionsPerServer);
  const senders = new SenderService(store, serverRepo);
  const outbox = new OutboxRepository(store);
  const watcherRepo = new WatcherRepository(store, keyring);
  const audit = new AuditLog(store);
  const services: Services = {
    config,
    logger,
    store,
    keyring,
    apiKeys: createApiKeyService(store),
    credentialRepo,
    credentials: new CredentialService(credentialRepo, redirectUri, (name) => tokens.forget(name)),
    authorization: new AuthorizationFlow(store, keyring, credentialRepo, redirectUri, logger.child({ component: 'oauth' })),
    tokens,
    serverRepo,
    servers: new ServerService(serverRepo, credentialRepo, (name) => transports.forget(name), sendBudget),
    senders,
    outbox,
    messages: new OutboxService(outbox, senders, config.outbox.maxMessageBytes, () => services.wakeOutbox(), config.outbox.idempotencyKeyMs),
    transports,
    sendBudget,
    wakeOutbox: () => undefined,
    watcherRepo,
    watchers: new WatcherService(watcherRepo, serverRepo, (name) => services.watcherChanged(name)),
    watcherChanged: () => undefined,
    metrics,
    alerts: undefined as unknown as AlertService,
    audit,
    admins: new AdminAccounts(store),
    relayAccounts: new RelayAccounts({ store, audit, logger: logger.child({ component: 'relay-accounts' }), guard: { maxFailures: config.relay.login.maxFailures, lockoutMs: config.relay.login.lockoutMs } }, senders),
    proxyAccounts: new ProxyAccounts({ store, audit, logger: logger.child({ component: 'proxy-accounts' }), guard: { maxFailures: config.proxy.login.maxFailures, lockoutMs: config.proxy.login.lockoutMs } }, serverRepo),
    listeners,
    instances: new InstanceRegistry(store, config.instances.leaseMs),
    leases: new LeaseRepository(store),
  };
  services.alerts = new AlertService(services, logger.child({ component: 'alerts' }));
  return services;
}
