// The alerts page (what needs a person now, what was resolved lately, where alerts are sent) and the audit log of admin actions.
import type { FastifyInstance } from 'fastify';
import type { AlertView } from '../../alerts/alerts.js';
import type { AuditEntry } from '../../audit/auditLog.js';
import type { Config } from '../../config/load.js';
import { badge, emptyState, humanize, timeCell, type Tone } from '../components.js';
import type { WebContext } from '../context.js';
import { html, type SafeHtml } from '../html.js';

const AUDIT_PAGE_SIZE = 100;
const RESOLVED_SHOWN = 20;

/** Each alert kind in words, and the status whose badge colour fits it (colour is never the only signal: the words say it). */
const KINDS: Record<string, { words: string; tone: Tone }> = {
  needs_reauthorization: { words: 'Needs sign-in again', tone: 'bad' },
  client_secret_invalid: { words: 'Client secret refused', tone: 'bad' },
  configuration_error: { words: 'Provider refuses the settings', tone: 'bad' },
  client_secret_expiring: { words: 'Client secret expiring', tone: 'warn' },
  refresh_failing: { words: 'Token refresh failing', tone: 'warn' },
  send_failing: { words: 'Sending mail failing', tone: 'bad' },
  watcher_failing: { words: 'Watcher failing', tone: 'bad' },
  message_parked: { words: 'Inbound messages parked', tone: 'bad' },
};

const CREDENTIAL_KINDS = new Set(['needs_reauthorization', 'client_secret_invalid', 'configuration_error', 'client_secret_expiring', 'refresh_failing']);
const WATCHER_KINDS = new Set(['watcher_failing', 'message_parked']);

export function registerAlertPages(app: FastifyInstance, ctx: WebContext): void {
  const { services } = ctx;

  app.get('/alerts', async (request, reply) => {
    const [active, resolved] = await Promise.all([services.alerts.list('active'), services.alerts.list('resolved', RESOLVED_SHOWN)]);
    const channels = services.config.alerts;
    const none = !channels.webhook && !channels.email && !channels.command;
    const body = html`<div class="page-head"><h1>Alerts</h1></div>
${none ? html`<div class="hint warn"><p><strong>No alert channel is configured</strong>: alerts show only on this page, in the count beside “Alerts” and in <code>mailgate status</code>. <a href="#channels">How to send them to a webhook, e-mail or a command</a>.</p></div>` : ''}
<section class="alerts-section" aria-labelledby="active-title">
<h2 id="active-title">Active${active.length > 0 ? ` (${active.length})` : ''}</h2>
${active.length === 0
  ? emptyState('All good', `Nothing needs attention: no credential needs a sign-in, mail goes out and every watcher reads its mailbox. Mailgate checks every ${Math.round(channels.evaluateMs / 1000)} s.`)
  : html`<ul class="alert-list">${active.map(activeItem)}</ul>`}
</section>
<section class="alerts-section" aria-labelledby="resolved-title">
<h2 id="resolved-title">Recently resolved</h2>
${resolved.length === 0 ? html`<p class="muted">No alert has been resolved yet.</p>` : resolvedTable(resolved)}
</section>
${channelsPanel(channels)}`;
    return ctx.page(request, reply, { title: active.length > 0 ? `Alerts (${active.length})` : 'Alerts', section: 'alerts', body });
  });

  app.get<{ Querystring: { target?: string; before?: string } }>('/audit', async (request, reply) => {
    const target = (typeof request.query.target === 'string' ? request.query.target : '').trim().slice(0, 300);
    const beforeText = typeof request.query.before === 'string' ? request.query.before : '';
    const before = /^[1-9]\d{0,15}$/.test(beforeText) ? Number(beforeText) : undefined;
    // One more than a page: tells whether an "older" link is needed.
    const rows = await services.audit.list(AUDIT_PAGE_SIZE + 1, { ...(target ? { target } : {}), ...(before !== undefined ? { before } : {}) });
    const entries = rows.slice(0, AUDIT_PAGE_SIZE);
    const older = rows.length > AUDIT_PAGE_SIZE ? entries[entries.length - 1]!.id : undefined;
    const link = (params: { before?: number }) => {
      const query = new URLSearchParams();
      if (target) query.set('target', target);
      if (params.before !== undefined) query.set('before', String(params.before));
      const text = query.toString();
      return text ? `/audit?${text}` : '/audit';
    };
    const body = html`<div class="page-head"><h1>Audit log</h1></div>
<p class="muted">Every change made through the web UI, the API and the command line, and every sign-in at a provider: who, what, when, and which fields were sent — never their values.</p>
<form method="get" action="/audit" class="audit-filter" role="search" aria-label="Filter the audit log">
  <div class="field"><label for="f-target">Target</label>
  <input type="text" id="f-target" name="target" value="${target}" aria-describedby="f-target-help" autocapitalize="none" spellcheck="false">
  <p class="help" id="f-target-help">The exact name of a credential, server, sender, watcher or API key, or a message ID.</p></div>
  <div class="actions"><button type="submit" class="button secondary">Filter</button>${target ? html` <a class="button secondary" href="/audit">Show all</a>` : ''}</div>
</form>
${entries.length === 0
  ? target
    ? emptyState(`Nothing recorded for ${target}`, 'No admin action named this target. Targets are matched exactly, e.g. the credential name “m365”.', html`<a class="button secondary" href="/audit">Show all entries</a>`)
    : emptyState('Nothing recorded yet', 'Admin actions appear here as soon as someone changes something through the web UI, the API or the command line.')
  : auditTable(entries, target)}
${before !== undefined || older !== undefined
  ? html`<nav class="pager" aria-label="Audit log pages">${before !== undefined ? html`<a class="button secondary" href="${link({})}">Newest entries</a>` : ''}${older !== undefined ? html`<a class="button secondary" href="${link({ before: older })}">Older entries</a>` : ''}</nav>`
  : ''}`;
    return ctx.page(request, reply, { title: target ? `Audit log: ${target}` : 'Audit log', section: 'audit', body });
  });
}

