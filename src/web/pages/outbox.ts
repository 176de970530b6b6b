// The outbox pages: recent messages with a status filter, one message's delivery story, and an admin's retry or cancel.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isMailgateError } from '../../errors.js';
import type { Mailbox } from '../../outbox/message.js';
import type { AttemptRecord, OutboxStatus, OutboxView } from '../../outbox/repository.js';
import type { MessageSummary } from '../../outbox/summaries.js';
import { badge, csrfField, emptyState, formatBytes, statusBadge, timeCell, truncate, type Tone } from '../components.js';
import { sessionOf, type WebContext } from '../context.js';
import { formText } from '../forms.js';
import { html, type SafeHtml } from '../html.js';
import type { Session } from '../sessions.js';

type IdParams = { Params: { id: string } };
const LIST_LIMIT = 50;

const FILTERS: ReadonlyArray<{ status: OutboxStatus | undefined; label: string }> = [
  { status: undefined, label: 'All' },
  { status: 'queued', label: 'Queued' },
  { status: 'sending', label: 'Sending' },
  { status: 'sent', label: 'Sent' },
  { status: 'failed', label: 'Failed' },
  { status: 'cancelled', label: 'Cancelled' },
];

/** An attempt's outcome as a badge: its tone and words. */
const OUTCOMES: Record<AttemptRecord['outcome'], { tone: Tone; words: string }> = {
  sent: { tone: 'ok', words: 'Sent' },
  retry: { tone: 'warn', words: 'Will retry' },
  next_server: { tone: 'warn', words: 'Tried next server' },
  failed: { tone: 'bad', words: 'Failed' },
  retried: { tone: 'info', words: 'Retried by an admin' },
  cancelled: { tone: 'muted', words: 'Cancelled by an admin' },
  throttled: { tone: 'warn', words: 'Provider limit: waiting' },
};

export function registerOutboxPages(app: FastifyInstance, ctx: WebContext): void {
  const { services } = ctx;

  app.get<{ Querystring: { status?: string } }>('/outbox', async (request, reply) => {
    const wanted = request.query.status || undefined;
    const filter = FILTERS.find((f) => f.status === wanted);
    // An unknown filter is a 400 page naming the valid ones (the service's INPUT_INVALID).
    const messages = await services.messages.recent(LIST_LIMIT, wanted === undefined ? {} : { status: wanted });
    const summaries = await services.messages.summaries(messages.map((m) => m.id));
    const session = sessionOf(request);
    const back = wanted ? `/outbox?status=${wanted}` : '/outbox';
    return ctx.page(request, reply, {
      title: filter?.status ? `Outbox: ${filter.label.toLowerCase()}` : 'Outbox',
      section: 'outbox',
      body: html`<div class="page-head"><h1>Outbox</h1></div>
<nav class="tabs" aria-label="Filter by status">${FILTERS.map((f) => html`<a href="${f.status ? `/outbox?status=${f.status}` : '/outbox'}"${f === filter ? html` aria-current="page"` : ''}>${f.label}</a>`)}</nav>
${messages.length === 0
  ? emptyState(filter?.status ? `No ${filter.label.toLowerCase()} messages` : 'No messages yet', filter?.status ? html`None of the recent messages is ${filter.label.toLowerCase()}. <a href="/outbox">Show all messages</a>.` : 'Messages appear here once an application submits one (POST /api/v1/messages, or mailgate send).')
  : html`<p class="muted small">The ${messages.length === LIST_LIMIT ? `${LIST_LIMIT} newest` : messages.length === 1 ? 'only' : `${messages.length}`} ${filter?.status ? `${filter.label.toLowerCase()} ` : ''}message${messages.length === 1 ? '' : 's'}, newest first.</p>
${messageTable(session, messages, summaries, back)}`}`,
    });
  });

  app.get<IdParams>('/outbox/:id', async (request, reply) => {
    const view = await services.messages.show(request.params.id);
    const summary = (await services.messages.summaries([view.id])).get(view.id);
    const sender = await services.senders.find(view.sender);
    return ctx.page(request, reply, {
      title: `Message ${summary?.subject ? `“${truncate(summary.subject, 60)}”` : view.id}`,
      section: 'outbox',
      body: detail(sessionOf(request), view, summary, sender?.from),
    });
  });

  app.post<IdParams>('/outbox/:id/retry', async (request, reply) => transition(ctx, request, reply, 'retry'));
  app.post<IdParams>('/outbox/:id/cancel', async (request, reply) => transition(ctx, request, reply, 'cancel'));
}

