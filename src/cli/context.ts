// Opens configuration, store and keyring for one CLI command, runs it with the same services `serve` uses, and closes them.
import { readEnvironment } from '../config/environment.js';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../log.js';
import { unlockKeyring } from '../secrets/masterKey.js';
import { createServices, type Services } from '../services.js';
import { openStore } from '../store/store.js';

export interface ConfigOption {
  config?: string;
}

export async function withServices<T>(options: ConfigOption, run: (services: Services) => Promise<T>): Promise<T> {
  const config = loadConfig({ env: readEnvironment(), ...(options.config ? { configFile: options.config } : {}) });
  // CLI output is for people; logs go to stderr and only when something is wrong.
  const logger = createLogger(config.logLevel === 'debug' || config.logLevel === 'trace' ? config.logLevel : 'warn', process.stderr);
  const store = await openStore(config.database);
  try {
    const { keyring, warnings } = await unlockKeyring(config.masterKey, store);
    for (const warning of warnings) process.stderr.write(`warning: ${warning}\n`);
    return await run(createServices(config, logger, store, keyring));
  } finally {
    await store.close();
  }
}
