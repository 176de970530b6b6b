// The API keys pages: the keys with their scopes in words and when they were last used, the create form, the page that
// shows a new key its only time, and revoke.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApiKeyInfo, CreatedApiKey } from '../../apikeys/apiKeys.js';
import { isMailgateError } from '../../errors.js';
import { badge, csrfField, emptyState, errorSummary, field, statusBadge, timeCell } from '../components.js';
import { sessionOf, type WebContext } from '../context.js';
import { formList, formProblems, formText } from '../forms.js';
import { html, type SafeHtml } from '../html.js';
import type { Session } from '../sessions.js';

type NameParams = { Params: { name: string } };

const LABELS: Record<string, string> = { name: 'Name', scopes: 'What the key may do' };

/** The fixed scopes, in the form's order, with what each allows in words. */
const FIXED_SCOPES: ReadonlyArray<{ scope: string; label: string; help: string }> = [
  { scope: 'send', label: 'Send mail', help: 'POST /api/v1/messages and reading the status of the messages (GET /api/v1/messages/:id). For applications, alarm systems, printers.' },
  { scope: 'metrics', label: 'Read metrics', help: 'GET /metrics, for a Prometheus scraper.' },
  { scope: 'admin', label: 'Admin', help: 'Everything the API can do: credentials, servers, senders, watchers, API keys, the outbox, the audit log. Only for tools that configure Mailgate.' },
];

/** One scope in words: "send mail", "read access tokens of m365", "admin (everything)". */
function scopeWords(scope: string): string {
  if (scope === 'admin') return 'admin (everything)';
  if (scope === 'send') return 'send mail';
  if (scope === 'metrics') return 'read metrics';
  if (scope === 'token:*') return 'read access tokens of every credential';
  if (scope.startsWith('token:')) return `read access tokens of ${scope.slice('token:'.length)}`;
  return scope;
}

function scopeList(scopes: readonly string[]): SafeHtml {
  if (scopes.length === 0) return html`<span class="muted">nothing</span>`;
  return html`<ul class="plain-list scope-list">${scopes.map((s) => html`<li>${scopeWords(s)} <span class="mono small muted">${s}</span></li>`)}</ul>`;
}

export function registerApiKeyPages(app: FastifyInstance, ctx: WebContext): void {
  const { services } = ctx;

  app.get('/apikeys', async (request, reply) => {
    const keys = await services.apiKeys.list();
    // Active keys first: those are the ones someone may need to revoke.
    const ordered = [...keys.filter((k) => k.revokedAt === null), ...keys.filter((k) => k.revokedAt !== null)];
    return ctx.page(request, reply, {
      title: 'API keys',
      section: 'apikeys',
      body: html`<div class="page-head"><h1>API keys</h1><a class="button primary" href="/apikeys/new">Create API key</a></div>
<p class="muted apikeys-intro">Applications send mail by calling <code>POST /api/v1/messages</code> with the header <code>Authorization: Bearer &lt;key&gt;</code>; scripts and mail clients fetch a credential’s access token the same way. Each key may do only what its scopes allow. Mailgate keeps only a hash of each key: a key is shown once, when it is created. Every route and request body is described in the <a href="/api/v1/openapi.json">OpenAPI document</a>.</p>
${ordered.length === 0
  ? emptyState(
      'No API keys yet',
      html`An API key lets an application use Mailgate: send mail with <code>POST /api/v1/messages</code> and <code>Authorization: Bearer &lt;key&gt;</code>, let a script fetch a credential’s access token, or let Prometheus read the metrics.`,
      html`<a class="button primary" href="/apikeys/new">Create the first API key</a>`,
    )
  : keyTable(sessionOf(request), ordered)}`,
    });
  });

  app.get('/apikeys/new', async (request, reply) => createForm(request, reply, ctx, { name: '', scopes: [] }));

  app.post('/apikeys', async (request, reply) => {
    const name = formText(request.body, 'name').trim();
    const scopes = formList(request.body, 'scopes');
    let created: CreatedApiKey;
    try {
      created = await services.apiKeys.create(name, scopes);
    } catch (err) {
      const problems =
        isMailgateError(err) && err.code === 'ALREADY_EXISTS'
          ? new Map([['name', `an active API key is named “${name}” already: choose another name, or revoke that key first`]])
          : formProblems(err);
      // The service says "expected at least one scope: …, got []"; on the form, the boxes are right there.
      if (scopes.length === 0 && problems.has('scopes')) problems.set('scopes', 'choose at least one thing the key may do');
      return createForm(request, reply, ctx, { name, scopes, problems });
    }
    // Rendered here, not after a redirect: the key must not pass through the session's flash (the store) on its way.
    // ui.ts sends every UI page with cache-control: no-store, so the browser keeps no copy either.
    const senders = await services.senders.list();
    return ctx.page(request, reply, { title: `API key ${created.name} created`, section: 'apikeys', body: createdPage(created, services.config.publicUrl, senders[0]?.name) });
  });

  app.post<NameParams>('/apikeys/:name/revoke', async (request, reply) => {
    const info = await services.apiKeys.revoke(request.params.name);
    return ctx.redirectWithFlash(request, reply, '/apikeys', {
      kind: 'success',
      title: `Revoked ${info.name}`,
      message: 'Requests with this key are refused from now on (on other Mailgate instances sharing the database, within a second).',
    });
  });
}

