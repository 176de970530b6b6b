// The credentials pages: the table with status and token expiry, the redirect URI to copy, add/edit forms per provider with portal help, and delete.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { CredentialView } from '../../credentials/model.js';
import { google, microsoft, MICROSOFT_AUTHORITY, MICROSOFT_CLOUD_PRESETS, MICROSOFT_CLOUDS, microsoftCloudOf, type MicrosoftCloud, type Protocol } from '../../credentials/presets.js';
import { csrfField, emptyState, errorSummary, field, postButton, statusBadge, timeCell, truncate } from '../components.js';
import { sessionOf, type WebContext } from '../context.js';
import { formList, formProblems, formText } from '../forms.js';
import { html, type SafeHtml } from '../html.js';

type NameParams = { Params: { name: string } };
type ProviderChoice = 'microsoft' | 'google' | 'generic';
const PROVIDERS: ReadonlyArray<{ id: ProviderChoice; label: string }> = [
  { id: 'microsoft', label: 'Microsoft 365' },
  { id: 'google', label: 'Google Workspace / Gmail' },
  { id: 'generic', label: 'Other OAuth2 server' },
];
const PROTOCOL_CHOICES: readonly Protocol[] = ['smtp', 'imap', 'pop3'];
const PROTOCOL_USE: Record<string, string> = { smtp: 'send mail (SMTP)', imap: 'read mail (IMAP)', pop3: 'read mail (POP3)' };

const LABELS: Record<string, string> = {
  name: 'Name',
  email: 'Mailbox address',
  tenant: 'Directory (tenant) ID',
  clientId: 'Application (client) ID',
  clientSecret: 'Client secret',
  clientSecretExpiresAt: 'Client secret expires on',
  protocols: 'Mail protocols',
  grant: 'Sign-in method',
  authorizationUrl: 'Authorization URL',
  tokenUrl: 'Token URL',
  issuer: 'Issuer',
  scopes: 'Scopes',
  authority: 'Authority',
  cloud: 'Microsoft cloud',
};

/** Where to find each value in the provider's portal: the admin has both windows open. */
const HELP: Record<ProviderChoice, Partial<Record<string, string>>> = {
  microsoft: {
    tenant: 'Microsoft Entra admin center → App registrations → your app → Overview → “Directory (tenant) ID”. A domain such as contoso.com or “organizations” works too.',
    clientId: 'Same Overview page → “Application (client) ID”.',
    clientSecret: 'Certificates & secrets → New client secret → copy the “Value” column (not the “Secret ID”). Azure shows it only once.',
    clientSecretExpiresAt: 'The “Expires” column beside the secret. Mailgate warns 30, 7 and 1 days ahead.',
    email: 'The mailbox that will sign in and send or read mail, e.g. alerts@contoso.com.',
  },
  google: {
    clientId: 'Google Cloud console → APIs & Services → Credentials → OAuth 2.0 Client IDs (type “Web application”) → “Client ID”.',
    clientSecret: 'Same client → “Client secret”. While the consent screen is in “Testing”, Google ends refresh tokens after 7 days: publish it “In production”.',
    email: 'The Gmail or Workspace address that will sign in.',
  },
  generic: {
    issuer: 'With an issuer, Mailgate reads the URLs below from its /.well-known/openid-configuration.',
    authorizationUrl: 'Where the browser signs in (https; http only on this machine).',
    tokenUrl: 'Where Mailgate exchanges and refreshes tokens.',
    scopes: 'Separated by spaces. Mailgate adds openid, email, profile and offline_access.',
    clientId: 'The client ID the server gave the application.',
    clientSecret: 'The client secret the server gave the application.',
    email: 'The mailbox that will sign in.',
  },
};

/** Warnings worded for this screen, where the API's wording names its fields. */
const UI_WARNINGS: Record<string, string> = {
  CLIENT_SECRET_EXPIRY_UNKNOWN: 'Mailgate does not know when the client secret expires. Add the date from the “Expires” column under Certificates & secrets, and Mailgate warns 30, 7 and 1 days before it stops working.',
};

