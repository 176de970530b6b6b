// Where alerts go: a signed webhook, e-mail through the alert sender, and a local command for sites that page through their own tools.
import { execFile } from 'node:child_process';
import type { Config } from '../config/load.js';
import type { Logger } from '../log.js';
import type { OutboxService } from '../outbox/service.js';
import type { SenderService } from '../senders/service.js';
import type { ServerRepository } from '../servers/repository.js';
import { deliverWebhook } from '../inbound/webhook.js';

export type AlertEvent = 'raised' | 'repeated' | 'resolved';

export interface AlertNotice {
  id: string;
  event: AlertEvent;
  kind: string;
  subject: string;
  message: string;
  link: string | null;
  raisedAt: string;
  resolvedAt: string | null;
}

export interface ChannelResult {
  channel: 'webhook' | 'email' | 'command';
  ok: boolean;
  error?: string;
}

/** What the alert channels use of the services: the outbox for e-mail, senders and servers to check the route. */
export interface AlertChannelDependencies {
  messages: OutboxService;
  senders: SenderService;
  serverRepo: ServerRepository;
}

export async function notify(notice: AlertNotice, config: Config['alerts'], services: AlertChannelDependencies, logger: Logger): Promise<ChannelResult[]> {
  const results: ChannelResult[] = [];
  if (config.webhook) {
    const result = await deliverWebhook({ url: config.webhook.url, secret: config.webhook.secret, event: `alert.${notice.event}`, body: { event: `alert.${notice.event}`, alert: notice }, deliveryId: `${notice.id}-${notice.event}-${Date.now()}` });
    results.push({ channel: 'webhook', ok: result.ok, ...(result.ok ? {} : { error: result.error ?? `answered ${result.status}` }) });
  }
  if (config.email) {
    try {
      await services.messages.accept({
        sender: config.email.sender,
        to: [...config.email.to],
        subject: `[Mailgate] ${notice.event === 'resolved' ? 'Resolved' : 'Action needed'}: ${notice.kind.replace(/_/g, ' ')} - ${notice.subject}`,
        text: `${notice.message}\n\n${notice.link ? `Fix it here: ${notice.link}\n\n` : ''}Raised ${notice.raisedAt}${notice.resolvedAt ? `, resolved ${notice.resolvedAt}` : ''}.\n`,
        idempotencyKey: `alert-${notice.id}-${notice.event}-${notice.event === 'repeated' ? Date.now() : 'once'}`,
      }, 'alerts');
      results.push({ channel: 'email', ok: true });
    } catch (err) {
      results.push({ channel: 'email', ok: false, error: (err as Error).message });
    }
  }
  if (config.command) results.push(await runCommand(config.command, notice));
  for (const r of results.filter((r) => !r.ok)) logger.warn({ alert: notice.id, channel: r.channel, error: r.error }, 'alert channel failed');
  return results;
}

/**
 * Runs the hook with the alert in environment variables. The hook gets a minimal environment, not Mailgate's
 * own (which may hold MAILGATE_MASTER_KEY).
 */
function runCommand(command: NonNullable<Config['alerts']['command']>, notice: AlertNotice): Promise<ChannelResult> {
  return new Promise((resolve) => {
    execFile(
      command.path,
      [...command.args],
      {
        timeout: command.timeoutMs,
        killSignal: 'SIGKILL',
        env: {
          PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
          MAILGATE_ALERT_EVENT: notice.event,
          MAILGATE_ALERT_KIND: notice.kind,
          MAILGATE_ALERT_SUBJECT: notice.subject,
          MAILGATE_ALERT_CREDENTIAL: notice.kind.startsWith('client_secret') || ['needs_reauthorization', 'configuration_error', 'refresh_failing'].includes(notice.kind) ? notice.subject.split(':')[0]! : '',
          MAILGATE_ALERT_MESSAGE: notice.message,
          MAILGATE_ALERT_LINK: notice.link ?? '',
          MAILGATE_ALERT_ID: notice.id,
        },
      },
      (err) => {
        if (!err) return resolve({ channel: 'command', ok: true });
        const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: string | number };
        resolve({ channel: 'command', ok: false, error: e.killed ? `timed out after ${command.timeoutMs / 1000} s` : `exited with ${e.code ?? e.message}` });
      },
    );
  });
}

/** True when the alert sender's route uses `credential`: an alert about that credential may not get through it. */
export async function alertSenderUses(credential: string, config: Config['alerts'], services: Pick<AlertChannelDependencies, 'senders' | 'serverRepo'>): Promise<boolean> {
  if (!config.email) return false;
  const sender = await services.senders.find(config.email.sender);
  if (!sender) return false;
  for (const name of [sender.primary, ...sender.backups]) {
    const server = await services.serverRepo.find(name);
    if (server?.auth_type === 'oauth2' && server.credential === credential) return true;
  }
  return false;
}
