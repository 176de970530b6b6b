// `mailgate relay-account …` and `mailgate proxy-account …`: local accounts for programs that only know a password, over the same services the API uses.
import type { Command } from 'commander';
import { programSettings, settingsLines, type ProgramProtocol } from '../accounts/programSettings.js';
import type { PasswordChoice } from '../accounts/service.js';
import type { ProxyAccountView, RelayAccountView, WithPassword } from '../accounts/model.js';
import { ErrorCode, MailgateError } from '../errors.js';
import { ListenerRegistry } from '../listeners/registry.js';
import type { Services } from '../services.js';
import { withServices, type ConfigOption } from './context.js';
import { collect, CONFIG_OPTION_HELP, printLine, table, type Print } from './format.js';
import { readSecret } from './secretInput.js';

interface PasswordOptions extends ConfigOption {
  passwordEnv?: string;
  passwordFile?: string;
  generatePassword?: boolean;
  json?: boolean;
}

/** One password source: --generate-password, --password-env, --password-file, else standard input (never an argument: `ps` shows those). */
async function passwordChoice(options: PasswordOptions): Promise<PasswordChoice> {
  const given = [options.passwordEnv && '--password-env', options.passwordFile && '--password-file', options.generatePassword && '--generate-password'].filter(Boolean);
  if (given.length > 1) throw new MailgateError(ErrorCode.INPUT_INVALID, `${given.join(', ')}: give only one way to set the password`);
  if (options.generatePassword) return { kind: 'generate' };
  const password = await readSecret({ env: { variable: options.passwordEnv, option: '--password-env' }, file: { path: options.passwordFile, option: '--password-file' } });
  if (password === undefined) {
    throw new MailgateError(ErrorCode.INPUT_INVALID, 'password: none given; use --generate-password (recommended), --password-env VAR, --password-file FILE, or pipe it on standard input');
  }
  return { kind: 'chosen', password };
}

/** The audit's field names for a password choice (never the value). */
const passwordField = (choice: PasswordChoice) => (choice.kind === 'generate' ? 'generatePassword' : 'password');

function addPasswordOptions(command: Command): Command {
  return command
    .option('--generate-password', 'let Mailgate make a strong password and print it once (recommended)')
    .option('--password-env <var>', 'the password from this environment variable')
    .option('--password-file <file>', 'the password from this file (without either option: standard input)')
    .option('--json', 'print JSON')
    .option('-c, --config <file>', CONFIG_OPTION_HELP);
}

/** The password (once, alone on its line, when generated) and what to type into the program for each listener. */
async function printResult(print: Print, services: Services, protocol: ProgramProtocol, result: WithPassword<RelayAccountView | ProxyAccountView>, headline: string, json: boolean | undefined): Promise<void> {
  const snapshot = await ListenerRegistry.readSnapshot(services.store);
  const settings = programSettings(services.config, protocol, result.account.name, snapshot?.listeners ?? []);
  const generated = result.generatedPassword;
  if (json) return print(JSON.stringify({ ...result.account, ...(generated !== undefined ? { password: generated } : {}), settings }, null, 2));
  print(headline);
  if (generated !== undefined) {
    print(`password: ${generated}`);
    print('store it now: it cannot be shown again (Mailgate keeps only a hash)');
  }
  if (settings.length === 0) {
    const key = protocol === 'smtp' ? 'relay.listeners' : `proxy.${protocol}`;
    return print(`no ${protocol.toUpperCase()} listener is configured yet: add ${key} to mailgate.yaml and restart \`mailgate serve\`; then the program logs in as ${result.account.name}`);
  }
  print('in the program, type:');
  for (const line of settingsLines(settings, generated === undefined ? '(the password you set)' : '(the one printed above)')) print(line);
}