export function registerCredentialPages(app: FastifyInstance, ctx: WebContext): void {
  const { services } = ctx;

  app.get('/credentials', async (request, reply) => {
    const credentials = await services.credentials.list();
    return ctx.page(request, reply, {
      title: 'Credentials',
      section: 'credentials',
      body: html`<div class="page-head"><h1>Credentials</h1><a class="button primary" href="/credentials/new">Add credential</a></div>
${redirectUriPanel(services.credentials.redirectUri)}
${credentials.length === 0 ? emptyState('No credentials yet', 'A credential is the OAuth2 app registration (Microsoft, Google or another server) and the mailbox that signs in through it.', html`<a class="button primary" href="/credentials/new">Add the first credential</a>`) : credentialTable(credentials)}`,
    });
  });

  app.get<{ Querystring: { provider?: string } }>('/credentials/new', async (request, reply) => {
    const provider = PROVIDERS.find((p) => p.id === request.query.provider)?.id ?? 'microsoft';
    return credentialForm(request, reply, ctx, { mode: 'add', provider, values: { protocols: ['smtp', 'imap'] } });
  });

  app.post('/credentials', async (request, reply) => {
    const provider = (PROVIDERS.find((p) => p.id === formText(request.body, 'provider'))?.id ?? 'microsoft') as ProviderChoice;
    const input = inputFromForm(request.body, provider, 'add');
    try {
      const view = await services.credentials.add(input);
      return ctx.redirectWithFlash(request, reply, `/credentials/${encodeURIComponent(view.name)}`, {
        kind: 'success',
        title: `Added ${view.name}`,
        message: view.grant === 'authorization_code' ? 'Next: make sure the redirect URI is registered at the provider, then Connect and sign in as ' + view.email + '.' : 'Next: Refresh now to fetch the first token.',
      });
    } catch (err) {
      return credentialForm(request, reply, ctx, { mode: 'add', provider, values: valuesFromForm(request.body), problems: formProblems(err) });
    }
  });

  app.get<NameParams>('/credentials/:name', async (request, reply) => {
    const view = await services.credentials.show(request.params.name);
    const events = (await services.credentials.events(view.name)).slice(-10).reverse();
    return ctx.page(request, reply, { title: view.name, section: 'credentials', body: detail(sessionOf(request), view, events) });
  });

  app.get<NameParams>('/credentials/:name/edit', async (request, reply) => {
    const view = await services.credentials.show(request.params.name);
    return credentialForm(request, reply, ctx, { mode: 'edit', provider: view.provider, view, values: valuesFromView(view) });
  });

  app.post<NameParams>('/credentials/:name', async (request, reply) => {
    const view = await services.credentials.show(request.params.name);
    try {
      const updated = await services.credentials.update(view.name, inputFromForm(request.body, view.provider, 'edit'));
      const reconnect = updated.status === 'pending' && view.status !== 'pending';
      return ctx.redirectWithFlash(request, reply, `/credentials/${encodeURIComponent(view.name)}`, {
        kind: 'success',
        title: `Saved ${view.name}`,
        ...(reconnect ? { message: 'The change names another app or account, so the old tokens were dropped: Connect again.' } : {}),
      });
    } catch (err) {
      return credentialForm(request, reply, ctx, { mode: 'edit', provider: view.provider, view, values: valuesFromForm(request.body), problems: formProblems(err) });
    }
  });

  app.get<NameParams>('/credentials/:name/delete', async (request, reply) => {
    const view = await services.credentials.show(request.params.name);
    const servers = (await services.servers.list()).filter((s) => s.auth.type === 'oauth2' && s.auth.credential === view.name);
    return ctx.page(request, reply, {
      title: `Delete ${view.name}`,
      section: 'credentials',
      body: html`<section class="panel narrow"><h1>Delete ${view.name}?</h1>
<p>Mailgate forgets the app registration and the tokens of <strong>${view.email}</strong>. The app registration at the provider is not touched.</p>
${servers.length > 0 ? html`<div class="hint warn"><p><strong>Used by ${servers.length === 1 ? 'server' : 'servers'} ${servers.map((s) => s.name).join(', ')}</strong>: mail through ${servers.length === 1 ? 'it' : 'them'} will fail until you point ${servers.length === 1 ? 'it' : 'them'} to another credential.</p></div>` : ''}
<form method="post" action="/credentials/${encodeURIComponent(view.name)}/delete" class="actions">${csrfField(sessionOf(request))}
<button type="submit" class="button danger">Delete ${view.name}</button> <a class="button secondary" href="/credentials/${encodeURIComponent(view.name)}">Cancel</a></form></section>`,
    });
  });

  app.post<NameParams>('/credentials/:name/delete', async (request, reply) => {
    await services.credentials.remove(request.params.name);
    return ctx.redirectWithFlash(request, reply, '/credentials', { kind: 'success', title: `Deleted ${request.params.name}` });
  });

  app.post<NameParams>('/credentials/:name/refresh', async (request, reply) => {
    const name = request.params.name;
    try {
      const token = await services.tokens.refresh(name);
      return ctx.redirectWithFlash(request, reply, `/credentials/${encodeURIComponent(name)}`, { kind: 'success', title: `Refreshed ${name}`, message: `The new access token is valid until ${token.expiresAt ?? 'the provider did not say'}.` });
    } catch (err) {
      return ctx.redirectWithFlash(request, reply, `/credentials/${encodeURIComponent(name)}`, { kind: 'error', title: `Refreshing ${name} failed`, message: (err as Error).message });
    }
  });
}