// ---- Alerts ----

function kindBadge(kind: string): SafeHtml {
  const known = KINDS[kind];
  return badge(known?.tone ?? 'muted', known?.words ?? humanize(kind));
}

/** What the alert is about, as words with a link to its page: a credential, a watcher, the outbox. */
function subjectOf(alert: Pick<AlertView, 'kind' | 'subject'>): { label: string; name: string; href: string } {
  if (CREDENTIAL_KINDS.has(alert.kind)) {
    const [name, stage] = alert.subject.split(':') as [string, string | undefined];
    return { label: stage ? `Credential (${stage}-day warning)` : 'Credential', name, href: `/credentials/${encodeURIComponent(name)}` };
  }
  if (WATCHER_KINDS.has(alert.kind)) return { label: 'Watcher', name: alert.subject, href: `/inbound/${encodeURIComponent(alert.subject)}` };
  if (alert.subject === 'outbox') return { label: 'Outbox', name: 'outbox', href: '/outbox' };
  return { label: '', name: alert.subject, href: '' };
}

/** The button that fixes the alert (the same targets as the banner on every page). */
function fixLink(alert: AlertView): SafeHtml {
  const { name } = subjectOf(alert);
  const credential = `/credentials/${encodeURIComponent(name)}`;
  const watcher = `/inbound/${encodeURIComponent(name)}`;
  const fixes: Record<string, [string, string]> = {
    needs_reauthorization: [`${credential}/connect`, `Reconnect ${name}`],
    client_secret_invalid: [`${credential}/edit`, `Update the secret of ${name}`],
    client_secret_expiring: [`${credential}/edit`, `Update the secret of ${name}`],
    configuration_error: [`${credential}/edit`, `Edit ${name}`],
    refresh_failing: [credential, `Open ${name}`],
    send_failing: ['/outbox', 'Open the outbox'],
    watcher_failing: [watcher, `Open watcher ${name}`],
    message_parked: [watcher, `See the parked messages of ${name}`],
  };
  const fix = fixes[alert.kind];
  if (!fix) return html``;
  return html`<a class="button ${alert.kind === 'needs_reauthorization' || alert.kind === 'client_secret_invalid' ? 'primary' : 'secondary'}" href="${fix[0]}">${fix[1]}</a>`;
}

