// `mailgate apikey create|list|revoke`: manages API keys directly in the store (no master key needed: keys are hashed, not sealed).
import type { Command } from 'commander';
import { createApiKeyService, type ApiKeyService } from '../apikeys/apiKeys.js';
import { openStore } from '../store/store.js';
import { collect, table, type Print } from './format.js';
import { loadCommandConfig } from './context.js';

export interface ApiKeyCommandOptions {
  config?: string;
}

export function registerApiKeyCommands(program: Command, print: Print = (line) => process.stdout.write(`${line}\n`)): void {
  const apikey = program.command('apikey').description('create, list and revoke the API keys that applications use (Authorization: Bearer <key>)');

  apikey
    .command('create')
    .description('create an API key and print it once (only its hash is stored)')
    .requiredOption('--name <name>', 'a name for the key, e.g. the application that uses it')
    .requiredOption('--scope <scope>', 'admin | send | send:<sender> | metrics | token:<credential> | token:* (repeat, or separate with commas)', collect, [] as string[])
    .option('-c, --config <file>', 'configuration file (default: $MAILGATE_CONFIG, else ./mailgate.yaml if present)')
    .action((options: ApiKeyCommandOptions & { name: string; scope: string[] }) =>
      withApiKeys(options, async (apiKeys) => {
        const created = await apiKeys.create(options.name, options.scope);
        // The key alone on the first line, so `mailgate apikey create … | head -1` captures it for a script.
        print(created.key.reveal());
        print(`created API key "${created.name}" with scope${created.scopes.length > 1 ? 's' : ''} ${created.scopes.join(', ')}: store it now, it cannot be shown again`);
      }),
    );

  apikey
    .command('list')
    .description('list API keys: name, scopes, created, last used, revoked (never the key)')
    .option('--json', 'print JSON')
    .option('-c, --config <file>', 'configuration file (default: $MAILGATE_CONFIG, else ./mailgate.yaml if present)')
    .action((options: ApiKeyCommandOptions & { json?: boolean }) =>
      withApiKeys(options, async (apiKeys) => {
        const keys = await apiKeys.list();
        if (options.json) return print(JSON.stringify(keys, null, 2));
        if (keys.length === 0) return print('no API keys (create one with `mailgate apikey create --name NAME --scope SCOPE`)');
        const rows = keys.map((k) => [k.name, k.scopes.join(','), k.createdAt, k.lastUsedAt ?? '-', k.revokedAt ? `revoked ${k.revokedAt}` : 'active']);
        for (const line of table([['NAME', 'SCOPES', 'CREATED', 'LAST USED', 'STATUS'], ...rows])) print(line);
      }),
    );

  apikey
    .command('revoke')
    .description('revoke an API key: requests with it are refused from now on')
    .argument('<name>', 'the name of the key')
    .option('-c, --config <file>', 'configuration file (default: $MAILGATE_CONFIG, else ./mailgate.yaml if present)')
    .action((name: string, options: ApiKeyCommandOptions) =>
      withApiKeys(options, async (apiKeys) => {
        const revoked = await apiKeys.revoke(name);
        print(`revoked API key "${revoked.name}" (at ${revoked.revokedAt})`);
      }),
    );
}

async function withApiKeys(options: ApiKeyCommandOptions, run: (apiKeys: ApiKeyService) => Promise<void>): Promise<void> {
  const config = loadCommandConfig(options);
  const store = await openStore(config.database);
  try {
    await run(createApiKeyService(store));
  } finally {
    await store.close();
  }
}