function redirectUriPanel(uri: string): SafeHtml {
  return html`<section class="panel redirect-uri" aria-labelledby="redirect-uri-title">
  <h2 id="redirect-uri-title">Redirect URI</h2>
  <p class="help">Register this exact address at the provider: Azure → App registrations → Authentication → Web → Redirect URIs; Google Cloud → Credentials → your OAuth client → Authorized redirect URIs.</p>
  <div class="copy-row"><input type="text" id="redirect-uri" class="mono" value="${uri}" readonly aria-label="Redirect URI"><button type="button" class="button secondary" data-copy="redirect-uri">Copy</button><span class="copy-status" role="status" aria-live="polite"></span></div>
</section>`;
}

function credentialTable(credentials: CredentialView[]): SafeHtml {
  return html`<div class="table-wrap"><table class="responsive">
<caption class="visually-hidden">Credentials</caption>
<thead><tr><th scope="col">Name</th><th scope="col">Provider</th><th scope="col">Account</th><th scope="col">Status</th><th scope="col">Access token expires</th><th scope="col">Last refreshed</th><th scope="col">Last used</th><th scope="col">Last error</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
<tbody>${credentials.map(
    (c) => html`<tr>
  <th scope="row" data-label="Name"><a href="/credentials/${encodeURIComponent(c.name)}">${c.name}</a></th>
  <td data-label="Provider">${providerLabel(c.provider)}</td>
  <td data-label="Account">${c.identity?.email ?? c.email}</td>
  <td data-label="Status">${statusBadge(c.status)}</td>
  <td data-label="Access token expires">${timeCell(c.expiresAt, 'no token')}</td>
  <td data-label="Last refreshed">${timeCell(c.lastRefreshedAt, 'never')}</td>
  <td data-label="Last used">${timeCell(c.lastUsedAt, 'never')}</td>
  <td data-label="Last error" class="error-cell">${c.lastError ? html`<span title="${c.lastError}">${truncate(c.lastError, 90)}</span>` : html`<span class="muted">—</span>`}</td>
  <td data-label="Actions" class="actions-cell">${c.grant === 'authorization_code' ? html`<a class="button ${c.status === 'needs_reauthorization' || c.status === 'pending' ? 'primary' : 'secondary'} small" href="/credentials/${encodeURIComponent(c.name)}/connect">${c.status === 'pending' && !c.hasRefreshToken ? 'Connect' : 'Reconnect'}<span class="visually-hidden"> ${c.name}</span></a>` : ''}</td>
</tr>`,
  )}</tbody></table></div>`;
}

