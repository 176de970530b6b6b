// The inbound pages: every watcher with its health, checkpoint and delivery counts, one watcher's recent deliveries, and retrying a parked one.
import type { FastifyInstance } from 'fastify';
import { isMailgateError } from '../../errors.js';
import type { WatcherView } from '../../inbound/model.js';
import { badge, csrfField, emptyState, formatBytes, statusBadge, timeCell, truncate, type Tone } from '../components.js';
import { sessionOf, type WebContext } from '../context.js';
import { html, type SafeHtml } from '../html.js';
import type { Session } from '../sessions.js';

type NameParams = { Params: { name: string } };
type Delivery = Awaited<ReturnType<WebContext['services']['watchers']['deliveries']>>[number];
const LIST_LIMIT = 50;

const DELIVERY_FILTERS: ReadonlyArray<{ status: string | undefined; label: string }> = [
  { status: undefined, label: 'All' },
  { status: 'parked', label: 'Parked' },
  { status: 'pending', label: 'Pending' },
  { status: 'delivered', label: 'Delivered' },
  { status: 'skipped', label: 'Skipped' },
];

/** A delivery's status as a badge: its tone and words. */
const DELIVERY_BADGE: Record<string, [Tone, string]> = {
  pending: ['info', 'Pending'],
  delivered: ['ok', 'Delivered'],
  parked: ['bad', 'Parked'],
  skipped: ['muted', 'Skipped (filter)'],
};

/** A watcher's run state as a badge: its tone and words. */
const STATE_BADGE: Record<string, [Tone, string]> = {
  idle: ['ok', 'Watching (IDLE)'],
  polling: ['ok', 'Polling'],
  connected: ['ok', 'Connected'],
  connecting: ['info', 'Connecting'],
  backoff: ['warn', 'Failing, retrying'],
  error: ['bad', 'Error'],
  stopped: ['muted', 'Stopped'],
};

export function registerInboundPages(app: FastifyInstance, ctx: WebContext): void {
  const { services } = ctx;

  app.get('/inbound', async (request, reply) => {
    const [watchers, servers] = await Promise.all([services.watchers.list(), services.servers.list()]);
    const protocols = new Map(servers.map((s) => [s.name, s.protocol as string]));
    const parked = watchers.filter((w) => w.status.parked > 0);
    return ctx.page(request, reply, {
      title: 'Inbound',
      section: 'inbound',
      body: html`<div class="page-head"><h1>Inbound watchers</h1></div>
${parkedHint(parked)}
${watchers.length === 0
  ? emptyState('No watchers yet', html`A watcher reads an IMAP or POP3 mailbox and posts each new message to a webhook. Add one with <code>mailgate watcher add</code>, the API (POST /api/v1/watchers) or the configuration file.`)
  : watcherTable(watchers, protocols)}`,
    });
  });

  app.get<NameParams & { Querystring: { status?: string } }>('/inbound/:name', async (request, reply) => {
    const view = await services.watchers.show(request.params.name);
    const protocol = (await services.servers.list()).find((s) => s.name === view.server)?.protocol;
    const wanted = request.query.status || undefined;
    const filter = DELIVERY_FILTERS.find((f) => f.status === wanted);
    // An unknown status filter: the service's INPUT_INVALID, shown as a 400 page naming the valid ones.
    const deliveries = await services.watchers.deliveries(view.name, wanted, LIST_LIMIT);
    const base = `/inbound/${encodeURIComponent(view.name)}`;
    return ctx.page(request, reply, {
      title: `Watcher ${view.name}`,
      section: 'inbound',
      body: html`${watcherDetail(view, protocol)}
<section class="panel" aria-labelledby="deliveries-title"><h2 id="deliveries-title">Recent deliveries</h2>
<nav class="tabs" aria-label="Filter deliveries by status">${DELIVERY_FILTERS.map((f) => html`<a href="${f.status ? `${base}?status=${f.status}` : base}"${f === filter ? html` aria-current="page"` : ''}>${f.label}${f.status === 'parked' && view.status.parked > 0 ? html` <span class="tab-count">${view.status.parked}</span>` : ''}</a>`)}</nav>
${deliveries.length === 0
  ? html`<p class="muted">${filter?.status ? `No ${filter.label.toLowerCase()} deliveries.` : 'No messages yet: new mail in the folder shows up here as the watcher delivers it.'}</p>`
  : html`<p class="muted small">The ${deliveries.length === LIST_LIMIT ? `${LIST_LIMIT} newest` : deliveries.length === 1 ? 'only' : deliveries.length} ${filter?.status ? `${filter.label.toLowerCase()} ` : ''}deliver${deliveries.length === 1 ? 'y' : 'ies'}, newest first.</p>
${deliveryTable(sessionOf(request), view.name, deliveries, wanted ? `${base}?status=${wanted}` : base)}`}
</section>`,
    });
  });

  app.post<{ Params: { name: string; id: string } }>('/inbound/:name/deliveries/:id/retry', async (request, reply) => {
    const { name, id } = request.params;
    const base = `/inbound/${encodeURIComponent(name)}`;
    const back = (request.body as { back?: unknown } | undefined)?.back;
    const to = typeof back === 'string' && back.startsWith(`${base}?status=`) && /^\?status=[a-z]+$/.test(back.slice(base.length)) ? back : base;
    try {
      await services.watchers.retry(name, id);
    } catch (err) {
      // Not parked (any more): the watcher may have delivered it meanwhile, or someone else retried it.
      if (isMailgateError(err) && err.code === 'INPUT_INVALID') return ctx.redirectWithFlash(request, reply, to, { kind: 'error', title: 'This delivery cannot be retried', message: err.message });
      throw err;
    }
    return ctx.redirectWithFlash(request, reply, to, { kind: 'success', title: 'Delivery queued again', message: `Watcher ${name} fetches the message from the mailbox again and posts it to the webhook now. Reload to see the outcome.` });
  });
}