/** Runs the retry or cancel; a refused state change (STATE_CONFLICT) comes back as a flash that says why. */
async function transition(ctx: WebContext, request: FastifyRequest<IdParams>, reply: FastifyReply, action: 'retry' | 'cancel'): Promise<FastifyReply> {
  const { id } = request.params;
  const back = backTo(formText(request.body, 'back'), id);
  try {
    const view = action === 'retry' ? await ctx.services.messages.retry(id) : await ctx.services.messages.cancel(id);
    const subject = (await ctx.services.messages.summaries([view.id])).get(view.id)?.subject;
    const which = subject ? `“${truncate(subject, 60)}”` : `Message ${view.id}`;
    return ctx.redirectWithFlash(request, reply, back, action === 'retry'
      ? { kind: 'success', title: `${which} is queued again`, message: 'A fresh round of attempts starts from the sender’s primary server now; the message page shows the outcome once the worker has tried.' }
      : { kind: 'success', title: `${which} is cancelled`, message: 'It will not be sent. Retry puts it back in the queue if you change your mind.' });
  } catch (err) {
    if (isMailgateError(err) && err.code === 'STATE_CONFLICT') {
      return ctx.redirectWithFlash(request, reply, back, { kind: 'error', title: action === 'retry' ? 'This message cannot be retried' : 'This message cannot be cancelled', message: err.message });
    }
    throw err;
  }
}

/** Where to go after an action: the list (with its filter) it was started from, else the message. Never another site. */
function backTo(requested: string, id: string): string {
  return /^\/outbox(\?status=[a-z]+)?$/.test(requested) ? requested : `/outbox/${encodeURIComponent(id)}`;
}

function messageTable(session: Session, messages: OutboxView[], summaries: Map<string, MessageSummary>, back: string): SafeHtml {
  return html`<div class="table-wrap"><table class="responsive outbox-table">
<caption class="visually-hidden">Recent messages</caption>
<thead><tr><th scope="col">Message ID</th><th scope="col">Sender</th><th scope="col">Message</th><th scope="col">Status</th><th scope="col">Attempts</th><th scope="col">Server</th><th scope="col">Last error</th><th scope="col">Accepted</th><th scope="col">Sent</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
<tbody>${messages.map((m) => {
    const s = summaries.get(m.id);
    return html`<tr>
  <th scope="row" data-label="Message ID"><a class="mono small" href="/outbox/${encodeURIComponent(m.id)}">${m.id}</a></th>
  <td data-label="Sender">${m.sender}</td>
  <td data-label="Message" class="message-cell">${s ? html`<span class="subject">${s.subject ? truncate(s.subject, 80) : html`<span class="muted">(no subject)</span>`}</span><span class="recipients">to ${recipientSummary(s)}</span>` : html`<span class="muted">—</span>`}</td>
  <td data-label="Status">${statusBadge(m.status)}</td>
  <td data-label="Attempts">${m.attempts}</td>
  <td data-label="Server">${m.server ?? html`<span class="muted">—</span>`}</td>
  <td data-label="Last error" class="error-cell">${m.lastError ? html`<span title="${m.lastError}">${truncate(m.lastError, 90)}</span>` : html`<span class="muted">—</span>`}</td>
  <td data-label="Accepted">${timeCell(m.createdAt)}</td>
  <td data-label="Sent">${m.status === 'queued' && m.nextAttemptAt && m.attempts > 0 ? html`<span class="muted small">next try</span> ${timeCell(m.nextAttemptAt)}` : timeCell(m.sentAt)}</td>
  <td data-label="Actions" class="actions-cell">${actionButtons(session, m, { back, small: true })}</td>
</tr>`;
  })}</tbody></table></div>`;
}

