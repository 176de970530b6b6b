// `mailgate init`: writes a starter config and the master key file (mode 0600), and sets up the store.
import fs from 'node:fs';
import path from 'node:path';
import { DEFAULT_CONFIG_FILE, loadConfig } from '../config/load.js';
import { readEnvironment } from '../config/environment.js';
import { STARTER_CONFIG } from '../config/starter.js';
import { unlockKeyring } from '../secrets/masterKey.js';
import { databaseLabel, openStore } from '../store/store.js';

export interface InitOptions {
  config?: string;
}

export async function initCommand(options: InitOptions, print: (line: string) => void): Promise<void> {
  const env = readEnvironment();
  const configFile = path.resolve(options.config ?? env.MAILGATE_CONFIG ?? DEFAULT_CONFIG_FILE);
  if (fs.existsSync(configFile)) {
    print(`config file ${configFile} exists already: left as it is`);
  } else {
    fs.mkdirSync(path.dirname(configFile), { recursive: true });
    fs.writeFileSync(configFile, STARTER_CONFIG, { flag: 'wx', mode: 0o640 });
    print(`wrote the starter config ${configFile}`);
  }

  // Relative paths in the config are relative to the directory Mailgate runs in, as with `serve`.
  const config = loadConfig({ env, configFile });
  const store = await openStore(config.database);
  try {
    const { keyring, createdKeyFile, warnings } = await unlockKeyring(config.masterKey, store);
    warnings.forEach((w) => print(`warning: ${w}`));
    if (config.masterKey.kind === 'env') print(`master key from MAILGATE_MASTER_KEY (key id ${keyring.current.id})`);
    else if (createdKeyFile) print(`created the master key file ${config.masterKey.file} (mode 0600, key id ${keyring.current.id}): back it up`);
    else print(`master key file ${config.masterKey.file} exists already (key id ${keyring.current.id}): left as it is`);
    print(`database ready: ${config.database.kind === 'sqlite' ? config.database.file : databaseLabel(config.database)}`);
    // A path inside the current directory is shown short; any other is shown whole (not as ../../etc/…).
    const relative = path.relative(process.cwd(), configFile);
    const shown = relative && !relative.startsWith('..') ? relative : configFile;
    print(`next: mailgate serve --config ${shown}   (web UI and API on ${config.publicUrl})`);
  } finally {
    await store.close();
  }
}
