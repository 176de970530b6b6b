// `mailgate backup`/`restore` (a consistent copy of the SQLite database, and its checked return) and `export`/`import` (an installation between SQLite and PostgreSQL).
import type { Command } from 'commander';
import { backupDatabase, restoreDatabase, type BackupSummary } from '../backup/sqliteBackup.js';
import { exportInstallation, importInstallation, type TransferSummary } from '../backup/transfer.js';
import { loadCommandConfig, type ConfigOption } from './context.js';
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
      const summary = await backupDatabase(loadCommandConfig(options), file, { overwrite: options.force });
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
      const summary = await restoreDatabase(loadCommandConfig(options), file);
      if (options.json) return print(JSON.stringify(summary, null, 2));
      print(`restored ${summary.file} from ${file}: ${describe(summary)}`);
      if (summary.previous) print(`the database it replaced is kept as ${summary.previous}`);
      print('start `mailgate serve` again: it continues from the backup (messages sent since were sent; the outbox resends what the backup had waiting)');
    });
}

/** `mailgate export FILE` / `mailgate import FILE`. */
export function registerTransferCommands(program: Command, print: Print = printLine): void {
  program
    .command('export')
    .description('write the whole installation (SQLite or PostgreSQL) to FILE, secrets still sealed, to import elsewhere with the same master key')
    .argument('<file>', 'where to write it (JSON lines, mode 0600)')
    .option('--force', 'replace FILE if it exists')
    .option('--json', 'print the summary as JSON')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action(async (file: string, options: ConfigOption & { force?: boolean; json?: boolean }) => {
      const summary = await exportInstallation(loadCommandConfig(options), file, { overwrite: options.force });
      if (options.json) return print(JSON.stringify(summary, null, 2));
      print(`exported the ${summary.database} database to ${summary.file}: ${describeRows(summary)}`);
      print(`its secrets stay sealed${summary.keyId ? ` with master key ${summary.keyId}` : ''}: importing needs that key; the file holds addresses and message bodies, keep it private`);
    });

  program
    .command('import')
    .description('read a file written by `mailgate export` into this installation\'s database (SQLite or PostgreSQL), which must be empty (stop serve first)')
    .argument('<file>', 'a file written by `mailgate export`')
    .option('--force', 'replace everything in a database that is not empty')
    .option('--json', 'print the summary as JSON')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action(async (file: string, options: ConfigOption & { force?: boolean; json?: boolean }) => {
      const summary = await importInstallation(loadCommandConfig(options), file, { replace: options.force });
      if (options.json) return print(JSON.stringify(summary, null, 2));
      print(`imported ${summary.file} into the ${summary.database} database: ${describeRows(summary)}`);
      print('start `mailgate serve`: credentials keep working without a new sign-in; people sign in to the web UI again');
    });
}

function describeRows(summary: TransferSummary): string {
  const n = (table: string, one: string, many: string) => `${summary.rows[table] ?? 0} ${(summary.rows[table] ?? 0) === 1 ? one : many}`;
  return [n('credentials', 'credential', 'credentials'), n('servers', 'server', 'servers'), n('senders', 'sender', 'senders'), n('watchers', 'watcher', 'watchers'), n('outbox', 'outbox message', 'outbox messages'), n('api_keys', 'API key', 'API keys')].join(', ');
}

function describe(summary: BackupSummary): string {
  return `${summary.credentials} credential${summary.credentials === 1 ? '' : 's'}, ${summary.messages} outbox message${summary.messages === 1 ? '' : 's'}, ${(summary.bytes / 1024).toFixed(0)} KB`;
}
