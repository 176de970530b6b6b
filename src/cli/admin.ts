// `mailgate admin add|password|list|setup-link`: the web UI's admin accounts, managed on the server itself (passwords from env, file or stdin).
import type { Command } from 'commander';
import { ErrorCode, MailgateError } from '../errors.js';
import { openStore } from '../store/store.js';
import { AdminAccounts } from '../web/adminAccounts.js';
import { table, type Print } from './format.js';
import { readSecret } from './secretInput.js';
import { loadCommandConfig } from './context.js';

interface AdminOptions {
  config?: string;
  passwordEnv?: string;
  passwordFile?: string;
}

const CONFIG_OPTION = ['-c, --config <file>', 'configuration file (default: $MAILGATE_CONFIG, else ./mailgate.yaml if present)'] as const;

export function registerAdminCommands(program: Command, print: Print = (line) => process.stdout.write(`${line}\n`)): void {
  const admin = program.command('admin').description('manage the web UI\'s admin accounts (passwords come from --password-env, --password-file or standard input)');

  admin
    .command('add')
    .description('create an admin account')
    .argument('<username>', 'the name to sign in with')
    .option('--password-env <var>', 'read the password from this environment variable')
    .option('--password-file <file>', 'read the password from this file')
    .option(...CONFIG_OPTION)
    .action((username: string, options: AdminOptions) =>
      withAccounts(options, async (accounts) => {
        await accounts.create(username, await passwordFrom(options));
        print(`created admin ${username}: sign in at the web UI`);
      }),
    );

  admin
    .command('password')
    .description('set an admin\'s password (signs that admin out everywhere)')
    .argument('<username>', 'the admin')
    .option('--password-env <var>', 'read the password from this environment variable')
    .option('--password-file <file>', 'read the password from this file')
    .option(...CONFIG_OPTION)
    .action((username: string, options: AdminOptions) =>
      withAccounts(options, async (accounts) => {
        await accounts.setPassword(username, await passwordFrom(options));
        print(`changed the password of ${username}; their sessions were ended`);
      }),
    );

  admin
    .command('list')
    .description('list admin accounts (never a password)')
    .option('--json', 'print JSON')
    .option(...CONFIG_OPTION)
    .action((options: AdminOptions & { json?: boolean }) =>
      withAccounts(options, async (accounts) => {
        const admins = await accounts.list();
        if (options.json) return print(JSON.stringify(admins.map(({ id: _id, ...rest }) => rest), null, 2));
        if (admins.length === 0) return print('no admin yet: run `mailgate admin setup-link`, or `mailgate admin add NAME`');
        for (const line of table([['USERNAME', 'CREATED', 'LAST SIGN-IN'], ...admins.map((a) => [a.username, a.createdAt, a.lastLoginAt ?? '-'])])) print(line);
      }),
    );

  admin
    .command('setup-link')
    .description('print a new one-time link that creates the first admin in the browser (only while there is none)')
    .option(...CONFIG_OPTION)
    .action((options: AdminOptions) =>
      withAccounts(options, async (accounts, publicUrl) => {
        const outcome = await accounts.ensureFirstAdmin(undefined);
        if (outcome.kind !== 'setup') throw new MailgateError(ErrorCode.ALREADY_EXISTS, 'an admin exists already: sign in, or set a password with `mailgate admin password NAME`');
        print(`${publicUrl}/setup?token=${outcome.token}`);
        print(`open it in a browser before ${outcome.expiresAt}; it works once`);
      }),
    );
}

async function passwordFrom(options: AdminOptions): Promise<string> {
  const password = await readSecret({ env: { variable: options.passwordEnv, option: '--password-env' }, file: { path: options.passwordFile, option: '--password-file' } });
  if (!password) throw new MailgateError(ErrorCode.INPUT_INVALID, 'password: none given: use --password-env VAR, --password-file FILE, or pipe it to standard input');
  return password;
}

async function withAccounts(options: AdminOptions, run: (accounts: AdminAccounts, publicUrl: string) => Promise<void>): Promise<void> {
  const config = loadCommandConfig(options);
  const store = await openStore(config.database);
  try {
    await run(new AdminAccounts(store), config.publicUrl);
  } finally {
    await store.close();
  }
}
