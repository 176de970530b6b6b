// `mailgate backup FILE` and `mailgate restore FILE`: a consistent copy of the SQLite database while serve runs, and its checked return.
import type { Command } from 'commander';
import { backupDatabase, restoreDatabase, type BackupSummary } from '../backup/sqliteBackup.js';
import { readEnvironment } from '../config/environment.js';
import { loadConfig } from '../config/load.js';
import type { ConfigOption } from './context.js';
import { CONFIG_OPTION_HELP, printLine, type Print } from './format.js';

export function registerBackupCommands(program: Command, print: Print = printLine): void {
  program
    .command('backup')
    .description('write a consistent copy of the SQLite database to FILE, also while serve runs (the master key is not in it: back it up apart)')
    .argument('<file>', 'where to write the copy (mode 0600)')
    .option('--force', 'replace FILE if it exists')
    .option('--json', 'print the summary as JSON')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action(async (file: string, options: ConfigOption & { force?: boolean; json?: boolean }) => {
      const summary = await backupDatabase(loadConfig({ env: readEnvironment(), ...(options.config ? { configFile: options.config } : {}) }), file, { overwrite: options.force });
      if (options.json) return print(JSON.stringify(summary, null, 2));
      print(`backed up to ${summary.file}: ${describe(summary)}`);
      print(`the master key is not in the backup: keep a copy of ${summary.masterKey} apart from it`);
    });

  program
    .command('restore')
    .description('replace the SQLite database with a backup, after checking that this master key opens it (stop serve first)')
    .argument('<file>', 'a file written by `mailgate backup`')
    .option('--json', 'print the summary as JSON')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action(async (file: string, options: ConfigOption & { json?: boolean }) => {
      const summary = await restoreDatabase(loadConfig({ env: readEnvironment(), ...(options.config ? { configFile: options.config } : {}) }), file);
      if (options.json) return print(JSON.stringify(summary, null, 2));
      print(`restored ${summary.file} from ${file}: ${describe(summary)}`);
      if (summary.previous) print(`the database it replaced is kept as ${summary.previous}`);
      print('start `mailgate serve` again: it continues from the backup (messages sent since were sent; the outbox resends what the backup had waiting)');
    });
}

function describe(summary: BackupSummary): string {
  return `${summary.credentials} credential${summary.credentials === 1 ? '' : 's'}, ${summary.messages} outbox message${summary.messages === 1 ? '' : 's'}, ${(summary.bytes / 1024).toFixed(0)} KB`;
}