function subjectLink(alert: AlertView): SafeHtml {
  const subject = subjectOf(alert);
  if (!subject.href) return html`${subject.name}`;
  return html`${subject.label ? html`<span class="subject-kind">${subject.label}</span> ` : ''}<a href="${subject.href}">${subject.name}</a>`;
}

function activeItem(alert: AlertView): SafeHtml {
  const urgent = alert.kind === 'needs_reauthorization' || alert.kind === 'client_secret_invalid' || alert.kind === 'send_failing';
  return html`<li class="panel alert-item ${urgent ? 'bad' : 'warn'}" data-alert="${alert.id}">
  <div class="alert-head">${kindBadge(alert.kind)} <h3>${subjectLink(alert)}</h3></div>
  <p class="alert-message">${alert.message}</p>
  ${alert.warning ? html`<div class="hint warn"><p><strong>Warning:</strong> ${alert.warning}.</p></div>` : ''}
  <dl class="alert-facts">
    <div><dt>Raised</dt><dd>${timeCell(alert.raisedAt)}</dd></div>
    <div><dt>Notifications sent</dt><dd>${alert.notifiedCount}</dd></div>
    <div><dt>Last notified</dt><dd>${timeCell(alert.lastNotifiedAt, 'never')}</dd></div>
  </dl>
  <div class="actions">${fixLink(alert)}</div>
</li>`;
}

function resolvedTable(alerts: AlertView[]): SafeHtml {
  return html`<div class="table-wrap"><table class="responsive resolved-alerts">
<caption class="visually-hidden">Recently resolved alerts</caption>
<thead><tr><th scope="col">Kind</th><th scope="col">Subject</th><th scope="col">Message</th><th scope="col">Raised</th><th scope="col">Resolved</th><th scope="col">Notifications</th></tr></thead>
<tbody>${alerts.map(
    (a) => html`<tr data-alert="${a.id}">
  <td data-label="Kind">${badge('muted', KINDS[a.kind]?.words ?? a.kind)}</td>
  <th scope="row" data-label="Subject">${subjectLink(a)}</th>
  <td data-label="Message" class="message-cell">${a.message}</td>
  <td data-label="Raised">${timeCell(a.raisedAt)}</td>
  <td data-label="Resolved">${timeCell(a.resolvedAt)}</td>
  <td data-label="Notifications">${a.notifiedCount}</td>
</tr>`,
  )}</tbody></table></div>`;
}

