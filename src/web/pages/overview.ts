// The overview page, the web UI's landing page: what needs a person now (the conditions `mailgate status` reports) and charts of the last 24 hours.
import type { FastifyInstance } from 'fastify';
import type { AlertCondition } from '../../alerts/conditions.js';
import { barChart } from '../charts.js';
import { badge, emptyState, timeCell, type Tone } from '../components.js';
import { instanceOverview, type InstanceOverview } from '../../instances/overview.js';
import type { WebContext } from '../context.js';
import { html, type SafeHtml } from '../html.js';
import { loadOverview, type OverviewData } from '../overviewData.js';

/** Each condition in words, its badge tone, and the words of the button that fixes it (the subject's name is added). */
const KINDS: Record<AlertCondition['kind'], { words: string; tone: Tone; fix: (name: string) => string }> = {
  needs_reauthorization: { words: 'Needs sign-in again', tone: 'bad', fix: (n) => `Reconnect ${n}` },
  client_secret_invalid: { words: 'Client secret refused', tone: 'bad', fix: (n) => `Update the secret of ${n}` },
  configuration_error: { words: 'Provider refuses the settings', tone: 'bad', fix: (n) => `Open ${n}` },
  client_secret_expiring: { words: 'Client secret expiring', tone: 'warn', fix: (n) => `Update the secret of ${n}` },
  refresh_failing: { words: 'Token refresh failing', tone: 'warn', fix: (n) => `Open ${n}` },
  send_failing: { words: 'Sending mail failing', tone: 'bad', fix: () => 'Open the outbox' },
  watcher_failing: { words: 'Watcher failing', tone: 'bad', fix: () => 'Open inbound' },
  message_parked: { words: 'Inbound messages parked', tone: 'bad', fix: () => 'Open inbound' },
  sending_paused: { words: 'Sending limit reached', tone: 'warn', fix: (n) => `Open server ${n}` },
};

export function registerOverviewPages(app: FastifyInstance, ctx: WebContext): void {
  const { services } = ctx;

  app.get('/', async (_request, reply) => reply.redirect('/overview', 303));

  app.get('/overview', async (request, reply) => {
    const [data, instances] = await Promise.all([loadOverview(services.store, services.config.publicUrl), instanceOverview(services.store, services.config.instances.leaseMs)]);
    const body = html`<div class="page-head"><h1>Overview</h1></div>
<section class="overview-section" aria-labelledby="attention-title">
<h2 id="attention-title">Needs attention${data.conditions.length > 0 ? ` (${data.conditions.length})` : ''}</h2>
${data.conditions.length === 0
  ? emptyState('All good', 'Nothing needs a person now: every credential has a working grant, mail goes out and every watcher reads its mailbox.')
  : html`<ul class="attention-list">${data.conditions.map((c) => attentionItem(c, services.config.publicUrl))}</ul>`}
</section>
${charts(data)}
${instanceSection(instances)}`;
    return ctx.page(request, reply, { title: data.conditions.length > 0 ? `Overview (${data.conditions.length} to fix)` : 'Overview', section: 'overview', body });
  });
}

/** The condition's link without the public URL, so the button stays on the host the browser uses. */
function localPath(link: string | undefined, publicUrl: string): string | undefined {
  if (!link) return undefined;
  return link.startsWith(publicUrl) ? link.slice(publicUrl.length) || '/' : link;
}

function attentionItem(condition: AlertCondition, publicUrl: string): SafeHtml {
  const kind = KINDS[condition.kind];
  const name = condition.subject.split(':')[0]!;
  const href = localPath(condition.link, publicUrl);
  const message = condition.message.replace(/^./, (c) => c.toUpperCase());
  return html`<li class="panel alert-item attention-item ${kind.tone}" data-kind="${condition.kind}" data-subject="${condition.subject}">
  <div class="alert-head">${badge(kind.tone, kind.words)} <h3>${name}</h3></div>
  <p class="alert-message">${message}</p>
  ${href ? html`<div class="actions"><a class="button ${kind.tone === 'bad' ? 'primary' : 'secondary'}" href="${href}">${kind.fix(name)}</a></div>` : ''}
</li>`;
}

function charts(data: OverviewData): SafeHtml {
  const { hours } = data;
  return html`<section class="overview-section" aria-labelledby="charts-title">
<h2 id="charts-title">Last 24 hours</h2>
<p class="muted">Per hour in UTC, the current hour last. The counts come from the store, so every instance shows the same.</p>
<div class="chart-grid">
${barChart({ id: 'chart-messages', title: 'Messages sent and failed', hours, series: [{ label: 'sent', values: data.sent, tone: 'ok' }, { label: 'failed', values: data.failed, tone: 'bad' }] })}
${barChart({ id: 'chart-inbound', title: 'Inbound deliveries', hours, series: [{ label: 'delivered', values: data.delivered, tone: 'ok' }, { label: 'parked', values: data.parked, tone: 'bad' }] })}
<div class="chart-cell">
${barChart({ id: 'chart-credentials', title: 'Credential failures', hours, series: [{ label: 'failures', values: data.credentialFailures, tone: 'warn' }] })}
<p class="help">A failure is a credential entering a failing status (refresh failing, needs sign-in, secret or settings refused). Successful refreshes are not stored one by one: ${data.refreshedCredentials} of ${data.credentialCount} credential${data.credentialCount === 1 ? '' : 's'} refreshed a token in these 24 hours; per-refresh counts are in <code>/metrics</code> as <code>mailgate_token_refreshes_total</code>.</p>
</div>
${barChart({ id: 'chart-outbox', title: 'Outbox depth', hours, level: true, series: [{ label: 'waiting', values: data.outboxDepth, tone: 'info' }] })}
</div>
</section>`;
}

/** Which `serve` runs what: one row per running instance (and the few last stopped ones), with its heartbeat. */
function instanceSection(instances: InstanceOverview[]): SafeHtml {
  const shown = [...instances.filter((i) => i.alive), ...instances.filter((i) => !i.alive).slice(0, 3)];
  const running = instances.filter((i) => i.alive).length;
  return html`<section class="overview-section" aria-labelledby="instances-title">
<h2 id="instances-title">Instances (${running} running)</h2>
<p class="muted">The <code>mailgate serve</code> processes on this database. Each watcher runs in one of them; one that stops answering hands its watchers to the others after a lease period.</p>
${shown.length === 0 ? html`<p>None has registered yet: a <code>serve</code> registers as it starts.</p>` : html`<div class="table-wrap"><table class="responsive instances-table">
<caption class="visually-hidden">Instances</caption>
<thead><tr><th scope="col">Instance</th><th scope="col">State</th><th scope="col">Last heartbeat</th><th scope="col">Runs</th><th scope="col">Version</th></tr></thead>
<tbody>${shown.map((i) => html`<tr>
  <td data-label="Instance"><span class="mono small">${i.hostname} pid ${i.pid}</span></td>
  <td data-label="State">${i.alive ? badge('ok', 'Running') : i.stoppedAt ? badge('info', 'Stopped') : badge('bad', 'Silent')}</td>
  <td data-label="Last heartbeat">${timeCell(i.heartbeatAt)}</td>
  <td data-label="Runs">${i.watchers.length || i.alerts || i.sending ? [...i.watchers.map((w) => `watcher ${w}`), ...(i.alerts ? ['alerts'] : []), ...(i.sending ? [`sending ${i.sending} message${i.sending === 1 ? '' : 's'}`] : [])].join(', ') : html`<span class="muted">—</span>`}</td>
  <td data-label="Version">${i.version}</td>
</tr>`)}</tbody>
</table></div>`}
</section>`;
}
