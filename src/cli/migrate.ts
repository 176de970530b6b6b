// `mailgate migrate`: brings the database's schema up to date and says what it did (serve and every command do the same on start).
import type { Command } from 'commander';
import { databaseLabel, openStore } from '../store/store.js';
import { CONFIG_OPTION_HELP, printLine, type Print } from './format.js';
import { loadCommandConfig } from './context.js';

export function registerMigrateCommand(program: Command, print: Print = printLine): void {
  program
    .command('migrate')
    .description('apply the database migrations this Mailgate brings (before starting several instances on a new version, or to see the schema)')
    .option('--json', 'print what was applied as JSON')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action(async (options: { config?: string; json?: boolean }) => {
      const config = loadCommandConfig(options);
      // The master key is not needed: migrations change the schema, never a sealed value.
      const store = await openStore(config.database);
      try {
        const { applied, current } = store.migration;
        const database = databaseLabel(config.database);
        if (options.json) return print(JSON.stringify({ database, applied, current }, null, 2));
        if (applied.length === 0) return print(`${database}: the schema is current (${current}); nothing to do`);
        print(`${database}: applied ${applied.length} migration${applied.length === 1 ? '' : 's'}, the schema is now at ${current}`);
        for (const name of applied) print(`  ${name}`);
      } finally {
        await store.close();
      }
    });
}
