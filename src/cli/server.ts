// `mailgate server …`, `mailgate sender …` and `mailgate send`: thin shells over the same services the API uses.
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { ErrorCode, MailgateError } from '../errors.js';
import { parseLimitPairs } from '../servers/limits.js';
import type { ServerView } from '../servers/model.js';
import { withServices, type ConfigOption } from './context.js';
import { collect, collectWhole, CONFIG_OPTION_HELP, printLine, table, type Print } from './format.js';

interface ServerAddOptions extends ConfigOption {
  protocol: string;
  host: string;
  port: string;
  security: string;
  username?: string;
  credential?: string;
  passwordEnv?: string;
  passwordFile?: string;
  tlsCaFile?: string;
  insecure?: boolean;
  limit: string[];
  json?: boolean;
}

export function registerServerCommands(program: Command, print: Print = printLine): void {
  const server = program.command('server').description('SMTP, IMAP and POP3 servers Mailgate talks to');

  server
    .command('add')
    .description('add a server; a password comes from --password-env, --password-file or standard input, never an argument')
    .argument('<name>')
    .requiredOption('--protocol <protocol>', 'smtp | imap | pop3')
    .requiredOption('--host <host>', 'e.g. smtp.office365.com')
    .requiredOption('--port <port>', 'e.g. 587')
    .requiredOption('--security <mode>', 'tls (implicit, 465/993/995) | starttls (587/143/110) | none')
    .option('--username <address>', 'the mailbox to log in as')
    .option('--credential <name>', 'authenticate with this OAuth2 credential (XOAUTH2)')
    .option('--password-env <var>', 'password authentication, the password from this environment variable')
    .option('--password-file <file>', 'password authentication, the password from this file')
    .option('--tls-ca-file <file>', 'PEM of a CA to trust besides the system ones')
    .option('--insecure', 'accept any TLS certificate (tests only)')
    .option('--limit <key=value>', LIMIT_HELP, collectWhole, [] as string[])
    .option('--json', 'print JSON')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action(async (name: string, options: ServerAddOptions) => {
      const password = await readPassword(options);
      const auth = options.credential ? { type: 'oauth2', credential: options.credential } : password !== undefined ? { type: 'password', password } : { type: 'none' };
      const input = {
        name,
        protocol: options.protocol,
        host: options.host,
        port: options.port,
        security: options.security,
        ...(options.username ? { username: options.username } : {}),
        auth,
        ...(options.tlsCaFile ? { tlsCa: readFile(options.tlsCaFile, '--tls-ca-file') } : {}),
        ...(options.insecure ? { tlsRejectUnauthorized: false } : {}),
        ...(options.limit.length ? { limits: parseLimitPairs(options.limit) } : {}),
      };
      await withServices(options, async (services) => {
        const view = await services.servers.add(input);
        if (options.json) return print(JSON.stringify(view, null, 2));
        print(`added ${view.protocol} server ${view.name} (${view.host}:${view.port}, ${view.security}, ${describeAuth(view)})`);
        for (const w of view.warnings) print(`warning: ${w.message}`);
      }, { action: 'server.add', target: name, fields: Object.keys(input).filter((k) => k !== 'name') });
    });

  server
    .command('list')
    .option('--json', 'print JSON')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action((options: ConfigOption & { json?: boolean }) =>
      withServices(options, async (services) => {
        const all = await services.servers.list();
        if (options.json) return print(JSON.stringify(all, null, 2));
        if (all.length === 0) return print('no servers (add one with `mailgate server add` or in mailgate.yaml)');
        for (const line of table([['NAME', 'PROTOCOL', 'ADDRESS', 'SECURITY', 'AUTH', 'SOURCE', 'WARNINGS'], ...all.map((v) => [v.name, v.protocol, `${v.host}:${v.port}`, v.security, describeAuth(v), v.source, String(v.warnings.length || '')])])) print(line);
      }),
    );

  server
    .command('show')
    .argument('<name>')
    .option('--json', 'print JSON')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action((name: string, options: ConfigOption & { json?: boolean }) =>
      withServices(options, async (services) => {
        const view = await services.servers.show(name);
        if (options.json) return print(JSON.stringify(view, null, 2));
        print(`${view.name}: ${view.protocol} ${view.host}:${view.port} ${view.security}, user ${view.username ?? '-'}, ${describeAuth(view)} (from ${view.source})`);
        for (const line of describeLimits(view)) print(line);
        for (const w of view.warnings) print(`warning: ${w.message}`);
      }),
    );

  server
    .command('update')
    .description("change a server's sending limits (its other settings: the API, the web UI or mailgate.yaml)")
    .argument('<name>')
    .requiredOption('--limit <key=value>', LIMIT_HELP, collectWhole, [] as string[])
    .option('--json', 'print JSON')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action((name: string, options: ConfigOption & { limit: string[]; json?: boolean }) =>
      withServices(options, async (services) => {
        const current = await services.servers.show(name);
        const view = await services.servers.update(name, { limits: { ...current.limits, ...parseLimitPairs(options.limit) } });
        if (options.json) return print(JSON.stringify(view, null, 2));
        for (const line of describeLimits(view)) print(line);
      }, { action: 'server.update', target: name, fields: ['limits'] }),
    );

  server
    .command('resume')
    .description('end a pause a provider throttling reply (or a spent daily budget) started, before its time')
    .argument('<name>')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action((name: string, options: ConfigOption) =>
      withServices(options, async (services) => {
        const { resumed } = await services.servers.resume(name);
        print(resumed ? `server ${name} resumed: mail waiting for it goes at once` : `server ${name} was not paused`);
      }, { action: 'server.resume', target: name }),
    );

  server
    .command('remove')
    .argument('<name>')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action((name: string, options: ConfigOption) =>
      withServices(options, async (services) => {
        await services.servers.remove(name);
        print(`removed server ${name}`);
      }, { action: 'server.remove', target: name }),
    );

  server
    .command('test')
    .description('connect, do TLS, authenticate and optionally send a test message; each step with timings, and what a failure means')
    .argument('<name>')
    .option('--send-to <address>', 'also send a test message to this address')
    .option('--from <address>', 'From of the test message (default: the server\'s username)')
    .option('--json', 'print the report as JSON')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action((name: string, options: ConfigOption & { sendTo?: string; from?: string; json?: boolean }) =>
      withServices(options, async (services) => {
        const server = services.serverRepo.resolve(await services.serverRepo.get(name));
        const { testServer } = await import('../servers/serverTest.js');
        const report = await testServer(server, services, {
          ...(options.sendTo ? { sendTo: options.sendTo } : {}),
          ...(options.from ? { from: options.from } : {}),
          ...(options.json ? {} : { onStep: (step) => print(`${step.ok ? 'ok  ' : 'FAIL'} ${step.name.padEnd(8)} ${String(step.ms).padStart(5)} ms  ${step.detail}`) }),
        });
        if (options.json) print(JSON.stringify(report, null, 2));
        else for (const step of report.steps.filter((s) => s.explanation)) print(`\n${step.name}: ${step.explanation!.meaning}\nfix: ${step.explanation!.fix}`);
        if (!report.ok) throw new MailgateError(ErrorCode.SERVER_TEST_FAILED, `server ${name} failed its test (${report.steps.find((s) => !s.ok)?.name ?? 'unknown'} step)`);
        if (!options.json) print(`\nserver ${name} works (${report.totalMs} ms)`);
      }),
    );

  const sender = program.command('sender').description('outbound routes: a primary SMTP server, ordered backups, a default From');
  sender
    .command('add')
    .argument('<name>')
    .requiredOption('--primary <server>', 'the SMTP server tried first')
    .option('--backup <server>', 'a backup SMTP server, in order (repeatable)', collect)
    .requiredOption('--from <address>', 'default From, e.g. "Alarms <alarms@example.com>"')
    .option('--reply-to <address>', 'default Reply-To (e.g. a person instead of the alerts mailbox)')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action((name: string, options: ConfigOption & { primary: string; backup?: string[]; from: string; replyTo?: string }) =>
      withServices(options, async (services) => {
        const view = await services.senders.add({ name, primary: options.primary, backups: options.backup ?? [], from: options.from, ...(options.replyTo ? { replyTo: options.replyTo } : {}) });
        print(`added sender ${view.name}: ${[view.primary, ...view.backups].join(' → ')}, From ${view.from}`);
      }, { action: 'sender.add', target: name }),
    );
  sender
    .command('list')
    .option('--json', 'print JSON')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action((options: ConfigOption & { json?: boolean }) =>
      withServices(options, async (services) => {
        const all = await services.senders.list();
        if (options.json) return print(JSON.stringify(all, null, 2));
        if (all.length === 0) return print('no senders (add one with `mailgate sender add`)');
        for (const line of table([['NAME', 'ROUTE', 'FROM', 'REPLY-TO'], ...all.map((v) => [v.name, [v.primary, ...v.backups].join(' → '), v.from, v.replyTo ?? ''])])) print(line);
      }),
    );
  sender
    .command('remove')
    .argument('<name>')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action((name: string, options: ConfigOption) =>
      withServices(options, async (services) => {
        await services.senders.remove(name);
        print(`removed sender ${name}`);
      }, { action: 'sender.remove', target: name }),
    );

  program
    .command('send')
    .description('put a message into the outbox; a running `mailgate serve` delivers it (use --wait to follow it)')
    .requiredOption('--sender <name>', 'the sender (route) to use')
    .requiredOption('--to <address>', 'recipient (repeatable, or comma-separated)', collectWhole, [] as string[])
    .option('--cc <address>', 'carbon copy (repeatable, or comma-separated)', collectWhole, [] as string[])
    .option('--bcc <address>', 'blind carbon copy (repeatable, or comma-separated)', collectWhole, [] as string[])
    .option('--from <address>', 'another From than the sender\'s (needs Send As rights at the provider)')
    .option('--reply-to <address>', 'Reply-To')
    .requiredOption('--subject <text>', 'subject')
    .option('--text <text>', 'plain-text body')
    .option('--text-file <file>', 'plain-text body from a file (- for standard input)')
    .option('--html-file <file>', 'HTML body from a file')
    .option('--attach <file>', 'attach a file (repeatable)', collectWhole, [] as string[])
    .option('--header <name=value>', 'an extra header (repeatable)', collectWhole, [] as string[])
    .option('--idempotency-key <key>', 'the same key twice sends once')
    .option('--priority <priority>', 'high | normal | low: high goes first when a server\'s sending limits make mail wait')
    .option('--wait [seconds]', 'wait until the message is sent or failed (default 60 s)')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action(async (options: SendOptions) => {
      const body = {
        sender: options.sender,
        // One list text, split like the API splits "a@x, B <b@y>": repeated and comma-separated options alike.
        to: options.to.join(', '),
        ...(options.cc.length ? { cc: options.cc.join(', ') } : {}),
        ...(options.bcc.length ? { bcc: options.bcc.join(', ') } : {}),
        ...(options.from ? { from: options.from } : {}),
        ...(options.replyTo ? { replyTo: options.replyTo } : {}),
        subject: options.subject,
        ...(options.text !== undefined ? { text: options.text } : options.textFile ? { text: options.textFile === '-' ? fs.readFileSync(0, 'utf8') : readFile(options.textFile, '--text-file') } : {}),
        ...(options.htmlFile ? { html: readFile(options.htmlFile, '--html-file') } : {}),
        ...(options.attach.length ? { attachments: options.attach.map((file) => ({ filename: path.basename(file), content: readFileBuffer(file, '--attach').toString('base64') })) } : {}),
        ...(options.header.length ? { headers: Object.fromEntries(options.header.map(splitPair)) } : {}),
        ...(options.idempotencyKey ? { idempotencyKey: options.idempotencyKey } : {}),
        ...(options.priority ? { priority: options.priority } : {}),
      };
      await withServices(options, async (services) => {
        const { view, created } = await services.messages.accept(body, 'cli');
        print(`${created ? 'queued' : 'already accepted (same idempotency key)'}: ${view.id} ${view.messageId}`);
        if (options.wait === undefined) return;
        const deadline = Date.now() + (options.wait === true ? 60 : Number(options.wait)) * 1000;
        for (;;) {
          const now = await services.messages.show(view.id);
          if (now.status === 'sent') return print(`sent via ${now.server}: ${now.response ?? ''}`);
          if (now.status === 'failed') throw new MailgateError(ErrorCode.MESSAGE_FAILED, `message ${view.id} failed: ${now.lastError ?? 'unknown error'}`);
          if (now.status === 'cancelled') throw new MailgateError(ErrorCode.MESSAGE_FAILED, `message ${view.id} was cancelled by an admin`);
          if (Date.now() > deadline) throw new MailgateError(ErrorCode.WAIT_TIMED_OUT, `message ${view.id} is still ${now.status} (attempts ${now.attempts}${now.lastError ? `, last error: ${now.lastError}` : ''}); is \`mailgate serve\` running?`);
          await new Promise((r) => setTimeout(r, 250));
        }
      });
    });
}