function watcherTable(watchers: WatcherView[], protocols: Map<string, string>): SafeHtml {
  return html`<div class="table-wrap"><table class="responsive">
<caption class="visually-hidden">Watchers</caption>
<thead><tr><th scope="col">Name</th><th scope="col">Mailbox</th><th scope="col">Mode</th><th scope="col">Afterwards</th><th scope="col">Webhook</th><th scope="col">State</th><th scope="col">Checkpoint</th><th scope="col">Deliveries</th><th scope="col">Last message</th></tr></thead>
<tbody>${watchers.map(
    (w) => html`<tr>
  <th scope="row" data-label="Name"><a href="/inbound/${encodeURIComponent(w.name)}">${w.name}</a></th>
  <td data-label="Mailbox">${w.server} <span class="muted">·</span> ${w.folder}${protocols.get(w.server) ? html`<span class="abs">${protocols.get(w.server)!.toUpperCase()}</span>` : ''}</td>
  <td data-label="Mode">${w.mode === 'idle' ? 'IDLE' : `Poll every ${w.pollIntervalSeconds} s`}</td>
  <td data-label="Afterwards">${afterText(w.after)}</td>
  <td data-label="Webhook"><span class="mono small nowrap">${webhookHost(w.webhookUrl)}</span></td>
  <td data-label="State">${stateBadge(w)}${w.status.lastError ? html`<span class="error-cell block" title="${w.status.lastError}">${truncate(w.status.lastError, 90)}</span><span class="abs">${w.status.lastErrorAt ? html`${timeCell(w.status.lastErrorAt)}` : ''}</span>` : ''}</td>
  <td data-label="Checkpoint">${checkpoint(w, protocols.get(w.server))}</td>
  <td data-label="Deliveries">${counts(w, true)}</td>
  <td data-label="Last message">${timeCell(w.status.lastMessageAt, 'none yet')}</td>
</tr>`,
  )}</tbody></table></div>`;
}

