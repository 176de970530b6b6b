// The server add/edit form: its words and defaults, the values it posts, and those values checked as server input.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { google, microsoft } from '../../credentials/presets.js';
import type { CredentialView } from '../../credentials/model.js';
import { SECURITY_MODES, SERVER_PROTOCOLS, type SecurityMode, type ServerProtocol, type ServerView } from '../../servers/model.js';
import { parseServerInput } from '../../servers/service.js';
import { csrfField, errorSummary, field, selectField } from '../components.js';
import { sessionOf, type WebContext } from '../context.js';
import { formProblems, formText } from '../forms.js';
import { html } from '../html.js';

type AuthChoice = 'oauth2' | 'password' | 'none';

export const PROTOCOL_LABEL: Record<ServerProtocol, string> = { smtp: 'SMTP (send mail)', imap: 'IMAP (read mail)', pop3: 'POP3 (read mail)' };
const SECURITY_LABEL: Record<SecurityMode, string> = { tls: 'TLS from the start (implicit TLS)', starttls: 'STARTTLS (upgrade after connecting)', none: 'None: plain text (only on this machine)' };
export const SECURITY_SHORT: Record<SecurityMode, string> = { tls: 'TLS', starttls: 'STARTTLS', none: 'none (plain text)' };
export const DEFAULT_SECURITY: Record<ServerProtocol, SecurityMode> = { smtp: 'starttls', imap: 'tls', pop3: 'tls' };
export const DEFAULT_PORT: Record<ServerProtocol, Record<SecurityMode, number>> = {
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

export interface ServerFormValues {
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

export function serverValuesFromForm(body: unknown): ServerFormValues {
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
export function serverInputFromValues(values: ServerFormValues, password: string, mode: 'add' | 'edit', credentials: CredentialView[], view: ServerView | undefined): { input: Record<string, unknown> & { name: string }; problems: Map<string, string>; notes: string[] } {
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

export async function serverForm(
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