interface SendOptions extends ConfigOption {
  sender: string;
  to: string[];
  cc: string[];
  bcc: string[];
  from?: string;
  replyTo?: string;
  subject: string;
  text?: string;
  textFile?: string;
  htmlFile?: string;
  attach: string[];
  header: string[];
  idempotencyKey?: string;
  priority?: string;
  wait?: string | true;
}

const LIMIT_HELP = "a sending limit, repeatable: messagesPerMinute, recipientsPerMinute, messagesPerDay, recipientsPerDay or connections =N, or =none to switch a preset's limit off";

/** The limits that apply (and where from), what is left of them, and a provider's pause. */
function describeLimits(view: ServerView): string[] {
  if (view.protocol !== 'smtp') return [];
  const pairs = (limits: Record<string, number | null | undefined>) => Object.entries(limits).map(([k, v]) => `${k}=${v ?? 'none'}`).join(', ');
  const lines = [`limits: ${pairs(view.effectiveLimits) || 'none'}${view.limitPreset ? ` (preset ${view.limitPreset.name}${Object.keys(view.limits).length ? `, changed: ${pairs(view.limits)}` : ''})` : ''}`];
  if (view.budget) {
    lines.push(`sent: ${view.budget.lastMinute.messages} messages / ${view.budget.lastMinute.recipients} recipients in the last minute, ${view.budget.lastDay.messages} / ${view.budget.lastDay.recipients} in the last 24 hours${Object.keys(view.budget.left).length ? `; left: ${pairs(view.budget.left)}` : ''}`);
    if (view.budget.pause) lines.push(`paused until ${view.budget.pause.until} (${view.budget.pause.limit}): ${view.budget.pause.reason} — \`mailgate server resume ${view.name}\` ends it now`);
  }
  return lines;
}