function watcherDetail(w: WatcherView, protocol: string | undefined): SafeHtml {
  return html`<nav class="crumbs" aria-label="Breadcrumb"><a href="/inbound">Inbound</a> / ${w.name}</nav>
<div class="page-head"><h1>${w.name} ${stateBadge(w)}</h1></div>
${healthHint(w)}
<div class="grid-2">
<section class="panel" aria-labelledby="health-title"><h2 id="health-title">Health</h2><dl class="facts">
  <dt>State</dt><dd>${stateBadge(w)}</dd>
  <dt>Connected since</dt><dd>${timeCell(w.status.connectedAt, 'not connected yet')}</dd>
  <dt>Last message delivered</dt><dd>${timeCell(w.status.lastMessageAt, 'none yet')}</dd>
  <dt>Last error</dt><dd>${w.status.lastError ? html`<span class="error-text-plain">${w.status.lastError}</span>${w.status.lastErrorAt ? html` <span class="abs">${timeCell(w.status.lastErrorAt)}</span>` : ''}` : '—'}</dd>
  <dt>Checkpoint</dt><dd>${checkpoint(w, protocol)}</dd>
  <dt>Deliveries</dt><dd>${counts(w)}</dd>
</dl></section>
<section class="panel" aria-labelledby="settings-title"><h2 id="settings-title">Settings</h2><dl class="facts">
  <dt>Server</dt><dd>${w.server}${protocol ? html` <span class="muted">(${protocol.toUpperCase()})</span>` : ''}</dd>
  <dt>Folder</dt><dd>${w.folder}</dd>
  <dt>Mode</dt><dd>${modeText(w)}</dd>
  <dt>Afterwards</dt><dd>${afterText(w.after)}</dd>
  <dt>Webhook host</dt><dd><span class="mono small">${webhookHost(w.webhookUrl)}</span> ${w.previousSecretExpiresAt ? html`<span class="muted small">(a secret rotation is in progress: requests are signed with the new secret and, until</span> ${timeCell(w.previousSecretExpiresAt)}<span class="muted small">, the previous one too)</span>` : html`<span class="muted small">(requests signed with the stored secret)</span>`}</dd>
  ${w.filterFrom ? html`<dt>Only From containing</dt><dd>${w.filterFrom}</dd>` : ''}
  ${w.filterSubject ? html`<dt>Only Subject matching</dt><dd class="mono small">${w.filterSubject}</dd>` : ''}
  <dt>Enabled</dt><dd>${w.enabled ? 'yes' : 'no'}</dd>
  <dt>Defined in</dt><dd>${w.source === 'config' ? 'the configuration file' : 'the API or CLI'}</dd>
</dl></section>
</div>`;
}

/** One sentence on what the state means, when it needs a person. */
function healthHint(w: WatcherView): SafeHtml {
  if (!w.enabled) return html`<div class="hint"><p><strong>Disabled:</strong> this watcher does not read its mailbox.</p></div>`;
  if (w.status.state === 'backoff' || w.status.state === 'error') return html`<div class="hint bad"><p><strong>The watcher cannot read its mailbox</strong> and keeps retrying: ${w.status.lastError ?? 'no error recorded'}</p><p>Check the server ${w.server}, its credential and the folder ${w.folder}.</p></div>`;
  // Between two failed attempts the watcher is 'connecting' with the last failure still recorded: still failing.
  if (w.status.state === 'connecting' && w.status.lastError !== null) return html`<div class="hint bad"><p><strong>The watcher cannot read its mailbox</strong> and is trying again now; the last attempt failed: ${w.status.lastError}</p><p>Check the server ${w.server}, its credential and the folder ${w.folder}.</p></div>`;
  if (w.status.parked > 0) return html`<div class="hint bad"><p><strong>${w.status.parked} message${w.status.parked === 1 ? '' : 's'} parked:</strong> the webhook did not accept ${w.status.parked === 1 ? 'it' : 'them'}, so ${w.status.parked === 1 ? 'it stays' : 'they stay'} unacknowledged in the mailbox. Fix the receiver, then Retry each one below.</p></div>`;
  return html``;
}