/** Retry for a failed or cancelled message, Cancel (asking first) for a queued one; nothing otherwise. */
function actionButtons(session: Session, m: OutboxView, options: { back?: string; small?: boolean } = {}): SafeHtml {
  const base = `/outbox/${encodeURIComponent(m.id)}`;
  const form = (action: 'retry' | 'cancel', verb: string, style: string, confirm?: string) =>
    html`<form method="post" action="${base}/${action}" class="inline"${confirm ? html` data-confirm="${confirm}"` : ''}>${csrfField(session)}${options.back ? html`<input type="hidden" name="back" value="${options.back}">` : ''}<button type="submit" class="button ${style}${options.small ? ' small' : ''}">${verb}${options.small ? html`<span class="visually-hidden"> message ${m.id}</span>` : ''}</button></form>`;
  if (m.status === 'failed' || m.status === 'cancelled') return form('retry', 'Retry', 'primary');
  if (m.status === 'queued') return form('cancel', 'Cancel', 'danger-outline', `Cancel message ${m.id}? It will not be sent (Retry undoes this).`);
  return html``;
}

function detail(session: Session, m: OutboxView, s: MessageSummary | undefined, senderFrom: string | undefined): SafeHtml {
  const title = s?.subject ? s.subject : '(no subject)';
  const history = [...m.history].reverse();
  return html`<nav class="crumbs" aria-label="Breadcrumb"><a href="/outbox">Outbox</a> / <span class="mono">${m.id}</span></nav>
<div class="page-head"><h1><span>${title}</span> ${statusBadge(m.status)}</h1>
<div class="actions">${actionButtons(session, m)}</div></div>
${stateHint(m)}
<div class="grid-2">
<section class="panel" aria-labelledby="delivery-title"><h2 id="delivery-title">Delivery</h2><dl class="facts">
  <dt>Status</dt><dd>${statusBadge(m.status)}</dd>
  <dt>Sender</dt><dd>${m.sender}</dd>
  <dt>Attempts</dt><dd>${m.attempts}</dd>
  <dt>Server used</dt><dd>${m.server ?? '—'}</dd>
  ${m.nextAttemptAt ? html`<dt>Next attempt</dt><dd>${Date.parse(m.nextAttemptAt) <= Date.now() ? html`due now <span class="muted small">(waiting for the outbox worker)</span>` : timeCell(m.nextAttemptAt)}</dd>` : ''}
  <dt>Accepted</dt><dd>${timeCell(m.createdAt)}</dd>
  <dt>Sent</dt><dd>${timeCell(m.sentAt, 'not sent')}</dd>
  <dt>Last error</dt><dd${m.lastError ? html` class="error-text-plain"` : ''}>${m.lastError ?? '—'}</dd>
  <dt>Server response</dt><dd>${m.response ? html`<span class="mono small">${m.response}</span>` : '—'}</dd>
  ${m.rejected.length > 0 ? html`<dt>Refused recipients</dt><dd>${m.rejected.join(', ')}</dd>` : ''}
  <dt>Message-ID</dt><dd class="mono small">${m.messageId}</dd>
  <dt>Idempotency key</dt><dd>${m.idempotencyKey ? html`<span class="mono small">${m.idempotencyKey}</span>` : html`<span class="muted">none given</span>`}</dd>
  <dt>Outbox ID</dt><dd class="mono small">${m.id}</dd>
</dl></section>
<section class="panel" aria-labelledby="message-title"><h2 id="message-title">Message</h2>
${s
  ? html`<dl class="facts">
  <dt>Subject</dt><dd>${s.subject || html`<span class="muted">(no subject)</span>`}</dd>
  <dt>From</dt><dd>${s.from ? mailbox(s.from) : senderFrom ? html`${senderFrom} <span class="muted small">(the sender’s)</span>` : html`<span class="muted">the sender’s address</span>`}</dd>
  <dt>To</dt><dd>${addressList(s.to)}</dd>
  ${s.cc.length > 0 ? html`<dt>Cc</dt><dd>${addressList(s.cc)}</dd>` : ''}
  ${s.bcc.length > 0 ? html`<dt>Bcc</dt><dd>${addressList(s.bcc)}</dd>` : ''}
  <dt>Size</dt><dd>${formatBytes(s.size)}</dd>
  <dt>Body</dt><dd>${
    s.bodyDropped
      ? html`dropped after the retention period <span class="muted small">(retention.messageBodyDays)</span>`
      : s.relayed
        ? html`the message as the program submitted it (MIME) <span class="muted small">(not shown here)</span>`
        : html`${[s.hasText ? 'plain text' : '', s.hasHtml ? 'HTML' : ''].filter(Boolean).join(' and ') || 'none'} <span class="muted small">(not shown here)</span>`
  }</dd>
  ${s.relayed ? html`<dt>Submitted</dt><dd>through the SMTP relay by ${s.relayed.account === 'unauthenticated' ? 'an allowed network without a login' : html`relay account <strong>${s.relayed.account}</strong>`} from ${s.relayed.client}</dd>` : ''}
  <dt>Attachments</dt><dd>${s.attachments.length === 0 ? 'none' : html`<ul class="plain-list">${s.attachments.map((a) => html`<li>${a.filename} <span class="muted small">${a.contentType ?? ''} ${formatBytes(a.bytes)}</span></li>`)}</ul>`}</dd>
</dl>`
  : html`<p class="muted">The stored message cannot be read.</p>`}
</section>
</div>
<section class="panel" aria-labelledby="history-title"><h2 id="history-title">Attempt history</h2>
${history.length === 0
  ? html`<p class="muted">No attempt yet${m.status === 'queued' ? ': the message waits for the outbox worker.' : '.'}</p>`
  : html`<div class="table-wrap"><table class="responsive">
<caption class="visually-hidden">Attempts and admin actions, newest first</caption>
<thead><tr><th scope="col">Time</th><th scope="col">Server</th><th scope="col">Outcome</th><th scope="col">Error or response</th></tr></thead>
<tbody>${history.map(
    (h) => html`<tr>
  <td data-label="Time">${timeCell(h.at)}</td>
  <td data-label="Server">${h.server === '-' ? html`<span class="muted">admin</span>` : h.server}</td>
  <td data-label="Outcome">${OUTCOMES[h.outcome] ? badge(OUTCOMES[h.outcome].tone, OUTCOMES[h.outcome].words) : statusBadge(h.outcome)}</td>
  <td data-label="Error or response" class="${h.error && h.outcome !== 'retried' && h.outcome !== 'cancelled' ? 'error-cell' : ''}">${h.error ? (h.outcome === 'retried' ? html`<span class="muted">had failed with:</span> ${h.error}` : h.error) : h.response ? html`<span class="mono small">${h.response}</span>` : html`<span class="muted">—</span>`}</td>
</tr>`,
  )}</tbody></table></div>`}
</section>`;
}

