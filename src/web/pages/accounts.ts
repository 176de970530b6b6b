// The "Relay & proxies" pages: this process's SMTP relay and IMAP/POP3 proxy listeners (address, TLS, state, certificate,
// sessions), the relay and proxy accounts, and their add, new-password and delete pages.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ProxyAccountView, RelayAccountView, WithPassword } from '../../accounts/model.js';
import { programSettings, type ProgramProtocol } from '../../accounts/programSettings.js';
import type { ListenerStatus } from '../../listeners/registry.js';
import { badge, csrfField, emptyState, timeCell, type Tone } from '../components.js';
import { sessionOf, type WebContext } from '../context.js';
import { formText } from '../forms.js';
import { html, type SafeHtml } from '../html.js';
import { accountProblems, addForm, KIND, passwordForm, passwordInput, resultPage, valuesFromForm, type AccountKind } from './accountForms.js';

type NameParams = { Params: { name: string } };

const STATE_TONE: Record<ListenerStatus['state'], Tone> = { listening: 'ok', starting: 'info', failed: 'bad', stopped: 'muted' };
const KIND_WORDS: Record<ListenerStatus['kind'], string> = { 'smtp-relay': 'SMTP relay', 'imap-proxy': 'IMAP proxy', 'pop3-proxy': 'POP3 proxy' };
const TLS_WORDS: Record<ListenerStatus['tls'], string> = { starttls: 'STARTTLS', implicit: 'TLS from the start', none: 'none (plain text)' };

