// Every `mailgate` command in one commander program: the bin parses argv with it, and the README test reads its commands and options.
import { Command } from 'commander';
import { VERSION } from '../version.js';
import { registerAccountCommands } from './accounts.js';
import { registerAdminCommands } from './admin.js';
import { registerApiKeyCommands } from './apikey.js';
import { registerBackupCommands, registerTransferCommands } from './backup.js';
import { registerCredentialCommands } from './credential.js';
import { registerMigrateCommand } from './migrate.js';
import { registerPruneCommand } from './prune.js';
import { registerReadyCommand } from './ready.js';
import { registerServerCommands } from './server.js';
import { registerWatcherCommands } from './watcher.js';

// `serve` and `init` load their modules when they run: `serve` alone needs the whole gateway (web UI, relay,
// proxies), which every other verb would otherwise load at start-up, and scripts call the CLI often.
export function buildProgram(): Command {
  const program = new Command('mailgate')
    .description('Self-hosted OAuth2 email gateway for Microsoft 365, Gmail and any OAuth2 mail server')
    .version(VERSION)
    .exitOverride()
    .showHelpAfterError('(run `mailgate --help` for usage)');

  program
    .command('serve')
    .description('run the gateway: web UI, API, OAuth callback, schedulers and workers')
    .option('-c, --config <file>', 'configuration file (default: $MAILGATE_CONFIG, else ./mailgate.yaml if present)')
    .action(async (options: { config?: string }) => (await import('./serve.js')).serveCommand(options));

  program
    .command('init')
    .description('write a starter config and the master key file (mode 0600), and set up the database')
    .option('-c, --config <file>', 'where to write the configuration file', undefined)
    .action(async (options: { config?: string }) =>
      (await import('./init.js')).initCommand(options, (line) => process.stdout.write(`${line}\n`)),
    );

  registerApiKeyCommands(program);
  registerAdminCommands(program);
  registerCredentialCommands(program);
  registerServerCommands(program);
  registerWatcherCommands(program);
  registerAccountCommands(program);
  registerPruneCommand(program);
  registerMigrateCommand(program);
  registerReadyCommand(program);
  registerBackupCommands(program);
  registerTransferCommands(program);
  return program;
}