/** What the status means for the person looking, and what they can do. */
function stateHint(m: OutboxView): SafeHtml {
  switch (m.status) {
    case 'failed':
      return html`<div class="hint bad"><p><strong>Mailgate gave up on this message.</strong> ${m.lastError ?? ''}</p><p>Fix the cause (the recipient, the server or its credential), then Retry: a fresh round of attempts starts from the sender’s primary server.</p></div>`;
    case 'cancelled':
      return html`<div class="hint"><p><strong>Cancelled:</strong> this message will not be sent. Retry puts it back in the queue.</p></div>`;
    case 'sending':
      return html`<div class="hint"><p><strong>Being sent right now.</strong> Reload in a moment for the outcome; it cannot be cancelled during the attempt.</p></div>`;
    case 'queued':
      return m.attempts > 0 && m.lastError
        ? html`<div class="hint warn"><p><strong>Waiting to try again</strong> ${m.nextAttemptAt ? html`(${timeCell(m.nextAttemptAt)})` : ''} after: ${m.lastError}</p><p>Cancel stops it from being sent.</p></div>`
        : html``;
    default:
      return html``;
  }
}

function recipientSummary(s: MessageSummary): string {
  const all = [...s.to, ...s.cc, ...s.bcc];
  if (all.length === 0) return 'nobody';
  const first = all[0]!.address;
  return all.length === 1 ? first : `${first} and ${all.length - 1} more`;
}

function mailbox(m: Mailbox): string {
  return m.name ? `${m.name} <${m.address}>` : m.address;
}

function addressList(list: Mailbox[]): SafeHtml {
  if (list.length === 0) return html`<span class="muted">nobody</span>`;
  const shown = list.slice(0, 20);
  return html`${shown.map(mailbox).join(', ')}${list.length > shown.length ? html` <span class="muted">and ${list.length - shown.length} more</span>` : ''}`;
}