function keyTable(session: Session, keys: ApiKeyInfo[]): SafeHtml {
  return html`<div class="table-wrap"><table class="responsive apikeys-table">
<caption class="visually-hidden">API keys</caption>
<thead><tr><th scope="col">Name</th><th scope="col">Allowed to</th><th scope="col">Created</th><th scope="col">Last used</th><th scope="col">Status</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
<tbody>${keys.map(
    (k) => html`<tr${k.revokedAt ? html` class="revoked"` : ''}>
  <th scope="row" data-label="Name" class="name-cell">${k.name}</th>
  <td data-label="Allowed to">${scopeList(k.scopes)}</td>
  <td data-label="Created">${timeCell(k.createdAt)}</td>
  <td data-label="Last used">${timeCell(k.lastUsedAt, 'never')}</td>
  <td data-label="Status">${k.revokedAt ? html`${badge('muted', 'Revoked')} ${timeCell(k.revokedAt)}` : statusBadge('active')}</td>
  <td data-label="Actions" class="actions-cell">${k.revokedAt
    ? ''
    : html`<form method="post" action="/apikeys/${encodeURIComponent(k.name)}/revoke" class="inline" data-confirm="${`Revoke the API key ${k.name}? Applications using it are refused at once; this cannot be undone.`}">${csrfField(session)}<button type="submit" class="button danger-outline small">Revoke<span class="visually-hidden"> ${k.name}</span></button></form>`}</td>
</tr>`,
  )}</tbody></table></div>
<p class="help">“Last used” is updated at most once a minute.</p>`;
}

async function createForm(request: FastifyRequest, reply: FastifyReply, ctx: WebContext, options: { name: string; scopes: string[]; problems?: Map<string, string> }): Promise<FastifyReply> {
  const session = sessionOf(request);
  const problems = options.problems ?? new Map<string, string>();
  const checked = new Set(options.scopes);
  const credentials = await ctx.services.credentials.list();
  const scopeError = problems.get('scopes');
  const box = (id: string, scope: string, label: SafeHtml, help?: string) => html`<div class="check"><input type="checkbox" id="${id}" name="scopes" value="${scope}"${checked.has(scope) ? html` checked` : ''}${help ? html` aria-describedby="${id}-help"` : ''}><div><label for="${id}">${label}</label>${help ? html`<p class="help" id="${id}-help">${help}</p>` : ''}</div></div>`;

  const body = html`<nav class="crumbs" aria-label="Breadcrumb"><a href="/apikeys">API keys</a> / Create</nav>
<h1>Create an API key</h1>
${errorSummary(problems, LABELS)}
<form method="post" action="/apikeys" class="stack apikey-form" novalidate>
  ${csrfField(session)}
  ${field({ name: 'name', label: LABELS.name!, value: options.name, required: true, error: problems.get('name'), help: 'Who uses the key, e.g. alarm-system or prometheus: it names the key in the audit log. Letters, digits, “.”, “_” and “-”.', attributes: 'autocapitalize="none" spellcheck="false" autocomplete="off"' })}
  <fieldset${scopeError ? html` class="has-error" aria-describedby="scopes-error"` : ''}>
    <legend>${LABELS.scopes}</legend>
    ${scopeError ? html`<p class="error-text" id="scopes-error"><span class="visually-hidden">Error: </span>${scopeError}</p>` : ''}
    ${FIXED_SCOPES.map((s, i) => box(i === 0 ? 'f-scopes' : `scope-${s.scope}`, s.scope, html`${s.label} <span class="mono small muted">(${s.scope === 'admin' ? 'everything' : s.scope})</span>`, s.help))}
    <fieldset class="token-scopes" aria-describedby="token-scopes-help">
      <legend>Read access tokens of</legend>
      <p class="help" id="token-scopes-help">For scripts and mail clients that sign in to the mailbox themselves: GET /api/v1/credentials/&lt;name&gt;/access-token.</p>
      ${credentials.map((c, i) => box(`scope-token-${i}`, `token:${c.name}`, html`${c.name} <span class="muted">(${c.email})</span> <span class="mono small muted">token:${c.name}</span>`))}
      ${credentials.length === 0 ? html`<p class="muted small">No credential exists yet; “every credential” covers the ones added later too.</p>` : ''}
      ${box('scope-token-all', 'token:*', html`of every credential, present and future <span class="mono small muted">(token:*)</span>`)}
    </fieldset>
  </fieldset>
  <div class="actions"><button type="submit" class="button primary">Create API key</button> <a class="button secondary" href="/apikeys">Cancel</a></div>
</form>`;
  return ctx.page(request, reply, { title: 'Create an API key', section: 'apikeys', body, status: problems.size > 0 ? 400 : 200 });
}