/** Where alerts are sent, without a secret: the webhook's host only (its path may carry a token too). */
function channelsPanel(config: Config['alerts']): SafeHtml {
  const items: SafeHtml[] = [];
  if (config.webhook) items.push(html`<li><strong>Webhook</strong> to <span class="mono">${hostOf(config.webhook.url)}</span>, signed with its secret (not shown)</li>`);
  if (config.email) items.push(html`<li><strong>E-mail</strong> through sender <span class="mono">${config.email.sender}</span> to ${config.email.to.join(', ')}</li>`);
  if (config.command) items.push(html`<li><strong>Command</strong> <span class="mono">${config.command.path}</span>${config.command.args.length > 0 ? ` with ${config.command.args.length} argument${config.command.args.length > 1 ? 's' : ''}` : ''}, stopped after ${Math.round(config.command.timeoutMs / 1000)} s</li>`);
  const timing = html`<p class="help">Conditions are checked every ${Math.round(config.evaluateMs / 1000)} s. An alert is sent when raised, repeated after ${Math.round(config.repeatMs / 60_000)} min while it lasts (then twice as long each time, at most daily), and sent again when resolved.</p>`;
  if (items.length > 0) {
    return html`<section class="panel" id="channels" aria-labelledby="channels-title"><h2 id="channels-title">Where alerts are sent</h2>
<ul class="channel-list">${items}</ul>
${timing}
<p class="help">Channels are set under <code>alerts</code> in the configuration file and read when Mailgate starts.</p></section>`;
  }
  return html`<section class="panel" id="channels" aria-labelledby="channels-title"><h2 id="channels-title">Where alerts are sent: nowhere yet</h2>
<p>Add one or more channels under <code>alerts</code> in the configuration file (<code>mailgate.yaml</code>, or the file given with <code>--config</code> or <code>MAILGATE_CONFIG</code>), then restart Mailgate:</p>
<dl class="facts">
  <dt><code>alerts.webhook</code></dt><dd><code>{ url, secret }</code>: each alert is POSTed and signed like inbound webhooks (<code>X-Mailgate-Event: alert.raised</code>, <code>alert.repeated</code>, <code>alert.resolved</code>); the secret has at least 16 characters.</dd>
  <dt><code>alerts.email</code></dt><dd><code>{ sender, to: [addresses] }</code>: each alert is e-mailed through that sender. Give it a server with another credential (or a password) than the ones it reports on.</dd>
  <dt><code>alerts.command</code></dt><dd><code>{ path, args?, timeoutSeconds? }</code>: a local program run with <code>MAILGATE_ALERT_EVENT</code>, <code>_KIND</code>, <code>_SUBJECT</code>, <code>_CREDENTIAL</code>, <code>_MESSAGE</code>, <code>_LINK</code> and <code>_ID</code>.</dd>
</dl>
<pre class="config-example"><code>alerts:
  webhook:
    url: https://hooks.example.com/mailgate
    secret: a-signing-secret-of-16-or-more-characters
  email:
    sender: alerts
    to: [ops@example.com]
  command:
    path: /usr/local/bin/page-oncall
    timeoutSeconds: 30</code></pre>
${timing}</section>`;
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'an invalid URL';
  }
}

// ---- Audit log ----

function auditTable(entries: AuditEntry[], filtered: string): SafeHtml {
  return html`<div class="table-wrap"><table class="responsive audit-log">
<caption class="visually-hidden">Audit log${filtered ? `, target ${filtered}` : ''}, newest first</caption>
<thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">Action</th><th scope="col">Target</th><th scope="col">Details</th></tr></thead>
<tbody>${entries.map(
    (e) => html`<tr data-audit-id="${e.id}">
  <td data-label="When">${timeCell(e.at)}</td>
  <td data-label="Who">${actorCell(e.actor)}</td>
  <th scope="row" data-label="Action">${describeAction(e.action)}<span class="raw-action mono">${e.action}</span></th>
  <td data-label="Target" class="target-cell">${e.target ? html`<a href="/audit?target=${encodeURIComponent(e.target)}" title="Only the entries for ${e.target}">${e.target}</a>` : html`<span class="muted">—</span>`}</td>
  <td data-label="Details">${detailsCell(e.details)}</td>
</tr>`,
  )}</tbody></table></div>`;
}

/** admin:<user>, apikey:<name>, cli:<user>, browser:<email> as the name and where it acted from. */
function actorCell(actor: string): SafeHtml {
  const colon = actor.indexOf(':');
  const kind = colon < 0 ? actor : actor.slice(0, colon);
  const name = colon < 0 ? '' : actor.slice(colon + 1);
  const KIND_WORDS: Record<string, string> = { admin: 'web UI admin', apikey: 'API key', cli: 'command line, system user', browser: 'signed in at the provider' };
  const words = KIND_WORDS[kind];
  if (!words) return html`<span class="mono">${actor}</span>`;
  if (!name) return html`<span class="actor-kind">${kind === 'cli' ? 'command line' : words}</span>`;
  return html`<span class="actor" title="${actor}"><strong>${name}</strong> <span class="actor-kind">${words}</span></span>`;
}

