// An SMTP server's sending limits in the web UI: the panel on its page (limits, what is left, a provider's pause with Resume) and the form that changes them.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isMailgateError } from '../../errors.js';
import { LIMIT_NAMES, type LimitName, type ServerView } from '../../servers/model.js';
import { csrfField, errorSummary, field, postButton } from '../components.js';
import { sessionOf, type WebContext } from '../context.js';
import type { Session } from '../sessions.js';
import { formText } from '../forms.js';
import { html, type SafeHtml } from '../html.js';

type NameParams = { Params: { name: string } };

const LIMIT_LABELS: Record<LimitName, string> = {
  messagesPerMinute: 'Messages per minute',
  recipientsPerMinute: 'Recipients per minute',
  messagesPerDay: 'Messages per day (rolling 24 hours)',
  recipientsPerDay: 'Recipients per day (rolling 24 hours)',
  connections: 'Connections at once',
};

/** The "Sending limits" panel of an SMTP server's page. */
export function limitsPanel(view: ServerView, session: Session): SafeHtml {
  const base = `/servers/${encodeURIComponent(view.name)}`;
  const budget = view.budget;

  const rows = LIMIT_NAMES.filter((n) => view.effectiveLimits[n] !== undefined);
  return html`<section class="panel" aria-labelledby="limits-title"><h2 id="limits-title">Sending limits</h2>
${view.limitPreset ? html`<p class="help">Preset <strong>${view.limitPreset.name}</strong>: ${view.limitPreset.source}.</p>` : html`<p class="help">No preset for this host: only the limits set here apply.</p>`}
${budget?.pause ? html`<div class="hint warn" role="status"><p><strong>Paused until ${budget.pause.until}</strong> (${budget.pause.limit}): ${budget.pause.reason}. Mail for this server waits, nothing is lost.</p>${postButton(session, `${base}/resume`, 'Resume now', { confirm: 'Send through this server again now? Only if the provider lifted its limit.' })}</div>` : ''}
${rows.length === 0
  ? html`<p>No limits: Mailgate sends as fast as the server takes it.</p>`
  : html`<table><caption class="visually-hidden">Limits, use and what is left</caption><thead><tr><th scope="col">Limit</th><th scope="col">Value</th><th scope="col">Used in its window</th><th scope="col">Left</th></tr></thead><tbody>
${rows.map((n) => html`<tr><th scope="row">${LIMIT_LABELS[n]}</th><td>${String(view.effectiveLimits[n])}${view.limits[n] !== undefined ? html` <span class="badge muted">set here</span>` : ''}</td><td>${budget?.used[n] !== undefined ? String(budget.used[n]) : '—'}</td><td>${budget?.left[n] !== undefined ? String(budget.left[n]) : '—'}</td></tr>`)}
</tbody></table>`}
${view.source === 'api' ? html`<p><a class="button secondary" href="${base}/limits">Change limits</a></p>` : html`<p class="muted">Defined in mailgate.yaml: change <code>servers.${view.name}.limits</code> there.</p>`}
</section>`;
}

export function registerServerLimitPages(app: FastifyInstance, ctx: WebContext): void {
  const { services } = ctx;

  app.get<NameParams>('/servers/:name/limits', async (request, reply) => {
    const view = await services.servers.show(request.params.name);
    const values = Object.fromEntries(LIMIT_NAMES.map((n) => [n, view.limits[n] === undefined ? '' : view.limits[n] === null ? 'none' : String(view.limits[n])]));
    return limitsForm(request, reply, ctx, view, values, new Map());
  });

  app.post<NameParams>('/servers/:name/limits', async (request, reply) => {
    const view = await services.servers.show(request.params.name);
    const values = Object.fromEntries(LIMIT_NAMES.map((n) => [n, formText(request.body, n).trim()]));
    // Empty: the preset's value (or none); "none": off even if the preset has one; a number: that.
    const limits = Object.fromEntries(LIMIT_NAMES.filter((n) => values[n] !== '').map((n) => [n, values[n]]));
    try {
      await services.servers.update(view.name, { limits });
    } catch (err) {
      if (!isMailgateError(err) || err.code !== 'INPUT_INVALID') throw err;
      const problems = new Map<string, string>();
      for (const p of Array.isArray(err.details.problems) ? (err.details.problems as string[]) : [err.message]) {
        const match = /^limits\.([A-Za-z]+): (.*)$/s.exec(p);
        problems.set(match ? match[1]! : '_', match ? match[2]! : p);
      }
      return limitsForm(request, reply, ctx, view, values, problems);
    }
    return ctx.redirectWithFlash(request, reply, `/servers/${encodeURIComponent(view.name)}/test`, { kind: 'success', title: `Changed the sending limits of ${view.name}` });
  });

  app.post<NameParams>('/servers/:name/resume', async (request, reply) => {
    const { resumed } = await services.servers.resume(request.params.name);
    return ctx.redirectWithFlash(request, reply, `/servers/${encodeURIComponent(request.params.name)}/test`, resumed ? { kind: 'success', title: `${request.params.name} resumed`, message: 'Mail waiting for it goes now.' } : { kind: 'info', title: `${request.params.name} was not paused` });
  });
}

function limitsForm(request: FastifyRequest, reply: FastifyReply, ctx: WebContext, view: ServerView, values: Record<string, string>, problems: Map<string, string>): Promise<FastifyReply> {
  const base = `/servers/${encodeURIComponent(view.name)}`;
  const preset = view.limitPreset?.limits ?? {};
  const body = html`<nav class="crumbs" aria-label="Breadcrumb"><a href="/servers">Servers &amp; senders</a> / <a href="${base}/test">${view.name}</a> / Sending limits</nav>
<h1>Sending limits of ${view.name}</h1>
${errorSummary(problems, LIMIT_LABELS)}
<form method="post" action="${base}/limits" class="stack" novalidate>
  ${csrfField(sessionOf(request))}
  <p class="help">A whole number sets a limit. Empty keeps ${view.limitPreset ? html`the ${view.limitPreset.name} preset's value` : 'no limit'}; <code>none</code> switches a preset's limit off.</p>
  <div class="form-grid">${LIMIT_NAMES.map((n) => field({ name: n, label: LIMIT_LABELS[n], value: values[n], error: problems.get(n), attributes: 'inputmode="numeric"', help: preset[n] !== undefined ? `Preset: ${preset[n]}` : 'No preset' }))}</div>
  <div class="actions"><button type="submit" class="button primary">Save limits</button> <a class="button secondary" href="${base}/test">Cancel</a></div>
</form>`;
  return ctx.page(request, reply, { title: `Sending limits of ${view.name}`, section: 'servers', body, status: problems.size > 0 ? 400 : 200 });
}