/** The one page that shows the key: copy it now, with an example that uses it. */
function createdPage(created: CreatedApiKey, publicUrl: string, senderName: string | undefined): SafeHtml {
  const key = created.key.reveal();
  const mays = new Set<string>(created.scopes);
  const canSend = mays.has('send') || mays.has('admin');
  const tokenOf = created.scopes.find((s) => s.startsWith('token:'));
  const tokenCredential = tokenOf === undefined || tokenOf === 'token:*' ? '<credential>' : tokenOf.slice('token:'.length);
  const sender = senderName ?? '<sender>';
  const body = JSON.stringify({ sender, to: ['someone@example.com'], subject: 'Hello from Mailgate', text: 'It works.' });
  const examples: SafeHtml[] = [];
  if (canSend) {
    examples.push(html`<h3>Send mail</h3>
<pre class="curl-example" tabindex="0" aria-label="Example: send mail with this key"><code>curl -sS -X POST ${publicUrl}/api/v1/messages \\
  -H 'Authorization: Bearer ${key}' \\
  -H 'Content-Type: application/json' \\
  -d '${body}'</code></pre>
<p class="help">${senderName ? html`<code>${senderName}</code> is a sender defined under <a href="/servers">Servers &amp; senders</a>; use the one the application should send as.` : html`Replace <code>&lt;sender&gt;</code> with the name of a sender (define one under <a href="/servers">Servers &amp; senders</a>).`} Mailgate answers <code>202</code> with the message’s id.</p>`);
  }
  if (tokenOf !== undefined || mays.has('admin')) {
    examples.push(html`<h3>Fetch an access token</h3>
<pre class="curl-example" tabindex="0" aria-label="Example: fetch an access token with this key"><code>curl -sS ${publicUrl}/api/v1/credentials/${tokenCredential}/access-token \\
  -H 'Authorization: Bearer ${key}'</code></pre>`);
  }
  if (mays.has('metrics') || mays.has('admin')) {
    examples.push(html`<h3>Read the metrics</h3>
<pre class="curl-example" tabindex="0" aria-label="Example: read the metrics with this key"><code>curl -sS ${publicUrl}/metrics -H 'Authorization: Bearer ${key}'</code></pre>`);
  }
  return html`<nav class="crumbs" aria-label="Breadcrumb"><a href="/apikeys">API keys</a> / ${created.name}</nav>
<h1>API key ${created.name} created</h1>
<div class="hint warn" role="alert"><p><strong>Copy the key now: it cannot be shown again.</strong> Mailgate keeps only a hash of it — not this page, the list or the audit log will show it later. If it gets lost, revoke it and create another.</p></div>
<section class="panel new-key" aria-labelledby="new-key-title">
  <h2 id="new-key-title">The key</h2>
  <div class="copy-row"><input type="text" id="new-key" class="mono" value="${key}" readonly aria-label="API key ${created.name}" autocomplete="off" spellcheck="false"><button type="button" class="button secondary" data-copy="new-key">Copy</button><span class="copy-status" role="status" aria-live="polite"></span></div>
  <dl class="facts key-facts"><dt>Name</dt><dd>${created.name}</dd><dt>Allowed to</dt><dd>${scopeList(created.scopes)}</dd><dt>Created</dt><dd>${timeCell(created.createdAt)}</dd></dl>
</section>
${examples.length > 0 ? html`<section class="panel" aria-labelledby="use-title"><h2 id="use-title">How to use it</h2>${examples}</section>` : ''}
<p class="actions"><a class="button primary" href="/apikeys">I have copied the key</a></p>`;
}
