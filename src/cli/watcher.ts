// `mailgate watcher …` and `mailgate status`: thin shells over the watcher service and a one-screen summary (credentials, outbox, watchers, relay and proxy listeners) for people and cron.
import type { Command } from 'commander';
import { currentConditions } from '../alerts/conditions.js';
import { ago, instanceOverview, type InstanceOverview } from '../instances/overview.js';
import { cliActor } from '../audit/auditLog.js';
import { ErrorCode, MailgateError } from '../errors.js';
import { ListenerRegistry, type ListenerSnapshot, type ListenerStatus } from '../listeners/registry.js';
import { withServices, type ConfigOption } from './context.js';
import { CONFIG_OPTION_HELP, printLine, table, type Print } from './format.js';

export function registerWatcherCommands(program: Command, print: Print = printLine): void {
  const watcher = program.command('watcher').description('inbound mailboxes (IMAP or POP3) delivered to webhooks');

  watcher
    .command('add')
    .argument('<name>')
    .requiredOption('--server <name>', 'an imap or pop3 server')
    .requiredOption('--webhook-url <url>', 'where each message is POSTed')
    .requiredOption('--webhook-secret-env <var>', 'the signing secret, from this environment variable (at least 16 characters)')
    .option('--folder <folder>', 'IMAP folder (default INBOX)')
    .option('--mode <mode>', 'idle (default for IMAP, with a polling fallback) | poll')
    .option('--poll-interval <seconds>', 'seconds between polls (default 60)')
    .option('--after <action>', 'seen (default) | delete | move:<folder>')
    .option('--filter-from <text>', 'only messages whose From contains this')
    .option('--filter-subject <regex>', 'only messages whose Subject matches this')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action((name: string, o: ConfigOption & { server: string; webhookUrl: string; webhookSecretEnv: string; folder?: string; mode?: string; pollInterval?: string; after?: string; filterFrom?: string; filterSubject?: string }) => {
      const secret = process.env[o.webhookSecretEnv];
      if (!secret) throw new MailgateError(ErrorCode.INPUT_INVALID, `--webhook-secret-env: the environment variable ${o.webhookSecretEnv} is empty or unset`);
      return withServices(o, async (services) => {
        const view = await services.watchers.add({
          name,
          server: o.server,
          webhook: { url: o.webhookUrl, secret },
          ...(o.folder ? { folder: o.folder } : {}),
          ...(o.mode ? { mode: o.mode } : {}),
          ...(o.pollInterval ? { pollIntervalSeconds: Number(o.pollInterval) } : {}),
          ...(o.after ? { after: o.after } : {}),
          ...(o.filterFrom || o.filterSubject ? { filter: { ...(o.filterFrom ? { from: o.filterFrom } : {}), ...(o.filterSubject ? { subject: o.filterSubject } : {}) } } : {}),
        });
        print(`added watcher ${view.name}: ${view.server} ${view.folder} (${view.mode}) → ${view.webhookUrl}, then ${view.after}; a running \`mailgate serve\` starts it`);
      }, { action: 'watcher.add', target: name });
    });

  watcher
    .command('rotate-secret')
    .description("replace a watcher's webhook secret; the old one keeps signing next to it for the grace period")
    .argument('<name>')
    .requiredOption('--webhook-secret-env <var>', 'the new signing secret, from this environment variable (at least 16 characters)')
    .option('--grace <seconds>', 'how long the old secret keeps signing too (default: inbound.webhookSecretGraceHours, 24 h); 0 ends it at once, for a leaked secret')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action((name: string, o: ConfigOption & { webhookSecretEnv: string; grace?: string }) => {
      const secret = process.env[o.webhookSecretEnv];
      if (!secret) throw new MailgateError(ErrorCode.INPUT_INVALID, `--webhook-secret-env: the environment variable ${o.webhookSecretEnv} is empty or unset`);
      if (o.grace !== undefined && !/^\d{1,10}$/.test(o.grace)) throw new MailgateError(ErrorCode.INPUT_INVALID, '--grace: expected whole seconds, e.g. 86400, or 0 to end the old secret at once');
      return withServices(o, async (services) => {
        const webhook = { secret, ...(o.grace !== undefined ? { graceSeconds: Number(o.grace) } : {}) };
        const view = await services.watchers.update(name, { webhook }, { defaultSecretGraceMs: services.config.inbound.webhookSecretGraceMs, audit: services.audit, actor: cliActor() });
        print(
          view.previousSecretExpiresAt
            ? `watcher ${name} signs with the new secret; the old one signs too until ${view.previousSecretExpiresAt} (each request carries both)`
            : `watcher ${name} signs with the new secret only; the old one no longer signs`,
        );
      });
    });

  watcher
    .command('list')
    .option('--json', 'print JSON')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action((o: ConfigOption & { json?: boolean }) =>
      withServices(o, async (services) => {
        const all = await services.watchers.list();
        if (o.json) return print(JSON.stringify(all, null, 2));
        if (all.length === 0) return print('no watchers (add one with `mailgate watcher add`)');
        for (const line of table([['NAME', 'SERVER', 'FOLDER', 'STATE', 'DELIVERED', 'PARKED', 'LAST MESSAGE', 'LAST ERROR'], ...all.map((w) => [w.name, w.server, w.folder, w.enabled ? w.status.state : 'disabled', String(w.status.delivered), String(w.status.parked), w.status.lastMessageAt ?? '-', (w.status.lastError ?? '').slice(0, 60)])])) print(line);
      }),
    );

  watcher
    .command('remove')
    .argument('<name>')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action((name: string, o: ConfigOption) =>
      withServices(o, async (services) => {
        await services.watchers.remove(name);
        print(`removed watcher ${name}`);
      }, { action: 'watcher.remove', target: name }),
    );

  program
    .command('status')
    .description('one-screen summary; exits 1 when something needs a person (for cron and monitoring)')
    .option('--json', 'print JSON')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action((o: ConfigOption & { json?: boolean }) =>
      withServices(o, async (services) => {
        const credentials = await services.credentials.list();
        const watchers = await services.watchers.list();
        const depth = await services.outbox.depth();
        const failed = await services.store.db.selectFrom('outbox').select((eb) => eb.fn.countAll<number>().as('n')).where('status', '=', 'failed').where('updated_at', '>', new Date(Date.now() - 86_400_000).toISOString()).executeTakeFirst();
        // The same conditions the alerts come from, read live (serve need not run for this to be right).
        const problems = (await currentConditions(services.store, services.config.publicUrl)).map((c) => `${c.kind.replace(/_/g, ' ')} (${c.subject}): ${c.message}${c.link ? ` — ${c.link}` : ''}`);
        // The relay and proxy listeners as the running `serve` last wrote them (this process listens on nothing).
        const snapshot = await ListenerRegistry.readSnapshot(services.store);
        for (const l of snapshot?.listeners ?? []) if (l.state === 'failed') problems.push(`listener failed (${l.id}, ${l.listen}): ${l.error ?? 'no reason recorded'} — fix it and restart \`mailgate serve\``);
        const instances = await instanceOverview(services.store, services.config.instances.leaseMs);
        const failedCount = Number(failed?.n ?? 0);
        // The alert looks at the last hour; status, which cron runs now and then, at the last 24 hours.
        if (failedCount > 0 && !problems.some((p) => p.startsWith('send failing'))) {
          problems.push(`send failing: ${failedCount} message${failedCount > 1 ? 's' : ''} failed in the last 24 h — see the web UI's Outbox (Failed) or GET /api/v1/messages?status=failed`);
        }
        if (o.json) print(JSON.stringify({ ok: problems.length === 0, problems, credentials: credentials.map((c) => ({ name: c.name, status: c.status, expiresAt: c.expiresAt })), outbox: { ...depth, failedLast24h: failedCount }, watchers: watchers.map((w) => ({ name: w.name, ...w.status })), listeners: snapshot ?? null, instances }, null, 2));
        else {
          print(`credentials: ${credentials.length} (${summarize(credentials.map((c) => c.status))})`);
          print(`outbox: ${depth.queued} waiting${depth.oldestQueuedAt ? `, oldest since ${depth.oldestQueuedAt}` : ''}; ${failedCount} failed in 24 h`);
          print(`watchers: ${watchers.length} (${summarize(watchers.map((w) => (w.enabled ? w.status.state : 'disabled')))})`);
          for (const line of instanceLines(instances)) print(line);
          for (const line of listenerLines(snapshot, services.config.relay.listeners.length + (services.config.proxy.imap ? 1 : 0) + (services.config.proxy.pop3 ? 1 : 0))) print(line);
          print(problems.length === 0 ? 'all good' : `needs attention:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
        }
        if (problems.length > 0) process.exitCode = 1;
      }),
    );
}

/** The instances section of `mailgate status`: each running serve with its heartbeat and what it runs. */
function instanceLines(instances: InstanceOverview[]): string[] {
  const alive = instances.filter((i) => i.alive);
  if (instances.length === 0) return ['instances: none has run yet (`mailgate serve` registers one)'];
  const line = (i: InstanceOverview) =>
    `  ${i.hostname} pid ${i.pid} (${i.id}, ${i.version}): ${i.alive ? `running since ${i.startedAt}, heartbeat ${ago(i.heartbeatAt)}` : i.stoppedAt ? `stopped ${ago(i.stoppedAt)}` : `silent since ${ago(i.heartbeatAt)} (crashed or cut off)`}${i.watchers.length ? `; watchers ${i.watchers.join(', ')}` : ''}${i.alerts ? '; alerts' : ''}${i.sending ? `; sending ${i.sending} message${i.sending === 1 ? '' : 's'}` : ''}`;
  return [`instances: ${alive.length} running`, ...[...alive, ...instances.filter((i) => !i.alive).slice(0, 3)].map(line)];
}

/** The listeners section of `mailgate status`: one line each with state, address, TLS and certificate, and when serve wrote it. */
function listenerLines(snapshot: ListenerSnapshot | undefined, configured: number): string[] {
  if (!snapshot || snapshot.listeners.length === 0) return configured > 0 ? [`listeners: ${configured} configured, none started yet (they start with \`mailgate serve\`)`] : [];
  const line = (l: ListenerStatus) =>
    `  ${l.id}: ${l.state} ${l.listen} (${l.kind}, TLS ${l.tls})${l.certificate ? `, certificate SHA-256 ${l.certificate.fingerprint256}${l.certificate.selfSigned ? ' (self-signed)' : ''}` : ''}${l.state === 'failed' && l.error ? ` — ${l.error}` : ''}`;
  return [`listeners: ${snapshot.listeners.length} (${summarize(snapshot.listeners.map((l) => l.state))}), as written by serve (pid ${snapshot.pid}) at ${snapshot.at}`, ...snapshot.listeners.map(line)];
}

function summarize(values: string[]): string {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts].map(([k, n]) => `${n} ${k}`).join(', ') || 'none';
}
