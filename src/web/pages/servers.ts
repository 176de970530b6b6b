// The servers & senders list and the server pages: add/edit (the form is in serverForm.ts) and delete confirmations (the test page is in serverTest.ts, senders in senders.ts).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { CredentialView } from '../../credentials/model.js';
import { ErrorCode, isMailgateError } from '../../errors.js';
import type { SenderView } from '../../senders/model.js';
import { SERVER_PROTOCOLS, type SecurityMode, type ServerProtocol, type ServerView } from '../../servers/model.js';
import { csrfField, emptyState } from '../components.js';
import { sessionOf, type WebContext } from '../context.js';
import { formProblems, formText } from '../forms.js';
import { html, type SafeHtml } from '../html.js';
import { DEFAULT_PORT, DEFAULT_SECURITY, SECURITY_SHORT, serverForm, serverInputFromValues, serverValuesFromForm, type ServerFormValues } from './serverForm.js';

export type NameParams = { Params: { name: string } };

export function registerServerPages(app: FastifyInstance, ctx: WebContext): void {
  const { services } = ctx;

  // ---- the list ------------------------------------------------------------------------------------------------

  app.get('/servers', async (request, reply) => {
    const [servers, senders, credentials] = await Promise.all([services.servers.list(), services.senders.list(), services.credentials.list()]);
    return ctx.page(request, reply, { title: 'Servers & senders', section: 'servers', body: listPage(servers, senders, credentials) });
  });

  // ---- servers -------------------------------------------------------------------------------------------------

  app.get<{ Querystring: { protocol?: string } }>('/servers/new', async (request, reply) => {
    const protocol = (SERVER_PROTOCOLS as readonly string[]).includes(request.query.protocol ?? '') ? (request.query.protocol as ServerProtocol) : 'smtp';
    const security = DEFAULT_SECURITY[protocol];
    const credentials = await services.credentials.list();
    const port = String(DEFAULT_PORT[protocol][security]);
    const values: ServerFormValues = { name: '', protocol, host: '', port, portDefault: port, security, username: '', authType: credentials.length > 0 ? 'oauth2' : 'password', credential: credentials.length === 1 ? credentials[0]!.name : '', tlsCa: '', skipVerify: false };
    return serverForm(request, reply, ctx, { mode: 'add', values, credentials });
  });

  app.post('/servers', async (request, reply) => {
    const credentials = await services.credentials.list();
    const values = serverValuesFromForm(request.body);
    const { input, problems, notes } = serverInputFromValues(values, formText(request.body, 'password'), 'add', credentials, undefined);
    if (problems.size === 0) {
      try {
        const view = await services.servers.add(input);
        return ctx.redirectWithFlash(request, reply, `/servers/${encodeURIComponent(view.name)}/test`, {
          kind: 'success',
          title: `Added ${view.name}`,
          message: [...notes, view.warnings.length > 0 ? `Mailgate sees ${view.warnings.length === 1 ? 'a possible problem' : `${view.warnings.length} possible problems`}, listed below.` : '', 'Run the test to check the connection and sign-in.'].filter(Boolean).join(' '),
        });
      } catch (err) {
        if (isMailgateError(err) && err.code === ErrorCode.ALREADY_EXISTS) problems.set('name', 'a server with this name exists already: choose another name, or edit that one');
        else for (const [k, v] of formProblems(err)) problems.set(k, v);
      }
    }
    return serverForm(request, reply, ctx, { mode: 'add', values, credentials, problems });
  });

  app.get<NameParams>('/servers/:name', async (request, reply) => reply.redirect(`/servers/${encodeURIComponent(request.params.name)}/test`, 303));

  app.get<NameParams>('/servers/:name/edit', async (request, reply) => {
    const view = await services.servers.show(request.params.name);
    if (view.source === 'config') return readOnlyPage(request, reply, ctx, 'server', view.name);
    const credentials = await services.credentials.list();
    const port = String(view.port);
    const values: ServerFormValues = {
      name: view.name,
      protocol: view.protocol,
      host: view.host,
      port,
      portDefault: DEFAULT_PORT[view.protocol][view.security] === view.port ? port : '',
      security: view.security,
      username: view.username ?? '',
      authType: view.auth.type,
      credential: view.auth.type === 'oauth2' ? view.auth.credential : '',
      tlsCa: view.tlsCa ?? '',
      skipVerify: !view.tlsRejectUnauthorized,
    };
    return serverForm(request, reply, ctx, { mode: 'edit', view, values, credentials });
  });

  app.post<NameParams>('/servers/:name', async (request, reply) => {
    const view = await services.servers.show(request.params.name);
    if (view.source === 'config') return readOnlyPage(request, reply, ctx, 'server', view.name);
    const credentials = await services.credentials.list();
    const values = { ...serverValuesFromForm(request.body), name: view.name };
    const { input, problems, notes } = serverInputFromValues(values, formText(request.body, 'password'), 'edit', credentials, view);
    if (problems.size === 0) {
      try {
        const { name: _name, ...patch } = input;
        const updated = await services.servers.update(view.name, patch);
        return ctx.redirectWithFlash(request, reply, `/servers/${encodeURIComponent(view.name)}/test`, {
          kind: 'success',
          title: `Saved ${view.name}`,
          message: [...notes, updated.warnings.length > 0 ? `Mailgate sees ${updated.warnings.length === 1 ? 'a possible problem' : `${updated.warnings.length} possible problems`}, listed below.` : '', 'Run the test to check the change.'].filter(Boolean).join(' '),
        });
      } catch (err) {
        for (const [k, v] of formProblems(err)) problems.set(k, v);
      }
    }
    return serverForm(request, reply, ctx, { mode: 'edit', view, values, credentials, problems });
  });

  app.get<NameParams>('/servers/:name/delete', async (request, reply) => {
    const view = await services.servers.show(request.params.name);
    if (view.source === 'config') return readOnlyPage(request, reply, ctx, 'server', view.name);
    const [senders, watchers] = await Promise.all([services.senders.list(), services.watchers.list()]);
    const usedBy = [
      ...senders.filter((s) => s.primary === view.name || s.backups.includes(view.name)).map((s) => `sender ${s.name}`),
      ...watchers.filter((w) => w.server === view.name).map((w) => `watcher ${w.name}`),
    ];
    return ctx.page(request, reply, {
      title: `Delete ${view.name}`,
      section: 'servers',
      body: html`<section class="panel narrow"><h1>Delete ${view.name}?</h1>
<p>Mailgate forgets the ${view.protocol.toUpperCase()} server <strong>${view.host}:${view.port}</strong>${view.auth.type === 'password' ? ' and its stored password' : ''}. The mail server itself is not touched.</p>
${usedBy.length > 0 ? html`<div class="hint warn"><p><strong>Still used by ${usedBy.join(', ')}</strong>: ${usedBy.length === 1 ? 'it' : 'they'} will fail until you point ${usedBy.length === 1 ? 'it' : 'them'} at another server.</p></div>` : ''}
<form method="post" action="/servers/${encodeURIComponent(view.name)}/delete" class="actions">${csrfField(sessionOf(request))}
<button type="submit" class="button danger">Delete ${view.name}</button> <a class="button secondary" href="/servers">Cancel</a></form></section>`,
    });
  });

  app.post<NameParams>('/servers/:name/delete', async (request, reply) => {
    try {
      await services.servers.remove(request.params.name);
    } catch (err) {
      if (!isMailgateError(err) || err.code !== ErrorCode.STATE_CONFLICT) throw err;
      return ctx.redirectWithFlash(request, reply, '/servers', { kind: 'error', title: `${request.params.name} was not deleted`, message: err.message });
    }
    return ctx.redirectWithFlash(request, reply, '/servers', { kind: 'success', title: `Deleted ${request.params.name}` });
  });
}