const NOUNS: Record<string, string> = { credentials: 'credential', servers: 'server', senders: 'sender', watchers: 'watcher', apikeys: 'API key', messages: 'message', deliveries: 'delivery' };
const SPECIAL_ACTIONS: Record<string, string> = {
  'ui sign-in': 'Signed in to the web UI',
  'ui sign-in failed': 'Sign-in to the web UI failed',
  'ui setup: first admin created': 'Created the first admin',
  'oauth.callback': 'Connected a mailbox (provider sign-in)',
  'ui POST /logout': 'Signed out',
  'ui POST /account/password': 'Changed own password',
};
const CLI_VERBS: Record<string, string> = { add: 'Add', remove: 'Delete', authorize: 'Connect', refresh: 'Refresh the token of' };
const VERBS: Record<string, string> = { delete: 'Delete', refresh: 'Refresh the token of', connect: 'Connect', authorize: 'Connect', test: 'Test', retry: 'Retry', cancel: 'Cancel', enable: 'Enable', disable: 'Disable' };

/** "POST /api/v1/credentials/:name/refresh" → "Refresh the token of credential"; the recorded action stays beside it. */
function describeAction(action: string): SafeHtml {
  const special = SPECIAL_ACTIONS[action];
  if (special) return html`<span class="action-words">${special}</span>`;
  // The command line records "credential.add", "server.remove"…
  const cli = /^(credential|server|sender|watcher|apikey)\.(add|remove|authorize|refresh)$/.exec(action);
  if (cli) return html`<span class="action-words">${CLI_VERBS[cli[2]!]} ${NOUNS[`${cli[1]}s`]}</span>`;
  const match = /^(?:ui )?(GET|POST|PATCH|PUT|DELETE) (\S+)$/.exec(action);
  if (!match) return html``;
  const [, method, route] = match as unknown as [string, string, string];
  const segments = route.replace(/^\/api\/v1(?=\/)/, '').split('/').filter(Boolean);
  const noun = NOUNS[segments[0] ?? ''];
  if (!noun) return html``;
  const last = segments[segments.length - 1]!;
  const sub = segments.length > 2 && !segments[2]!.startsWith(':') && NOUNS[segments[2]!] ? `${noun} ${NOUNS[segments[2]!]}` : noun;
  let verb: string | undefined;
  if (method === 'DELETE') verb = 'Delete';
  else if (method === 'PATCH' || method === 'PUT') verb = 'Change';
  else if (segments.length === 1) verb = 'Add';
  else if (last.startsWith(':')) verb = segments.length === 2 ? 'Change' : 'Add';
  else verb = VERBS[last] ?? last.charAt(0).toUpperCase() + last.slice(1);
  return html`<span class="action-words">${verb} ${sub}</span>`;
}

/** Field names, HTTP status and outcome: what the log keeps. Any other key is named, its value left out. */
function detailsCell(details: Record<string, unknown>): SafeHtml {
  const parts: SafeHtml[] = [];
  const rest: string[] = [];
  for (const [key, value] of Object.entries(details)) {
    if (key === 'fields' && Array.isArray(value)) {
      const names = value.filter((v): v is string => typeof v === 'string');
      parts.push(names.length > 0 ? html`<span class="detail">Fields: ${names.map((n, i) => html`${i > 0 ? ', ' : ''}<code>${n}</code>`)}</span>` : html`<span class="detail muted">No fields</span>`);
    } else if (key === 'status' && typeof value === 'number') {
      parts.push(html`<span class="detail">HTTP ${value}</span>`);
    } else if (key === 'ok' && typeof value === 'boolean') {
      parts.push(html`<span class="detail">${value ? 'Succeeded' : 'Failed'}</span>`);
    } else if (key === 'code' && typeof value === 'string' && /^[A-Za-z0-9_.-]{1,80}$/.test(value)) {
      parts.push(html`<span class="detail">Error <code>${value}</code></span>`);
    } else if (key === 'ip' && typeof value === 'string' && /^[0-9a-fA-F.:]{2,45}$/.test(value)) {
      parts.push(html`<span class="detail">From ${value}</span>`);
    } else {
      rest.push(key);
    }
  }
  if (rest.length > 0) parts.push(html`<span class="detail muted">Also recorded: ${rest.join(', ')}</span>`);
  return parts.length > 0 ? html`${parts}` : html`<span class="muted">—</span>`;
}
