// `mailgate prune`: applies the retention settings now (serve does the same every hour), for cron or before a backup.
import type { Command } from 'commander';
import { prune } from '../retention/prune.js';
import { withServices, type ConfigOption } from './context.js';
import { CONFIG_OPTION_HELP, printLine, type Print } from './format.js';

export function registerPruneCommand(program: Command, print: Print = printLine): void {
  program
    .command('prune')
    .description('drop old message bodies and delete old rows and audit entries now, as the retention settings say (serve does it hourly)')
    .option('--json', 'print the counts as JSON')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action((options: ConfigOption & { json?: boolean }) =>
      withServices(options, async (services) => {
        const report = await prune(services.store, services.config.retention);
        if (options.json) return print(JSON.stringify(report, null, 2));
        print(`message bodies dropped: ${report.bodiesDropped}`);
        print(`messages deleted: ${report.messagesDeleted}`);
        print(`inbound deliveries deleted: ${report.inboundDeleted} (POP3 rows cleared of subject and sender: ${report.inboundCleared})`);
        print(`audit entries deleted: ${report.auditDeleted}`);
      }, { action: 'retention.prune' }),
    );
}