export function registerAccountPages(app: FastifyInstance, ctx: WebContext): void {
  const { services } = ctx;
  const live = () => services.listeners.list();
  /** A proxy account's listener is its server's protocol. */
  const proxyProtocol = async (server: string): Promise<ProgramProtocol> => ((await services.serverRepo.find(server))?.protocol === 'pop3' ? 'pop3' : 'imap');
  const readServers = async () => (await services.servers.list()).filter((s) => s.protocol === 'imap' || s.protocol === 'pop3');

  app.get('/relay', async (request, reply) => {
    const [relayAccounts, proxyAccounts] = await Promise.all([services.relayAccounts.list(), services.proxyAccounts.list()]);
    const configured = services.config.relay.listeners.length + (services.config.proxy.imap ? 1 : 0) + (services.config.proxy.pop3 ? 1 : 0);
    const body = html`<div class="page-head"><h1>Relay &amp; proxies</h1><div class="actions"><a class="button primary" href="${KIND.relay.path}/new">Add relay account</a><a class="button secondary" href="${KIND.proxy.path}/new">Add proxy account</a></div></div>
<p class="muted">Programs that only know a server, a port, a username and a password send through Mailgate’s SMTP relay and read mail through its IMAP and POP3 proxies. Each program logs in with a local account; Mailgate signs in upstream with OAuth2.</p>
<section aria-labelledby="listeners-title">
<div class="section-head"><h2 id="listeners-title">Listeners</h2><p class="help">Configured in mailgate.yaml (<code>relay.listeners</code>, <code>proxy.imap</code>, <code>proxy.pop3</code>); this is their state in this Mailgate process.</p></div>
${listenerTable(live(), configured)}
</section>
<section aria-labelledby="relay-title">
<div class="section-head"><h2 id="relay-title">Relay accounts</h2><p class="help">Send mail through a sender’s route, as its From address or the addresses allowed here.</p></div>
${relayAccounts.length === 0 ? emptyState('No relay accounts yet', 'A relay account lets a program send mail through Mailgate with a username and password.', html`<a class="button primary" href="${KIND.relay.path}/new">Add the first relay account</a>`) : relayTable(relayAccounts)}
</section>
<section aria-labelledby="proxy-title">
<div class="section-head"><h2 id="proxy-title">Proxy accounts</h2><p class="help">Read one IMAP or POP3 mailbox through Mailgate.</p></div>
${proxyAccounts.length === 0 ? emptyState('No proxy accounts yet', 'A proxy account lets a program read a mailbox through Mailgate with a username and password.', html`<a class="button primary" href="${KIND.proxy.path}/new">Add the first proxy account</a>`) : proxyTable(proxyAccounts)}
</section>`;
    return ctx.page(request, reply, { title: 'Relay & proxies', section: 'relay', body });
  });

  // ---- add -------------------------------------------------------------------------------------------------------

  for (const kind of ['relay', 'proxy'] as const) {
    const k = KIND[kind];
    const lists = async () => ({ senders: kind === 'relay' ? await services.senders.list() : [], servers: kind === 'proxy' ? await readServers() : [] });

    app.get(`${k.path}/new`, async (request, reply) => {
      const l = await lists();
      const only = kind === 'relay' ? l.senders : l.servers;
      return addForm(request, reply, ctx, kind, { ...l, values: { name: '', target: only.length === 1 ? only[0]!.name : '', allowFrom: '', passwordChoice: 'generate' } });
    });

    app.post(k.path, async (request, reply) => {
      const values = valuesFromForm(request.body, kind);
      const password = passwordInput(request.body, values.passwordChoice);
      const allowFrom = values.allowFrom.split(/\r?\n/).map((s) => s.trim()).filter(Boolean);
      if (password.problem) return addForm(request, reply, ctx, kind, { ...(await lists()), values, problems: new Map([['password', password.problem]]) });
      let result: WithPassword<RelayAccountView | ProxyAccountView>;
      try {
        result =
          kind === 'relay'
            ? await services.relayAccounts.add({ name: values.name, sender: values.target, ...(allowFrom.length ? { allowFrom } : {}), ...password.input })
            : await services.proxyAccounts.add({ name: values.name, server: values.target, ...password.input });
      } catch (err) {
        return addForm(request, reply, ctx, kind, { ...(await lists()), values, problems: accountProblems(err, values.name, kind) });
      }
      // Rendered here, not after a redirect: a generated password must not pass through the session's flash (the store).
      return showResult(request, reply, kind, result, `${k.title} ${result.account.name} added`);
    });

    // ---- new password --------------------------------------------------------------------------------------------

    app.get<NameParams>(`${k.path}/:name/password`, async (request, reply) => {
      const account = await (kind === 'relay' ? services.relayAccounts.show(request.params.name) : services.proxyAccounts.show(request.params.name));
      return passwordForm(request, reply, ctx, kind, account.name, { passwordChoice: 'generate' });
    });

    app.post<NameParams>(`${k.path}/:name/password`, async (request, reply) => {
      const { name } = request.params;
      const choice = formText(request.body, 'passwordChoice') === 'type' ? 'type' : 'generate';
      const password = passwordInput(request.body, choice);
      if (password.problem) return passwordForm(request, reply, ctx, kind, name, { passwordChoice: choice, problems: new Map([['password', password.problem]]) });
      let result: WithPassword<RelayAccountView | ProxyAccountView>;
      try {
        result = kind === 'relay' ? await services.relayAccounts.update(name, password.input) : await services.proxyAccounts.update(name, password.input);
      } catch (err) {
        return passwordForm(request, reply, ctx, kind, name, { passwordChoice: choice, problems: accountProblems(err, name, kind) });
      }
      return showResult(request, reply, kind, result, `New password for ${name}`);
    });

    // ---- delete --------------------------------------------------------------------------------------------------

    app.get<NameParams>(`${k.path}/:name/delete`, async (request, reply) => {
      const account = await (kind === 'relay' ? services.relayAccounts.show(request.params.name) : services.proxyAccounts.show(request.params.name));
      return ctx.page(request, reply, {
        title: `Delete ${account.name}`,
        section: 'relay',
        body: html`<section class="panel narrow"><h1>Delete ${k.noun} ${account.name}?</h1>
<p>A program logging in as <strong>${account.name}</strong> is refused from then on${kind === 'proxy' ? ' (sessions already open run on until they close)' : ''}. ${kind === 'relay' ? 'Messages it already handed over are still delivered.' : 'The mailbox is not touched.'}</p>
<form method="post" action="${k.path}/${encodeURIComponent(account.name)}/delete" class="actions">${csrfField(sessionOf(request))}
<button type="submit" class="button danger">Delete ${account.name}</button> <a class="button secondary" href="/relay">Cancel</a></form></section>`,
      });
    });

    app.post<NameParams>(`${k.path}/:name/delete`, async (request, reply) => {
      await (kind === 'relay' ? services.relayAccounts.remove(request.params.name) : services.proxyAccounts.remove(request.params.name));
      return ctx.redirectWithFlash(request, reply, '/relay', { kind: 'success', title: `Deleted ${k.noun} ${request.params.name}`, message: 'Programs logging in as it are refused from now on.' });
    });
  }

  async function showResult(request: FastifyRequest, reply: FastifyReply, kind: AccountKind, result: WithPassword<RelayAccountView | ProxyAccountView>, heading: string): Promise<FastifyReply> {
    const protocol = kind === 'relay' ? 'smtp' : await proxyProtocol((result.account as ProxyAccountView).server);
    const settings = programSettings(services.config, protocol, result.account.name, live());
    return ctx.page(request, reply, { title: heading, section: 'relay', body: resultPage(kind, result.account, result.generatedPassword, settings, heading) });
  }
}

