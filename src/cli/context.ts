// Opens configuration, store and keyring for one CLI command, runs it with the same services `serve` uses, and closes them.
import { readEnvironment } from '../config/environment.js';
import { loadConfig, type Config } from '../config/load.js';
import { createLogger } from '../log.js';
import { unlockKeyring } from '../secrets/masterKey.js';
import type { Services } from '../services.js';
import { openStore } from '../store/store.js';
import { cliActor } from '../audit/auditLog.js';
import { syncConfigFile as applyConfigFile } from '../configSync.js';
import { isMailgateError } from '../errors.js';

export interface ConfigOption {
  config?: string;
}

/** The configuration a command runs with: the environment, and the file `--config` names (else the default). */
export function loadCommandConfig(options: ConfigOption): Config {
  return loadConfig({ env: readEnvironment(), ...(options.config ? { configFile: options.config } : {}) });
}

/**
 * Opens the services, runs `run`, closes them. With `audit`, a successful run is recorded in the audit log as done
 * by the operating-system user (field names only).
 */
export async function withServices<T>(options: ConfigOption, run: (services: Services) => Promise<T>, audit?: { action: string; target?: string; fields?: string[] }): Promise<T> {
  const config = loadCommandConfig(options);
  // CLI output is for people; logs go to stderr and only when something is wrong.
  const logger = createLogger(config.logLevel === 'debug' || config.logLevel === 'trace' ? config.logLevel : 'warn', process.stderr);
  const store = await openStore(config.database);
  try {
    const { keyring, warnings } = await unlockKeyring(config.masterKey, store);
    for (const warning of warnings) process.stderr.write(`warning: ${warning}\n`);
    // Loaded here, not at start-up: `mailgate --help` and verbs that fail early need none of it.
    const { createServices } = await import('../services.js');
    const services = createServices(config, logger, store, keyring);
    await syncConfigFile(services);
    const result = await run(services);
    if (audit) await services.audit.record(cliActor(), audit.action, audit.target, { fields: audit.fields ?? [] });
    return result;
  } finally {
    await store.close();
  }
}

/**
 * The config file's servers and senders, as the file says now, before any command: `server list` and `sender add
 * --primary <a file server>` must see them without a `serve` first. When what the file names does not match the
 * store, every problem is printed as a warning and nothing of the file is applied: the command may be the fix
 * (`server add`, `credential add`, `relay-account remove`); `serve` refuses to start with the same list (exit 2).
 */
async function syncConfigFile(services: Services): Promise<void> {
  try {
    for (const notice of await applyConfigFile(services)) process.stderr.write(`warning: ${notice.key}: ${notice.text}\n`);
  } catch (err) {
    const text = isMailgateError(err) && err.code === 'CONFIG_INVALID' ? err.message : `the config file's servers and senders are not applied: ${err instanceof Error ? err.message : String(err)}`;
    process.stderr.write(`warning: ${text}\n`);
  }
}
