// Real services on a temporary SQLite store with a random master key, for tests that call the HTTP app in process.
import { loadConfig, type Config } from '../../src/config/load.js';
import { buildHttpServer } from '../../src/http/server.js';
import { createLogger, type Logger } from '../../src/log.js';
import { generateMasterKey } from '../../src/secrets/keyring.js';
import { unlockKeyring } from '../../src/secrets/masterKey.js';
import { createServices, type Services } from '../../src/services.js';
import { openStore } from '../../src/store/store.js';
import type { BudgetWindows } from '../../src/servers/sendBudget.js';
import { tempDir } from './cli.js';
import { testDatabase } from './postgres.js';

export interface TestServices extends Services {
  /** The directory holding ./data: pass it (with masterKey) to open the same installation again, as after a restart. */
  cwd: string;
  masterKey: string;
  close(): Promise<void>;
}

export interface TestServicesOptions {
  publicUrl?: string;
  logger?: Logger;
  configure?: (config: Config) => Config;
  cwd?: string;
  masterKey?: string;
  /** Shorter minute and day windows for the servers' sending limits. */
  budgetWindows?: BudgetWindows;
}

export async function openTestServices(options: TestServicesOptions = {}): Promise<TestServices> {
  const cwd = options.cwd ?? tempDir();
  const masterKey = options.masterKey ?? generateMasterKey();
  let config = loadConfig({ env: { MAILGATE_MASTER_KEY: masterKey, ...(options.publicUrl ? { MAILGATE_PUBLIC_URL: options.publicUrl } : {}) }, cwd });
  config = { ...config, database: await testDatabase(cwd, config.database) };
  if (options.configure) config = options.configure(config);
  const store = await openStore(config.database);
  const { keyring } = await unlockKeyring(config.masterKey, store);
  const services = createServices(config, options.logger ?? createLogger('silent'), store, keyring, options.budgetWindows ? { budgetWindows: options.budgetWindows } : {});
  // The same object, extended: services hold closures over it (wakeOutbox, watcherChanged are set later).
  return Object.assign(services, { cwd, masterKey, close: () => store.close() });
}

export { buildHttpServer };