function listenerTable(listeners: ListenerStatus[], configured: number): SafeHtml {
  if (listeners.length === 0) {
    return configured > 0
      ? emptyState('Not started in this process', `${configured} listener${configured > 1 ? 's are' : ' is'} configured; they start with \`mailgate serve\`.`)
      : emptyState('No listeners configured', html`Add <code>relay.listeners</code> (SMTP), <code>proxy.imap</code> or <code>proxy.pop3</code> to mailgate.yaml and restart Mailgate; the README’s section “For programs that only know passwords” shows how.`);
  }
  return html`<div class="table-wrap"><table class="responsive listeners-table">
<caption class="visually-hidden">Listeners</caption>
<thead><tr><th scope="col">Listener</th><th scope="col">Address</th><th scope="col">TLS</th><th scope="col">State</th><th scope="col">Certificate (SHA-256)</th><th scope="col">Sessions now</th></tr></thead>
<tbody>${listeners.map(
    (l) => html`<tr>
  <th scope="row" data-label="Listener">${KIND_WORDS[l.kind]} <span class="mono small muted">${l.id}</span></th>
  <td data-label="Address" class="mono">${l.listen}</td>
  <td data-label="TLS">${TLS_WORDS[l.tls]}</td>
  <td data-label="State">${badge(STATE_TONE[l.state], l.state.replace(/^./, (c) => c.toUpperCase()))}${l.state === 'failed' && l.error ? html`<p class="error-text-plain">${l.error}</p>` : ''}</td>
  <td data-label="Certificate (SHA-256)">${l.certificate ? html`<span class="mono small fingerprint">${fingerprint(l.certificate.fingerprint256)}</span>${l.certificate.selfSigned ? html` <span class="muted small">(self-signed)</span>` : ''}` : html`<span class="muted">—</span>`}</td>
  <td data-label="Sessions now">${l.sessions}${l.sessions > 0 ? html` <span class="muted small">(${l.authenticated} logged in)</span>` : ''}</td>
</tr>`,
  )}</tbody></table></div>`;
}

/** AB:CD:… with a break opportunity after each colon, so 95 characters wrap on a phone. */
function fingerprint(value: string): SafeHtml {
  return html`${value.split(':').map((part, i) => html`${i > 0 ? html`:<wbr>` : ''}${part}`)}`;
}

function actions(kind: AccountKind, name: string): SafeHtml {
  const base = `${KIND[kind].path}/${encodeURIComponent(name)}`;
  return html`<div class="row-actions"><a class="button secondary small" href="${base}/password">New password<span class="visually-hidden"> for ${name}</span></a><a class="button danger-outline small" href="${base}/delete">Delete<span class="visually-hidden"> ${name}</span></a></div>`;
}

const passwordWords = (kind: 'generated' | 'chosen') => (kind === 'generated' ? 'generated' : 'typed by a person');

function relayTable(accounts: RelayAccountView[]): SafeHtml {
  return html`<div class="table-wrap"><table class="responsive relay-accounts-table">
<caption class="visually-hidden">Relay accounts</caption>
<thead><tr><th scope="col">Username</th><th scope="col">Sender</th><th scope="col">Also From</th><th scope="col">Password</th><th scope="col">Last login</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
<tbody>${accounts.map(
    (a) => html`<tr>
  <th scope="row" data-label="Username" class="name-cell">${a.name}</th>
  <td data-label="Sender">${a.sender}</td>
  <td data-label="Also From" class="target-cell">${a.allowFrom.length === 0 ? html`<span class="muted">only the sender’s</span>` : html`<ul class="plain-list">${a.allowFrom.map((f) => html`<li>${f}</li>`)}</ul>`}</td>
  <td data-label="Password">${passwordWords(a.passwordKind)}</td>
  <td data-label="Last login">${timeCell(a.lastLoginAt, 'never')}</td>
  <td data-label="Actions" class="actions-cell">${actions('relay', a.name)}</td>
</tr>`,
  )}</tbody></table></div>`;
}

function proxyTable(accounts: ProxyAccountView[]): SafeHtml {
  return html`<div class="table-wrap"><table class="responsive proxy-accounts-table">
<caption class="visually-hidden">Proxy accounts</caption>
<thead><tr><th scope="col">Username</th><th scope="col">Mailbox server</th><th scope="col">Password</th><th scope="col">Last login</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
<tbody>${accounts.map(
    (a) => html`<tr>
  <th scope="row" data-label="Username" class="name-cell">${a.name}</th>
  <td data-label="Mailbox server"><a href="/servers/${encodeURIComponent(a.server)}/test">${a.server}</a></td>
  <td data-label="Password">${passwordWords(a.passwordKind)}</td>
  <td data-label="Last login">${timeCell(a.lastLoginAt, 'never')}</td>
  <td data-label="Actions" class="actions-cell">${actions('proxy', a.name)}</td>
</tr>`,
  )}</tbody></table></div>`;
}