function describeAuth(view: ServerView): string {
  return view.auth.type === 'oauth2' ? `oauth2 ${view.auth.credential}` : view.auth.type === 'password' ? `password${view.auth.hasPassword ? '' : ' (none set)'}` : 'no auth';
}

function splitPair(pair: string): [string, string] {
  const i = pair.indexOf('=');
  if (i <= 0) throw new MailgateError(ErrorCode.INPUT_INVALID, `--header: expected NAME=VALUE, got ${JSON.stringify(pair)}`);
  return [pair.slice(0, i), pair.slice(i + 1)];
}

function readFileBuffer(file: string, option: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (cause) {
    throw new MailgateError(ErrorCode.INPUT_INVALID, `${option}: cannot read ${file}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`, { cause });
  }
}

function readFile(file: string, option: string): string {
  return readFileBuffer(file, option).toString('utf8');
}

async function readPassword(options: ServerAddOptions): Promise<string | undefined> {
  if (options.passwordEnv) {
    const value = process.env[options.passwordEnv];
    if (!value) throw new MailgateError(ErrorCode.INPUT_INVALID, `--password-env: the environment variable ${options.passwordEnv} is empty or unset`);
    return value;
  }
  if (options.passwordFile) return readFile(options.passwordFile, '--password-file').replace(/\r?\n$/, '');
  if (!options.credential && !process.stdin.isTTY) {
    let text = '';
    for await (const chunk of process.stdin) text += chunk;
    return text.replace(/\r?\n$/, '') || undefined;
  }
  return undefined;
}
