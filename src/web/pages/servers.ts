// The servers & senders list and the server pages: add/edit forms and delete confirmations (the test page is in serverTest.ts, senders in senders.ts).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { google, microsoft } from '../../credentials/presets.js';
import type { CredentialView } from '../../credentials/model.js';
import { ErrorCode, isMailgateError } from '../../errors.js';
import type { SenderView } from '../../senders/model.js';
import { SECURITY_MODES, SERVER_PROTOCOLS, type SecurityMode, type ServerProtocol, type ServerView } from '../../servers/model.js';
import { parseServerInput } from '../../servers/service.js';
import { csrfField, emptyState, errorSummary, field, problemsByField } from '../components.js';
import { sessionOf, type WebContext } from '../context.js';
import { formList, formProblems, formText } from '../forms.js';
import { html, type SafeHtml } from '../html.js';

export type NameParams = { Params: { name: string } };
type AuthChoice = 'oauth2' | 'password' | 'none';

export const PROTOCOL_LABEL: Record<ServerProtocol, string> = { smtp: 'SMTP (send mail)', imap: 'IMAP (read mail)', pop3: 'POP3 (read mail)' };
const SECURITY_LABEL: Record<SecurityMode, string> = { tls: 'TLS from the start (implicit TLS)', starttls: 'STARTTLS (upgrade after connecting)', none: 'None: plain text (only on this machine)' };
const SECURITY_SHORT: Record<SecurityMode, string> = { tls: 'TLS', starttls: 'STARTTLS', none: 'none (plain text)' };
const DEFAULT_SECURITY: Record<ServerProtocol, SecurityMode> = { smtp: 'starttls', imap: 'tls', pop3: 'tls' };
const DEFAULT_PORT: Record<ServerProtocol, Record<SecurityMode, number>> = {
  smtp: { starttls: 587, tls: 465, none: 25 },
  imap: { tls: 993, starttls: 143, none: 143 },
  pop3: { tls: 995, starttls: 110, none: 110 },
};

const SERVER_LABELS: Record<string, string> = {
  name: 'Name',
  protocol: 'Protocol',
  host: 'Host',
  port: 'Port',
  security: 'Security',
  username: 'Username',
  auth: 'Sign-in',
  password: 'Password',
  tlsCa: 'Trusted CA certificate',
};


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

// ---- the server form -----------------------------------------------------------------------------------------------

interface ServerFormValues {
  name: string;
  protocol: string;
  host: string;
  port: string;
  /** The port the form filled in itself: kept as is, it follows a change of protocol or security. */
  portDefault: string;
  security: string;
  username: string;
  authType: string;
  credential: string;
  tlsCa: string;
  skipVerify: boolean;
}

function serverValuesFromForm(body: unknown): ServerFormValues {
  const t = (key: string) => formText(body, key).trim();
  return {
    name: t('name'),
    protocol: t('protocol'),
    host: t('host'),
    port: t('port'),
    portDefault: t('portDefault'),
    security: t('security'),
    username: t('username'),
    authType: t('authType'),
    credential: t('credential'),
    tlsCa: formText(body, 'tlsCa').trim(),
    skipVerify: formText(body, 'skipVerify') === 'yes',
  };
}

/**
 * The form as server input, plus the problems only the form can see (a missing password, an unusable CA) together
 * with the service's own validation, so that every problem shows at once.
 */
function serverInputFromValues(values: ServerFormValues, password: string, mode: 'add' | 'edit', credentials: CredentialView[], view: ServerView | undefined): { input: Record<string, unknown> & { name: string }; problems: Map<string, string>; notes: string[] } {
  const problems = new Map<string, string>();
  const notes: string[] = [];
  const protocol = values.protocol as ServerProtocol;
  const security = values.security as SecurityMode;
  const known = (SERVER_PROTOCOLS as readonly string[]).includes(protocol) && (SECURITY_MODES as readonly string[]).includes(security);
  let port: unknown = values.port;
  if (known) {
    const usual = String(DEFAULT_PORT[protocol][security]);
    if (values.port === '' || (values.portDefault !== '' && values.port === values.portDefault && values.port !== usual)) {
      port = usual;
      values.port = usual;
      values.portDefault = usual;
      notes.push(`Port ${usual}, the usual port for ${protocol.toUpperCase()} with ${SECURITY_SHORT[security]}, was filled in.`);
    }
  }
  let username = values.username;
  let auth: Record<string, unknown>;
  if (values.authType === 'oauth2') {
    auth = { type: 'oauth2', credential: values.credential };
    const credential = credentials.find((c) => c.name === values.credential);
    if (values.credential === '') problems.set('auth', credentials.length === 0 ? 'there is no credential yet: add one under Credentials first, or sign in with a password' : 'choose the credential to sign in with');
    if (username === '' && credential) {
      username = credential.email;
      values.username = username;
      notes.push(`Username ${username}, the mailbox of credential ${credential.name}, was filled in.`);
    }
  } else if (values.authType === 'password') {
    auth = password !== '' ? { type: 'password', password } : { type: 'password' };
    const hadPassword = view?.auth.type === 'password' && view.auth.hasPassword;
    if (password === '' && !hadPassword) problems.set('password', mode === 'add' ? 'enter the password of the mailbox' : 'enter the password: none is stored yet');
  } else {
    auth = { type: 'none' };
  }
  const input: Record<string, unknown> & { name: string } = {
    name: values.name,
    protocol,
    host: values.host,
    port,
    security,
    username: username === '' ? undefined : username,
    auth,
    tlsCa: values.tlsCa === '' ? undefined : values.tlsCa,
    tlsRejectUnauthorized: !values.skipVerify,
  };
  if (values.tlsCa !== '' && !values.tlsCa.includes('-----BEGIN CERTIFICATE-----')) problems.set('tlsCa', 'expected one or more PEM certificates, each beginning with -----BEGIN CERTIFICATE-----');
  try {
    parseServerInput(input);
  } catch (err) {
    for (const [k, v] of formProblems(err)) if (!problems.has(k)) problems.set(k, v);
  }
  return { input, problems, notes };
}