function deliveryTable(session: Session, watcher: string, deliveries: Delivery[], back: string): SafeHtml {
  return html`<div class="table-wrap"><table class="responsive delivery-table">
<caption class="visually-hidden">Deliveries of watcher ${watcher}</caption>
<thead><tr><th scope="col">Received</th><th scope="col">Status</th><th scope="col">Message</th><th scope="col">Attempts</th><th scope="col">Last error</th><th scope="col">Delivered</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
<tbody>${deliveries.map((d) => {
    const known = DELIVERY_BADGE[d.status];
    return html`<tr>
  <td data-label="Received">${timeCell(d.createdAt)}</td>
  <td data-label="Status">${known ? badge(...known) : statusBadge(d.status)}${d.event === 'ack' ? html` <span class="muted small">reply acknowledgement</span>` : ''}</td>
  <td data-label="Message" class="message-cell">${d.subject !== null || d.from !== null ? html`<span class="subject">${d.subject ? truncate(d.subject, 80) : html`<span class="muted">(no subject)</span>`}</span>${d.from ? html`<span class="recipients">from ${truncate(d.from, 80)}</span>` : ''}` : html`<span class="muted">not fetched yet${d.uid !== null ? ` (UID ${d.uid})` : ''}</span>`}${d.size !== null ? html`<span class="abs">${formatBytes(d.size)}</span>` : ''}</td>
  <td data-label="Attempts">${d.attempts}</td>
  <td data-label="Last error" class="error-cell">${d.lastError ? html`<span title="${d.lastError}">${truncate(d.lastError, 120)}</span>` : html`<span class="muted">—</span>`}</td>
  <td data-label="Delivered">${d.status === 'pending' && d.nextAttemptAt ? html`<span class="muted small">next try</span> ${timeCell(d.nextAttemptAt)}` : timeCell(d.deliveredAt, 'not delivered')}</td>
  <td data-label="Actions" class="actions-cell">${d.status === 'parked' ? html`<form method="post" action="/inbound/${encodeURIComponent(watcher)}/deliveries/${encodeURIComponent(d.id)}/retry" class="inline">${csrfField(session)}<input type="hidden" name="back" value="${back}"><button type="submit" class="button primary small">Retry<span class="visually-hidden"> delivery of ${d.subject ?? d.id}</span></button></form>` : ''}</td>
</tr>`;
  })}</tbody></table></div>`;
}

function stateBadge(w: WatcherView): SafeHtml {
  if (!w.enabled) return statusBadge('disabled');
  const known = STATE_BADGE[w.status.state];
  return known ? badge(...known) : statusBadge(w.status.state);
}

function modeText(w: WatcherView): string {
  return w.mode === 'idle' ? `IDLE (push), polls every ${w.pollIntervalSeconds} s without it` : `Polls every ${w.pollIntervalSeconds} s`;
}

function afterText(after: string): string {
  if (after === 'seen') return 'Mark seen';
  if (after === 'delete') return 'Delete';
  return after.startsWith('move:') ? `Move to ${after.slice(5)}` : after;
}

/** Only the host: the path or query of a webhook URL may carry a token. */
function webhookHost(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol === 'https:' ? '' : `${parsed.protocol.replace(':', '')}://`}${parsed.host}`;
  } catch {
    return '(invalid URL)';
  }
}

/** IMAP: the folder's UIDVALIDITY and the last UID taken in; POP3 has no order, each message is remembered by its UIDL. */
function checkpoint(w: WatcherView, protocol: string | undefined): SafeHtml {
  if (protocol === 'pop3') return html`<span class="muted small">POP3: each message remembered by its UIDL</span>`;
  if (w.status.uidValidity === null) return w.status.lastUid > 0 ? html`after UID ${w.status.lastUid}` : html`<span class="muted">none yet</span>`;
  return html`after UID ${w.status.lastUid} <span class="muted small">(UIDVALIDITY ${w.status.uidValidity})</span>`;
}

/** Delivered, pending and parked counts; in a table cell one per line. */
function counts(w: WatcherView, stacked = false): SafeHtml {
  const { delivered, pending, parked } = w.status;
  const items = [html`${delivered} delivered`, html`${pending} pending`, parked > 0 ? html`<strong class="bad-text">${parked} parked</strong>` : html`0 parked`];
  return stacked ? html`<ul class="plain-list nowrap">${items.map((i) => html`<li>${i}</li>`)}</ul>` : html`${items.map((item, i) => html`${i > 0 ? ', ' : ''}${item}`)}`;
}

/** On the list: how many messages wait for a person, and the watchers to open. */
function parkedHint(watchers: WatcherView[]): SafeHtml {
  if (watchers.length === 0) return html``;
  const total = watchers.reduce((sum, w) => sum + w.status.parked, 0);
  const links = watchers.map((w, i) => html`${i > 0 ? ', ' : ''}<a href="/inbound/${encodeURIComponent(w.name)}?status=parked">${w.name}</a>`);
  return total === 1
    ? html`<div class="hint bad"><p><strong>1 inbound message is parked</strong>: the webhook did not accept it. It stays unacknowledged in the mailbox. Open ${links} to see why and retry.</p></div>`
    : html`<div class="hint bad"><p><strong>${total} inbound messages are parked</strong>: the webhook did not accept them. They stay unacknowledged in the mailbox. Open ${links} to see why and retry.</p></div>`;
}