export function registerAccountCommands(program: Command, print: Print = printLine): void {
  // ---- relay accounts ------------------------------------------------------------------------------------------

  const relay = program.command('relay-account').description('accounts for programs that send through the local SMTP relay with a password');

  addPasswordOptions(
    relay
      .command('add')
      .description('add a relay account bound to a sender; its password comes from --generate-password, --password-env, --password-file or standard input')
      .argument('<name>', 'the username the program logs in with')
      .requiredOption('--sender <sender>', 'the sender (route and default From) its mail goes out through')
      .option('--allow-from <address>', 'another From it may use: an address or @domain (repeatable, or comma-separated)', collect, [] as string[]),
  ).action(async (name: string, options: PasswordOptions & { sender: string; allowFrom: string[] }) => {
    const choice = await passwordChoice(options);
    const input = { name, sender: options.sender, ...(options.allowFrom.length ? { allowFrom: options.allowFrom } : {}), ...(choice.kind === 'generate' ? { generatePassword: true } : { password: choice.password }) };
    await withServices(options, async (services) => {
      const result = await services.relayAccounts.add(input);
      const also = result.account.allowFrom.length ? `; may also send as ${result.account.allowFrom.join(', ')}` : '';
      await printResult(print, services, 'smtp', result, `added relay account ${name}: sends through ${result.account.sender}${also}`, options.json);
    }, { action: 'relay-account.add', target: name, fields: ['sender', ...(options.allowFrom.length ? ['allowFrom'] : []), passwordField(choice)] });
  });

  relay
    .command('list')
    .option('--json', 'print JSON')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action((options: ConfigOption & { json?: boolean }) =>
      withServices(options, async (services) => {
        const all = await services.relayAccounts.list();
        if (options.json) return print(JSON.stringify(all, null, 2));
        if (all.length === 0) return print('no relay accounts (add one with `mailgate relay-account add NAME --sender SENDER --generate-password`)');
        for (const line of table([['NAME', 'SENDER', 'ALSO FROM', 'PASSWORD', 'LAST LOGIN'], ...all.map((a) => [a.name, a.sender, a.allowFrom.join(',') || '-', a.passwordKind, a.lastLoginAt ?? 'never'])])) print(line);
      }),
    );

  relay
    .command('show')
    .argument('<name>')
    .option('--json', 'print JSON')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action((name: string, options: ConfigOption & { json?: boolean }) =>
      withServices(options, async (services) => {
        const view = await services.relayAccounts.show(name);
        await printResult(print, services, 'smtp', { account: view, generatedPassword: undefined }, `${view.name}: sends through ${view.sender}${view.allowFrom.length ? `, may also send as ${view.allowFrom.join(', ')}` : ''}; ${view.passwordKind} password; last login ${view.lastLoginAt ?? 'never'}`, options.json);
      }),
    );

  addPasswordOptions(relay.command('password').description('give a relay account a new password (the old one stops working at once)').argument('<name>')).action(async (name: string, options: PasswordOptions) => {
    const choice = await passwordChoice(options);
    await withServices(options, async (services) => {
      const result = await services.relayAccounts.setPassword(name, choice);
      await printResult(print, services, 'smtp', result, `new password for relay account ${name}: the old one no longer works`, options.json);
    }, { action: 'relay-account.password', target: name, fields: [passwordField(choice)] });
  });

  relay
    .command('remove')
    .argument('<name>')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action((name: string, options: ConfigOption) =>
      withServices(options, async (services) => {
        await services.relayAccounts.remove(name);
        print(`removed relay account ${name}: programs logging in as it are refused from now on`);
      }, { action: 'relay-account.remove', target: name }),
    );

  // ---- proxy accounts ------------------------------------------------------------------------------------------

  const proxy = program.command('proxy-account').description('accounts for programs that read mail through the local IMAP or POP3 proxy with a password');

  /** The listener kind of a proxy account: its server's protocol. */
  const protocolOf = async (services: Services, server: string): Promise<ProgramProtocol> => ((await services.serverRepo.find(server))?.protocol === 'pop3' ? 'pop3' : 'imap');

  addPasswordOptions(
    proxy
      .command('add')
      .description('add a proxy account bound to an IMAP or POP3 server with an OAuth2 credential; password as for relay-account add')
      .argument('<name>', 'the username the program logs in with')
      .requiredOption('--server <server>', 'the IMAP or POP3 server (with an OAuth2 credential) the proxy logs in to'),
  ).action(async (name: string, options: PasswordOptions & { server: string }) => {
    const choice = await passwordChoice(options);
    const input = { name, server: options.server, ...(choice.kind === 'generate' ? { generatePassword: true } : { password: choice.password }) };
    await withServices(options, async (services) => {
      const result = await services.proxyAccounts.add(input);
      await printResult(print, services, await protocolOf(services, result.account.server), result, `added proxy account ${name}: reads the mailbox of server ${result.account.server}`, options.json);
    }, { action: 'proxy-account.add', target: name, fields: ['server', passwordField(choice)] });
  });

  proxy
    .command('list')
    .option('--json', 'print JSON')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action((options: ConfigOption & { json?: boolean }) =>
      withServices(options, async (services) => {
        const all = await services.proxyAccounts.list();
        if (options.json) return print(JSON.stringify(all, null, 2));
        if (all.length === 0) return print('no proxy accounts (add one with `mailgate proxy-account add NAME --server SERVER --generate-password`)');
        for (const line of table([['NAME', 'SERVER', 'PASSWORD', 'LAST LOGIN'], ...all.map((a) => [a.name, a.server, a.passwordKind, a.lastLoginAt ?? 'never'])])) print(line);
      }),
    );

  proxy
    .command('show')
    .argument('<name>')
    .option('--json', 'print JSON')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action((name: string, options: ConfigOption & { json?: boolean }) =>
      withServices(options, async (services) => {
        const view = await services.proxyAccounts.show(name);
        await printResult(print, services, await protocolOf(services, view.server), { account: view, generatedPassword: undefined }, `${view.name}: reads through server ${view.server}; ${view.passwordKind} password; last login ${view.lastLoginAt ?? 'never'}`, options.json);
      }),
    );

  addPasswordOptions(proxy.command('password').description('give a proxy account a new password (the old one stops working at once)').argument('<name>')).action(async (name: string, options: PasswordOptions) => {
    const choice = await passwordChoice(options);
    await withServices(options, async (services) => {
      const result = await services.proxyAccounts.setPassword(name, choice);
      await printResult(print, services, await protocolOf(services, result.account.server), result, `new password for proxy account ${name}: the old one no longer works`, options.json);
    }, { action: 'proxy-account.password', target: name, fields: [passwordField(choice)] });
  });

  proxy
    .command('remove')
    .argument('<name>')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action((name: string, options: ConfigOption) =>
      withServices(options, async (services) => {
        await services.proxyAccounts.remove(name);
        print(`removed proxy account ${name}: programs logging in as it are refused from now on (sessions already open run on until they close)`);
      }, { action: 'proxy-account.remove', target: name }),
    );
}
