// The forms of the "Relay & proxies" pages: add a relay or proxy account (generated password by default), a new password,
// and the page that shows a generated password its only time, with what to type into the program's five fields.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ProgramSettings } from '../../accounts/programSettings.js';
import type { ProxyAccountView, RelayAccountView } from '../../accounts/model.js';
import { ErrorCode, isMailgateError } from '../../errors.js';
import type { SenderView } from '../../senders/model.js';
import type { ServerView } from '../../servers/model.js';
import { csrfField, errorSummary, field, problemsByField, selectField } from '../components.js';
import { sessionOf, type WebContext } from '../context.js';
import { formText } from '../forms.js';
import { html, type SafeHtml } from '../html.js';

export type AccountKind = 'relay' | 'proxy';

/** Where each kind lives under /relay, and its words. */
export const KIND = {
  relay: { path: '/relay/relay-accounts', noun: 'relay account', title: 'Relay account' },
  proxy: { path: '/relay/proxy-accounts', noun: 'proxy account', title: 'Proxy account' },
} as const;

export const LABELS: Record<string, string> = {
  name: 'Username',
  sender: 'Sender',
  server: 'Mailbox server',
  allowFrom: 'Other From addresses it may use',
  passwordChoice: 'Password',
  password: 'Password to set',
};

/** The first option of the sender and server choices: nothing chosen yet. */
const CHOOSE = ['', 'Choose…'] as const;

export interface AccountFormValues {
  name: string;
  /** The sender (relay) or server (proxy). */
  target: string;
  allowFrom: string;
  passwordChoice: 'generate' | 'type';
}

export function valuesFromForm(body: unknown, kind: AccountKind): AccountFormValues {
  return {
    name: formText(body, 'name').trim(),
    target: formText(body, kind === 'relay' ? 'sender' : 'server').trim(),
    allowFrom: formText(body, 'allowFrom'),
    passwordChoice: formText(body, 'passwordChoice') === 'type' ? 'type' : 'generate',
  };
}

/** The password part of the service input, or a problem on the password field when "type one" came without one. */
export function passwordInput(body: unknown, choice: AccountFormValues['passwordChoice']): { input: { password: string } | { generatePassword: true }; problem?: string } {
  if (choice === 'generate') return { input: { generatePassword: true } };
  const password = formText(body, 'password');
  if (password === '') return { input: { password }, problem: 'type the password the program will use (at least 12 characters), or choose “Let Mailgate generate one”' };
  return { input: { password } };
}

/** A refused input as problems by form field: `allowFrom[2]: …` lands on the allow-list as “line 3: …”. */
export function accountProblems(err: unknown, name: string, kind: AccountKind): Map<string, string> {
  if (isMailgateError(err) && err.code === ErrorCode.ALREADY_EXISTS) return new Map([['name', `a ${KIND[kind].noun} named “${name}” exists already: choose another username, or give that one a new password`]]);
  if (!isMailgateError(err) || err.code !== ErrorCode.INPUT_INVALID) throw err;
  const problems = Array.isArray(err.details.problems) ? (err.details.problems as string[]) : err.message.split('; ');
  return problemsByField(problems.map((p) => p.replace(/^allowFrom\[(\d+)\]: /, (_m, i: string) => `allowFrom: line ${Number(i) + 1}: `)));
}

function passwordFieldset(values: Pick<AccountFormValues, 'passwordChoice'>, problems: Map<string, string>, legend: string): SafeHtml {
  const error = problems.get('password');
  return html`<fieldset class="password-choice">
    <legend>${legend}</legend>
    <div class="check"><input type="radio" id="f-passwordChoice" name="passwordChoice" value="generate"${values.passwordChoice === 'generate' ? html` checked` : ''} aria-describedby="generate-help"><div><label for="f-passwordChoice">Let Mailgate generate one (recommended)</label><p class="help" id="generate-help">24 letters and digits, shown once on the next page. Devices that refuse punctuation accept it.</p></div></div>
    <div class="check"><input type="radio" id="choice-type" name="passwordChoice" value="type"${values.passwordChoice === 'type' ? html` checked` : ''}><label for="choice-type">Type a password</label></div>
    ${field({ name: 'password', label: LABELS.password!, type: 'password', error, required: false, autocomplete: 'new-password', help: 'Only with “Type a password”: at least 12 characters, no line breaks. Mailgate keeps only a scrypt hash of it.' })}
  </fieldset>`;
}