function detail(session: ReturnType<typeof sessionOf>, c: CredentialView, events: Array<{ at: string; from: string | null; to: string; reason: string | null }>): SafeHtml {
  const base = `/credentials/${encodeURIComponent(c.name)}`;
  const rows: Array<[string, SafeHtml | string]> = [
    ['Provider', providerLabel(c.provider)],
    ['Mailbox', c.email],
    ['Signed in as', c.identity?.email ?? (c.hasRefreshToken ? 'not named by the provider' : 'nobody yet')],
    ['Sign-in method', c.grant.replace(/_/g, ' ')],
    ...(c.tenant ? ([['Tenant', c.tenant]] as Array<[string, string]>) : []),
    ['Client ID', html`<span class="mono">${c.clientId}</span>`],
    ['Client secret', c.hasClientSecret ? `stored (encrypted)${c.clientSecretExpiresAt ? `, expires ${c.clientSecretExpiresAt.slice(0, 10)}` : ''}` : 'none'],
    ['Protocols', c.protocols.map((p) => p.toUpperCase()).join(', ')],
    ['Scopes asked for', html`<span class="mono small">${c.scopes.join(' ')}</span>`],
    ['Scopes granted', c.grantedScopes ? html`<span class="mono small">${c.grantedScopes.join(' ')}</span>` : '—'],
    ['Token URL', html`<span class="mono small">${c.tokenUrl}</span>`],
  ];
  return html`<nav class="crumbs" aria-label="Breadcrumb"><a href="/credentials">Credentials</a> / ${c.name}</nav>
<div class="page-head"><h1>${c.name} ${statusBadge(c.status)}</h1>
<div class="actions">
  ${c.grant === 'authorization_code' ? html`<a class="button primary" href="${base}/connect">${c.hasRefreshToken || c.status !== 'pending' ? 'Reconnect' : 'Connect'}</a>` : ''}
  ${c.hasRefreshToken || c.grant === 'client_credentials' ? postButton(session, `${base}/refresh`, 'Refresh now') : ''}
  <a class="button secondary" href="${base}/edit">Edit</a>
  <a class="button danger-outline" href="${base}/delete">Delete</a>
</div></div>
${c.statusReason && c.status !== 'active' ? html`<div class="hint ${c.status === 'needs_reauthorization' || c.status === 'client_secret_invalid' || c.status === 'configuration_error' ? 'bad' : ''}"><p>${c.statusReason}</p></div>` : ''}
${c.warnings.map((w) => html`<div class="hint warn"><p><strong>Warning:</strong> ${UI_WARNINGS[w.code] ? html`${UI_WARNINGS[w.code]} <a href="${base}/edit">Edit</a>` : w.message}</p></div>`)}
<div class="grid-2">
<section class="panel"><h2>Token</h2><dl class="facts">
  <dt>Access token expires</dt><dd>${timeCell(c.expiresAt, 'no token yet')}</dd>
  <dt>Refresh token</dt><dd>${c.hasRefreshToken ? 'stored (encrypted)' : 'none'}</dd>
  <dt>Last refreshed</dt><dd>${timeCell(c.lastRefreshedAt, 'never')}</dd>
  <dt>Last used</dt><dd>${timeCell(c.lastUsedAt, 'never')}</dd>
  <dt>Last error</dt><dd>${c.lastError ?? '—'}</dd>
</dl></section>
<section class="panel"><h2>Settings</h2><dl class="facts">${rows.map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}</dl></section>
</div>
${redirectUriPanel(c.redirectUri)}
<section class="panel"><h2>History</h2>
${events.length === 0 ? html`<p class="muted">No changes yet.</p>` : html`<ol class="timeline">${events.map((e) => html`<li>${timeCell(e.at)} ${statusBadge(e.to)}${e.reason ? html` <span>${e.reason}</span>` : ''}</li>`)}</ol>`}
</section>`;
}