async function serverForm(
  request: FastifyRequest,
  reply: FastifyReply,
  ctx: WebContext,
  options: { mode: 'add' | 'edit'; values: ServerFormValues; credentials: CredentialView[]; view?: ServerView; problems?: Map<string, string> },
): Promise<FastifyReply> {
  const session = sessionOf(request);
  const { mode, values, credentials, view } = options;
  const problems = options.problems ?? new Map<string, string>();
  const title = mode === 'add' ? 'Add a server' : `Edit ${view!.name}`;
  const action = mode === 'add' ? '/servers' : `/servers/${encodeURIComponent(view!.name)}`;
  const authType: AuthChoice = values.authType === 'password' || values.authType === 'none' ? values.authType : 'oauth2';
  const hasPassword = view?.auth.type === 'password' && view.auth.hasPassword;
  const f = (name: keyof ServerFormValues & string, extra: Partial<Parameters<typeof field>[0]> = {}) =>
    field({ name, label: SERVER_LABELS[name] ?? name, value: String(values[name] ?? ''), error: problems.get(name), ...extra });
  const authError = problems.get('auth') ?? problems.get('password');

  const body = html`<nav class="crumbs" aria-label="Breadcrumb"><a href="/servers">Servers &amp; senders</a> / ${mode === 'add' ? 'Add server' : html`<a href="/servers/${encodeURIComponent(view!.name)}/test">${view!.name}</a> / Edit`}</nav>
<h1>${title}</h1>
${errorSummary(problems, SERVER_LABELS)}
<form method="post" action="${action}" class="stack server-form" novalidate>
  ${csrfField(session)}
  <input type="hidden" name="portDefault" value="${values.portDefault}">
  ${mode === 'add' ? html`<div class="form-grid">${f('name', { required: true, help: 'A short name you choose, used by senders and watchers, e.g. m365-smtp. Letters, digits, “.”, “_” and “-”.', attributes: 'autocapitalize="none" spellcheck="false"' })}</div>` : ''}
  <fieldset class="form-grid"><legend>Connection</legend>
    ${selectField('protocol', SERVER_LABELS.protocol!, SERVER_PROTOCOLS.map((p) => [p, PROTOCOL_LABEL[p]] as const), values.protocol, problems.get('protocol'), 'SMTP sends mail; IMAP and POP3 read a mailbox for watchers.')}
    ${selectField('security', SERVER_LABELS.security!, SECURITY_MODES.map((s) => [s, SECURITY_LABEL[s]] as const), values.security, problems.get('security'), 'TLS for ports 465, 993 and 995; STARTTLS for 587 and 143.')}
    ${f('host', { required: true, placeholder: 'smtp.office365.com', attributes: 'autocapitalize="none" spellcheck="false"', help: 'The host name or IP address only, without “smtp://” or a port.' })}
    ${f('port', { required: true, attributes: 'inputmode="numeric" autocomplete="off" class="port-input"', help: 'Filled in for the protocol and security chosen: SMTP 587 with STARTTLS or 465 with TLS, IMAP 993, POP3 995. If you change either and leave this number as it is, Mailgate puts in the matching usual port.' })}
    <div class="hint provider-hosts">
      <p><strong>Microsoft 365:</strong> SMTP <span class="mono">${microsoft.servers.smtp}</span>, IMAP <span class="mono">${microsoft.servers.imap}</span>, POP3 <span class="mono">${microsoft.servers.pop3}</span></p>
      <p><strong>Google:</strong> SMTP <span class="mono">${google.servers.smtp}</span>, IMAP <span class="mono">${google.servers.imap}</span>, POP3 <span class="mono">${google.servers.pop3}</span></p>
    </div>
  </fieldset>
  <fieldset id="f-auth" class="${authError ? 'has-error' : ''}"${authError ? html` aria-describedby="auth-error"` : ''}><legend>Sign-in</legend>
    ${authError ? html`<p class="error-text" id="auth-error"><span class="visually-hidden">Error: </span>${authError}</p>` : ''}
    <div class="form-grid">${f('username', { autocomplete: 'off', attributes: 'autocapitalize="none" spellcheck="false"', help: 'The mailbox address that signs in. With OAuth2, leave it empty to use the credential’s mailbox: XOAUTH2 needs the account the token belongs to.' })}</div>
    <div class="auth-choices">
      <div class="check"><input type="radio" id="auth-oauth2" name="authType" value="oauth2"${authType === 'oauth2' ? html` checked` : ''}><label for="auth-oauth2">Sign in with OAuth2 through a credential (Microsoft 365, Google, …)</label></div>
      <div class="auth-detail">
        ${credentials.length === 0
          ? html`<p class="help">There is no credential yet. <a href="/credentials/new">Add a credential</a>, connect it, then come back.</p>`
          : html`<label for="f-credential">Credential</label>
        <select id="f-credential" name="credential" aria-describedby="f-credential-help">
          <option value=""${values.credential === '' ? html` selected` : ''}>Choose a credential…</option>
          ${credentials.map((c) => html`<option value="${c.name}"${values.credential === c.name ? html` selected` : ''}>${c.name} — ${c.email}${c.status === 'active' ? '' : ` (${c.status.replace(/_/g, ' ')})`}</option>`)}
        </select>
        <p class="help" id="f-credential-help">The credential’s token signs in with XOAUTH2; Mailgate refreshes it by itself.</p>`}
      </div>
      <div class="check"><input type="radio" id="auth-password" name="authType" value="password"${authType === 'password' ? html` checked` : ''}><label for="auth-password">Sign in with a password</label></div>
      <div class="auth-detail">
        <label for="f-password">Password</label>
        <input type="password" id="f-password" name="password" value="" autocomplete="new-password" aria-describedby="f-password-help"${problems.get('password') ? html` aria-invalid="true"` : ''}>
        <p class="help" id="f-password-help">${mode === 'edit' && hasPassword ? 'A password is stored (encrypted). Leave empty to keep it unchanged.' : 'Stored encrypted; never shown again.'} Microsoft 365 and Google refuse passwords for most accounts: use OAuth2 there.</p>
      </div>
      <div class="check"><input type="radio" id="auth-none" name="authType" value="none"${authType === 'none' ? html` checked` : ''}><label for="auth-none">No sign-in (a relay that trusts this machine)</label></div>
    </div>
  </fieldset>
  <details${values.tlsCa !== '' || values.skipVerify || problems.has('tlsCa') ? html` open` : ''}><summary>Advanced: the server’s TLS certificate</summary>
    ${field({ name: 'tlsCa', label: SERVER_LABELS.tlsCa!, type: 'textarea', value: values.tlsCa, error: problems.get('tlsCa'), help: 'PEM certificate(s) to trust besides the system’s: a private CA or a self-signed test server. Not needed for Microsoft 365 or Google.' })}
    <div class="check"><input type="checkbox" id="f-skipVerify" name="skipVerify" value="yes"${values.skipVerify ? html` checked` : ''}><label for="f-skipVerify">Do not verify the certificate (tests and emergencies only: anyone on the path could read the sign-in)</label></div>
  </details>
  <div class="actions"><button type="submit" class="button primary">${mode === 'add' ? 'Add server' : 'Save changes'}</button>
  <a class="button secondary" href="${mode === 'add' ? '/servers' : `/servers/${encodeURIComponent(view!.name)}/test`}">Cancel</a></div>
</form>`;
  return ctx.page(request, reply, { title, section: 'servers', body, status: problems.size > 0 ? 400 : 200 });
}

export function selectField(name: string, label: string, options: ReadonlyArray<readonly [string, string]>, value: string, error: string | undefined, help?: string): SafeHtml {
  const id = `f-${name}`;
  const describedBy = [help ? `${id}-help` : '', error ? `${id}-error` : ''].filter(Boolean).join(' ');
  return html`<div class="field${error ? ' has-error' : ''}"><label for="${id}">${label}</label>
  ${error ? html`<p class="error-text" id="${id}-error"><span class="visually-hidden">Error: </span>${error}</p>` : ''}
  <select id="${id}" name="${name}"${describedBy ? html` aria-describedby="${describedBy}"` : ''}${error ? html` aria-invalid="true"` : ''}>
    ${options.map(([v, l]) => html`<option value="${v}"${v === value ? html` selected` : ''}>${l}</option>`)}
  </select>
  ${help ? html`<p class="help" id="${id}-help">${help}</p>` : ''}</div>`;
}