// ---- the list page -------------------------------------------------------------------------------------------------

function listPage(servers: ServerView[], senders: SenderView[], credentials: CredentialView[]): SafeHtml {
  const smtpCount = servers.filter((s) => s.protocol === 'smtp').length;
  return html`<div class="page-head"><h1>Servers &amp; senders</h1><div class="actions"><a class="button primary" href="/servers/new">Add server</a>${smtpCount > 0 ? html`<a class="button secondary" href="/senders/new">Add sender</a>` : ''}</div></div>
<section aria-labelledby="servers-title" class="servers-section">
<div class="section-head"><h2 id="servers-title">Servers</h2><p class="help">Where Mailgate sends mail (SMTP) and reads it (IMAP, POP3). Test a server to see each step: connect, TLS, sign-in, send or list.</p></div>
${servers.length === 0
    ? emptyState(
        'No servers yet',
        credentials.length === 0
          ? html`A server is a mailbox's SMTP, IMAP or POP3 endpoint. To sign in with OAuth2 (Microsoft 365, Google), <a href="/credentials/new">add a credential</a> first; a server with a password needs none.`
          : 'A server is a mailbox’s SMTP, IMAP or POP3 endpoint, signed in with one of your credentials or a password.',
        html`<a class="button primary" href="/servers/new">Add the first server</a>`,
      )
    : serverTable(servers)}
</section>
<section aria-labelledby="senders-title" id="senders" class="senders-section">
<div class="section-head"><h2 id="senders-title">Senders</h2><p class="help">What applications name when they send: a From address, a primary SMTP server and backups tried in order when it fails.</p></div>
${senders.length === 0
    ? smtpCount === 0
      ? emptyState('No senders yet', 'A sender needs an SMTP server to send through. Add an SMTP server first, then the sender.', html`<a class="button primary" href="/servers/new?protocol=smtp">Add an SMTP server</a>`)
      : emptyState('No senders yet', 'Applications send as a sender: it sets the From address and which SMTP servers carry the mail.', html`<a class="button primary" href="/senders/new">Add the first sender</a>`)
    : senderTable(senders)}
</section>`;
}

function serverTable(servers: ServerView[]): SafeHtml {
  return html`<div class="table-wrap"><table class="responsive servers-table">