export async function addForm(
  request: FastifyRequest,
  reply: FastifyReply,
  ctx: WebContext,
  kind: AccountKind,
  options: { values: AccountFormValues; senders: SenderView[]; servers: ServerView[]; problems?: Map<string, string> },
): Promise<FastifyReply> {
  const problems = options.problems ?? new Map<string, string>();
  const { values } = options;
  const k = KIND[kind];
  const targetField =
    kind === 'relay'
      ? selectField('sender', LABELS.sender!, [CHOOSE, ...options.senders.map((s) => [s.name, `${s.name} — ${s.from}`] as const)], values.target, problems.get('sender'), html`Its mail goes out through this sender’s route, and its From address is one the program may use. ${options.senders.length === 0 ? html`No sender exists yet: <a href="/senders/new">add one</a> first.` : ''}`)
      : selectField('server', LABELS.server!, [CHOOSE, ...options.servers.map((s) => [s.name, `${s.name} — ${s.protocol.toUpperCase()} ${s.host}${s.auth.type === 'oauth2' ? '' : ' (no OAuth2 credential)'}`] as const)], values.target, problems.get('server'), html`The IMAP or POP3 mailbox the program reads; Mailgate signs in to it with the server’s OAuth2 credential. ${options.servers.length === 0 ? html`No IMAP or POP3 server exists yet: <a href="/servers/new?protocol=imap">add one</a> first.` : ''}`);
  const body = html`<nav class="crumbs" aria-label="Breadcrumb"><a href="/relay">Relay &amp; proxies</a> / Add ${k.noun}</nav>
<h1>Add a ${k.noun}</h1>
<p class="muted">${kind === 'relay' ? 'For a program that sends mail with a server, a port, a username and a password (a scanner, an alarm panel, a monitoring tool).' : 'For a program that reads a mailbox over IMAP or POP3 with a username and a password (a ticket system, an ERP).'}</p>
${errorSummary(problems, LABELS)}
<form method="post" action="${k.path}" class="stack account-form" novalidate>
  ${csrfField(sessionOf(request))}
  ${field({ name: 'name', label: LABELS.name!, value: values.name, required: true, error: problems.get('name'), help: 'What the program types as its user name, e.g. scanner-2nd-floor. Letters, digits, “.”, “_”, “@”, “+” and “-”.', attributes: 'autocapitalize="none" spellcheck="false" autocomplete="off"' })}
  ${targetField}
  ${kind === 'relay' ? field({ name: 'allowFrom', label: LABELS.allowFrom!, type: 'textarea', value: values.allowFrom, error: problems.get('allowFrom'), help: 'One per line: an address (alerts@example.com) or a whole domain (@example.com). Besides these, only the sender’s From is accepted.' }) : ''}
  ${passwordFieldset(values, problems, LABELS.passwordChoice!)}
  <div class="actions"><button type="submit" class="button primary">Add ${k.noun}</button> <a class="button secondary" href="/relay">Cancel</a></div>
</form>`;
  return ctx.page(request, reply, { title: `Add a ${k.noun}`, section: 'relay', body, status: problems.size > 0 ? 400 : 200 });
}

export async function passwordForm(request: FastifyRequest, reply: FastifyReply, ctx: WebContext, kind: AccountKind, name: string, options: { passwordChoice: AccountFormValues['passwordChoice']; problems?: Map<string, string> }): Promise<FastifyReply> {
  const problems = options.problems ?? new Map<string, string>();
  const k = KIND[kind];
  const body = html`<nav class="crumbs" aria-label="Breadcrumb"><a href="/relay">Relay &amp; proxies</a> / ${name}</nav>
<h1>New password for ${name}</h1>
<p>The old password stops working as soon as you save: change it in the program right after.</p>
${errorSummary(problems, LABELS)}
<form method="post" action="${k.path}/${encodeURIComponent(name)}/password" class="stack account-form" novalidate>
  ${csrfField(sessionOf(request))}
  ${passwordFieldset({ passwordChoice: options.passwordChoice }, problems, 'New password')}
  <div class="actions"><button type="submit" class="button primary">Set the new password</button> <a class="button secondary" href="/relay">Cancel</a></div>
</form>`;
  return ctx.page(request, reply, { title: `New password for ${name}`, section: 'relay', body, status: problems.size > 0 ? 400 : 200 });
}

/** The page after an add or a new password: the generated password (only now) and the five fields for each listener. */
export function resultPage(kind: AccountKind, account: RelayAccountView | ProxyAccountView, generated: string | undefined, settings: ProgramSettings[], heading: string): SafeHtml {
  const k = KIND[kind];
  const protocol = settings[0]?.protocol ?? (kind === 'relay' ? 'smtp' : 'imap');
  return html`<nav class="crumbs" aria-label="Breadcrumb"><a href="/relay">Relay &amp; proxies</a> / ${account.name}</nav>
<h1>${heading}</h1>
${generated !== undefined
  ? html`<div class="hint warn" role="alert"><p><strong>Copy the password now: it cannot be shown again.</strong> Mailgate keeps only a hash of it. If it gets lost, set a new one.</p></div>
<section class="panel new-key" aria-labelledby="password-title">
  <h2 id="password-title">The password</h2>
  <div class="copy-row"><input type="text" id="new-password" class="mono" value="${generated}" readonly aria-label="Password of ${account.name}" autocomplete="off" spellcheck="false"><button type="button" class="button secondary" data-copy="new-password">Copy</button><span class="copy-status" role="status" aria-live="polite"></span></div>
</section>`
  : ''}
<section class="panel" aria-labelledby="program-title">
  <h2 id="program-title">What to type into the program</h2>
  ${settings.length === 0
    ? html`<div class="hint"><p>No ${protocol.toUpperCase()} listener is configured yet. Add <code>${kind === 'relay' ? 'relay.listeners' : `proxy.${protocol}`}</code> to mailgate.yaml and restart Mailgate; the program then logs in as <strong>${account.name}</strong>.</p></div>`
    : settings.map(
        (s) => html`<h3>${s.protocol.toUpperCase()} <span class="muted small mono">${s.listener}</span></h3>
<dl class="facts program-settings"><dt>Server</dt><dd class="mono">${s.server}</dd><dt>Port</dt><dd class="mono">${s.port}</dd><dt>Security</dt><dd>${s.security}</dd><dt>User</dt><dd class="mono">${s.user}</dd><dt>Password</dt><dd>${generated !== undefined ? 'the one above' : 'the password you typed'}</dd></dl>
${s.notes.length > 0 ? html`<ul class="plain-list">${s.notes.map((n) => html`<li class="help">${n}</li>`)}</ul>` : ''}`,
      )}
</section>
<p class="actions"><a class="button primary" href="/relay">${generated !== undefined ? 'I have copied the password' : `Back to ${k.noun}s`}</a></p>`;
}