interface FormValues {
  name?: string;
  email?: string;
  tenant?: string;
  clientId?: string;
  clientSecretExpiresAt?: string;
  protocols?: string[];
  grant?: string;
  authorizationUrl?: string;
  tokenUrl?: string;
  issuer?: string;
  scopes?: string;
  authority?: string;
  cloud?: string;
}

function valuesFromForm(body: unknown): FormValues {
  const v: FormValues = {};
  for (const key of ['name', 'email', 'tenant', 'clientId', 'clientSecretExpiresAt', 'grant', 'authorizationUrl', 'tokenUrl', 'issuer', 'scopes', 'authority', 'cloud'] as const) v[key] = formText(body, key);
  v.protocols = formList(body, 'protocols');
  return v;
}

function valuesFromView(view: CredentialView): FormValues {
  return {
    name: view.name,
    email: view.email,
    tenant: view.tenant ?? '',
    clientId: view.clientId,
    clientSecretExpiresAt: view.clientSecretExpiresAt?.slice(0, 10) ?? '',
    protocols: view.protocols,
    grant: view.grant,
    authorizationUrl: view.authorizationUrl ?? '',
    tokenUrl: view.tokenUrl,
    // Microsoft's issuer follows the tenant unless it was set on purpose: show only a custom one, so a new tenant moves it.
    issuer: view.provider === 'microsoft' && view.tenant && view.issuer === microsoft.endpoints(view.authority ?? MICROSOFT_AUTHORITY, view.tenant).issuer ? '' : (view.issuer ?? ''),
    scopes: view.scopes.filter((s) => !['openid', 'email', 'profile', 'offline_access'].includes(s)).join(' '),
    authority: view.authority ?? '',
  };
}

/** The form's fields as credential input: only what the provider's form shows; a blank secret is left out (unchanged when editing). */
function inputFromForm(body: unknown, provider: ProviderChoice, mode: 'add' | 'edit'): Record<string, unknown> {
  const value = (key: string) => formText(body, key).trim();
  const input: Record<string, unknown> = { email: value('email'), clientId: value('clientId'), protocols: formList(body, 'protocols') };
  if (mode === 'add') Object.assign(input, { name: value('name'), provider });
  const secret = formText(body, 'clientSecret');
  if (secret !== '') input.clientSecret = secret;
  if (value('clientSecretExpiresAt')) input.clientSecretExpiresAt = value('clientSecretExpiresAt');
  if (value('grant')) input.grant = value('grant');
  if (provider === 'microsoft') {
    input.tenant = value('tenant');
    // The cloud is chosen when adding; an edit moves a credential to another cloud by its authority.
    if (mode === 'add' && value('cloud') && value('cloud') !== 'global') input.cloud = value('cloud');
    if (value('authority')) input.authority = value('authority');
    if (value('issuer')) input.issuer = value('issuer');
  }
  if (provider === 'generic') {
    for (const key of ['authorizationUrl', 'tokenUrl', 'issuer'] as const) if (value(key)) input[key] = value(key);
    const scopes = value('scopes').split(/\s+/).filter(Boolean);
    if (scopes.length > 0) input.scopes = scopes;
  }
  return input;
}