<caption class="visually-hidden">Servers</caption>
<thead><tr><th scope="col">Name</th><th scope="col">Protocol</th><th scope="col">Host:port</th><th scope="col">Security</th><th scope="col">Username</th><th scope="col">Sign-in</th><th scope="col">Defined in</th><th scope="col">Warnings</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
<tbody>${servers.map((s) => {
    const base = `/servers/${encodeURIComponent(s.name)}`;
    return html`<tr>
  <th scope="row" data-label="Name" class="name-cell"><a href="${base}/test">${s.name}</a></th>
  <td data-label="Protocol">${s.protocol.toUpperCase()}</td>
  <td data-label="Host:port" class="mono host-port">${s.host}:<wbr>${s.port}</td>
  <td data-label="Security">${securityCell(s.security)}</td>
  <td data-label="Username">${s.username ?? html`<span class="muted">—</span>`}</td>
  <td data-label="Sign-in">${authCell(s)}</td>
  <td data-label="Defined in">${sourceCell(s.source)}</td>
  <td data-label="Warnings" class="warnings-cell">${s.warnings.length === 0 ? html`<span class="muted">none</span>` : html`<ul class="warning-list">${s.warnings.map((w) => html`<li><span class="warn-mark" aria-hidden="true">!</span> <span class="visually-hidden">Warning: </span>${w.message}</li>`)}</ul>`}</td>
  <td data-label="Actions" class="actions-cell"><div class="row-actions"><a class="button primary small" href="${base}/test">Test<span class="visually-hidden"> ${s.name}</span></a>${s.source === 'api'
    ? html`<a class="button secondary small" href="${base}/edit">Edit<span class="visually-hidden"> ${s.name}</span></a><a class="button danger-outline small" href="${base}/delete">Delete<span class="visually-hidden"> ${s.name}</span></a>`
    : ''}</div></td>
</tr>`;
  })}</tbody></table></div>`;
}

function senderTable(senders: SenderView[]): SafeHtml {
  return html`<div class="table-wrap"><table class="responsive senders-table">
<caption class="visually-hidden">Senders</caption>
<thead><tr><th scope="col">Name</th><th scope="col">From</th><th scope="col">Primary server</th><th scope="col">Backups</th><th scope="col">Reply-To</th><th scope="col">Defined in</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
<tbody>${senders.map((s) => {
    const base = `/senders/${encodeURIComponent(s.name)}`;
    return html`<tr>
  <th scope="row" data-label="Name">${s.name}</th>
  <td data-label="From">${s.from}</td>
  <td data-label="Primary server"><a href="/servers/${encodeURIComponent(s.primary)}/test">${s.primary}</a></td>
  <td data-label="Backups">${s.backups.length === 0 ? html`<span class="muted">none</span>` : html`<ol class="backup-list">${s.backups.map((b) => html`<li><a href="/servers/${encodeURIComponent(b)}/test">${b}</a></li>`)}</ol>`}</td>
  <td data-label="Reply-To">${s.replyTo ?? html`<span class="muted">—</span>`}</td>
  <td data-label="Defined in">${sourceCell(s.source)}</td>
  <td data-label="Actions" class="actions-cell">${s.source === 'api'
    ? html`<a class="button secondary small" href="${base}/edit">Edit<span class="visually-hidden"> sender ${s.name}</span></a> <a class="button danger-outline small" href="${base}/delete">Delete<span class="visually-hidden"> sender ${s.name}</span></a>`
    : html`<span class="muted">change in mailgate.yaml</span>`}</td>
</tr>`;
  })}</tbody></table></div>`;
}

export function securityCell(security: SecurityMode): SafeHtml {
  return security === 'none' ? html`<span class="badge warn"><span class="dot" aria-hidden="true"></span>None (plain text)</span>` : html`${SECURITY_SHORT[security]}`;
}

export function authCell(s: ServerView): SafeHtml {
  if (s.auth.type === 'oauth2') return html`OAuth2 via <a href="/credentials/${encodeURIComponent(s.auth.credential)}">${s.auth.credential}</a>`;
  if (s.auth.type === 'password') return s.auth.hasPassword ? html`password` : html`password <span class="muted">(none stored)</span>`;
  return html`none`;
}

export function sourceCell(source: 'config' | 'api'): SafeHtml {
  return source === 'config'
    ? html`<span class="badge muted"><span class="dot" aria-hidden="true"></span>Config file</span> <span class="small muted">read-only: change it in mailgate.yaml</span>`
    : html`<span class="badge info"><span class="dot" aria-hidden="true"></span>API / UI</span> <span class="small muted">editable</span>`;
}

export async function readOnlyPage(request: FastifyRequest, reply: FastifyReply, ctx: WebContext, kind: 'server' | 'sender', name: string): Promise<FastifyReply> {
  return ctx.page(request, reply, {
    title: `${name} is read-only`,
    section: 'servers',
    status: request.method === 'GET' ? 200 : 409,
    body: html`<section class="panel narrow"><h1>${name} is read-only</h1>
<p>The ${kind} <strong>${name}</strong> is defined in the configuration file (mailgate.yaml). Change or remove it there; Mailgate reads the file again when it restarts.</p>
<p><a class="button secondary" href="/servers">Back to servers &amp; senders</a></p></section>`,
  });
}