async function credentialForm(
  request: FastifyRequest,
  reply: FastifyReply,
  ctx: WebContext,
  options: { mode: 'add' | 'edit'; provider: ProviderChoice; values: FormValues; view?: CredentialView; problems?: Map<string, string> },
): Promise<FastifyReply> {
  const session = sessionOf(request);
  const { provider, values, mode } = options;
  const problems = options.problems ?? new Map<string, string>();
  const help = HELP[provider];
  const f = (name: keyof FormValues & string, extra: Partial<Parameters<typeof field>[0]> = {}) =>
    field({ name, label: LABELS[name] ?? name, value: (values[name] as string | undefined) ?? '', help: help[name], error: problems.get(name), ...extra });
  const protocols = new Set(values.protocols ?? []);
  const cloud: MicrosoftCloud = (MICROSOFT_CLOUDS as readonly string[]).includes(values.cloud ?? '') ? (values.cloud as MicrosoftCloud) : (microsoftCloudOf(values.authority || undefined) ?? 'global');
  const scopeOf = (p: Protocol) => (provider === 'microsoft' ? microsoft.scopesFor(cloud)[p] : provider === 'google' ? google.mailScope : '');
  const action = mode === 'add' ? '/credentials' : `/credentials/${encodeURIComponent(options.view!.name)}`;
  const title = mode === 'add' ? 'Add a credential' : `Edit ${options.view!.name}`;
  const grant = values.grant || 'authorization_code';

  const body = html`<nav class="crumbs" aria-label="Breadcrumb"><a href="/credentials">Credentials</a> / ${mode === 'add' ? 'Add' : html`<a href="/credentials/${encodeURIComponent(options.view!.name)}">${options.view!.name}</a> / Edit`}</nav>
<h1>${title}</h1>
${mode === 'add'
    ? html`<nav class="tabs" aria-label="Provider">${PROVIDERS.map((p) => html`<a href="/credentials/new?provider=${p.id}"${p.id === provider ? html` aria-current="page"` : ''}>${p.label}</a>`)}</nav>`
    : html`<p class="muted">Provider: ${providerLabel(provider)}. Leave the client secret empty to keep the stored one.</p>`}
${errorSummary(problems, LABELS)}
<form method="post" action="${action}" class="stack credential-form" novalidate>
  ${csrfField(session)}
  <input type="hidden" name="provider" value="${provider}">
  <div class="form-grid">
  ${mode === 'add' ? f('name', { required: true, help: 'A short name you choose, used in server settings and alerts, e.g. m365-alerts. Letters, digits, “.”, “_” and “-”.', attributes: 'autocapitalize="none" spellcheck="false"' }) : ''}
  ${f('email', { type: 'email', required: true, autocomplete: 'off' })}
  ${provider === 'microsoft' ? f('tenant', { required: true, attributes: 'autocapitalize="none" spellcheck="false"' }) : ''}
  ${f('clientId', { required: true, label: provider === 'microsoft' ? 'Application (client) ID' : 'Client ID', attributes: 'autocapitalize="none" spellcheck="false"' })}
  ${field({ name: 'clientSecret', label: 'Client secret', type: 'password', value: '', autocomplete: 'new-password', help: mode === 'edit' ? html`${options.view?.hasClientSecret ? 'A secret is stored. ' : ''}Leave empty to keep it unchanged. ${help.clientSecret ?? ''}` : help.clientSecret, error: problems.get('clientSecret'), required: mode === 'add' && grant === 'client_credentials' })}
  ${provider !== 'google' ? f('clientSecretExpiresAt', { type: 'date', help: help.clientSecretExpiresAt ?? 'When the secret stops working; Mailgate warns 30, 7 and 1 days ahead.' }) : ''}
  </div>
  ${provider === 'generic'
    ? html`<fieldset class="form-grid"><legend>Endpoints</legend>
    ${f('issuer', { type: 'url', placeholder: 'https://login.example.com' })}
    ${f('authorizationUrl', { type: 'url' })}
    ${f('tokenUrl', { type: 'url' })}
    ${f('scopes', { placeholder: 'https://mail.example.com/smtp' })}
  </fieldset>`
    : ''}
  <fieldset${problems.get('protocols') ? html` class="has-error" aria-describedby="protocols-error"` : ''}>
    <legend>${LABELS.protocols}: what Mailgate may do with the mailbox</legend>
    ${problems.get('protocols') ? html`<p class="error-text" id="protocols-error">${problems.get('protocols')}</p>` : ''}
    ${PROTOCOL_CHOICES.map(
      (p) => html`<div class="check"><input type="checkbox" id="p-${p}" name="protocols" value="${p}"${protocols.has(p) ? html` checked` : ''}><label for="p-${p}">${p.toUpperCase()}: ${PROTOCOL_USE[p]}${scopeOf(p) ? html` <span class="mono small muted">${scopeOf(p)}</span>` : ''}</label></div>`,
    )}
    ${provider === 'microsoft' ? html`<p class="help">In Azure, add the same under API permissions → Add a permission → APIs my organization uses → Office 365 Exchange Online → Delegated (for sign-in) — and grant admin consent.</p>` : provider === 'google' ? html`<p class="help">Gmail uses one scope, https://mail.google.com/, for all three. Add it under OAuth consent screen → Data access.</p>` : ''}
  </fieldset>
  <details${grant !== 'authorization_code' || values.authority || (values.cloud && values.cloud !== 'global') || (provider === 'microsoft' && values.issuer) || problems.has('grant') || problems.has('authority') || problems.has('cloud') || problems.has('issuer') ? html` open` : ''}><summary>Advanced</summary>
    <div class="form-grid">
    <div class="field${problems.get('grant') ? ' has-error' : ''}"><label for="f-grant">${LABELS.grant}</label>
      ${problems.get('grant') ? html`<p class="error-text" id="f-grant-error">${problems.get('grant')}</p>` : ''}
      <select id="f-grant" name="grant" aria-describedby="f-grant-help">
        ${[
          ['authorization_code', 'A person signs in with a browser (Connect) — usual'],
          ['client_credentials', 'The app signs in by itself (app-only access)'],
          ['device_code', 'A person signs in on another device with a code'],
        ].map(([v, l]) => html`<option value="${v}"${grant === v ? html` selected` : ''}>${l}</option>`)}
      </select><p class="help" id="f-grant-help">App-only access to Exchange needs a service principal registered in Exchange Online; most sites use browser sign-in.</p></div>
    ${provider === 'microsoft' && mode === 'add'
      ? html`<div class="field${problems.get('cloud') ? ' has-error' : ''}"><label for="f-cloud">${LABELS.cloud}</label>
      ${problems.get('cloud') ? html`<p class="error-text" id="f-cloud-error">${problems.get('cloud')}</p>` : ''}
      <select id="f-cloud" name="cloud" aria-describedby="f-cloud-help">
        ${MICROSOFT_CLOUDS.map((c) => html`<option value="${c}"${cloud === c ? html` selected` : ''}>${MICROSOFT_CLOUD_PRESETS[c].label}</option>`)}
      </select><p class="help" id="f-cloud-help">Where the tenant lives: its sign-in host and Exchange Online scopes. GCC (not High) tenants are in the global cloud.</p></div>`
      : ''}
    ${provider === 'microsoft' ? f('authority', { type: 'url', placeholder: 'https://login.microsoftonline.com', help: mode === 'add' ? 'Only for a proxy or a test server in front of the cloud.' : 'The cloud\'s sign-in host (https://login.microsoftonline.us for US Government, https://login.partner.microsoftonline.cn for China), a proxy or a test server.' }) : ''}
    ${provider === 'microsoft' ? f('issuer', { type: 'url', label: 'ID token issuer', help: 'Leave empty: Mailgate uses the tenant\'s v2.0 issuer. Only a test server or an unusual tenant needs another.' }) : ''}
    </div>
  </details>
  <div class="actions"><button type="submit" class="button primary">${mode === 'add' ? 'Add credential' : 'Save changes'}</button>
  <a class="button secondary" href="${mode === 'add' ? '/credentials' : `/credentials/${encodeURIComponent(options.view!.name)}`}">Cancel</a></div>
</form>`;
  return ctx.page(request, reply, { title, section: 'credentials', body, status: problems.size > 0 ? 400 : 200 });
}

function providerLabel(provider: string): string {
  return provider === 'microsoft' ? 'Microsoft' : provider === 'google' ? 'Google' : 'Generic OAuth2';
}
