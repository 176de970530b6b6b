// The sender pages: add and edit a route (primary, backups, From, Reply-To), and delete it.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCode, isMailgateError } from '../../errors.js';
import type { SenderView } from '../../senders/model.js';
import type { ServerView } from '../../servers/model.js';
import { csrfField, emptyState, errorSummary, field, problemsByField, selectField } from '../components.js';
import { sessionOf, type WebContext } from '../context.js';
import { formList, formProblems, formText } from '../forms.js';
import { html } from '../html.js';
import { readOnlyPage, type NameParams } from './servers.js';

const SENDER_LABELS: Record<string, string> = {
  name: 'Name',
  from: 'From address',
  primary: 'Primary server',
  backups: 'Backup servers',
  replyTo: 'Reply-To address',
};

export function registerSenderPages(app: FastifyInstance, ctx: WebContext): void {
  const { services } = ctx;

  app.get('/senders', async (_request, reply) => reply.redirect('/servers#senders', 303));

  app.get('/senders/new', async (request, reply) => {
    const smtp = await smtpServers(ctx);
    return senderForm(request, reply, ctx, { mode: 'add', smtp, values: { name: '', from: '', primary: smtp.length === 1 ? smtp[0]!.name : '', backups: [], replyTo: '' } });
  });

  app.post('/senders', async (request, reply) => {
    const smtp = await smtpServers(ctx);
    const values = senderValuesFromForm(request.body);
    try {
      const view = await services.senders.add(senderInput(values, 'add'));
      return ctx.redirectWithFlash(request, reply, '/servers#senders', { kind: 'success', title: `Added sender ${view.name}`, message: `Applications can now send as ${view.name} through ${view.primary}${view.backups.length > 0 ? `, then ${view.backups.join(', ')}` : ''}.` });
    } catch (err) {
      const problems = isMailgateError(err) && err.code === ErrorCode.ALREADY_EXISTS ? new Map([['name', 'a sender with this name exists already: choose another name, or edit that one']]) : senderProblems(err);
      return senderForm(request, reply, ctx, { mode: 'add', smtp, values, problems });
    }
  });

  app.get<NameParams>('/senders/:name/edit', async (request, reply) => {
    const view = await services.senders.show(request.params.name);
    if (view.source === 'config') return readOnlyPage(request, reply, ctx, 'sender', view.name);
    const smtp = await smtpServers(ctx);
    return senderForm(request, reply, ctx, { mode: 'edit', view, smtp, values: { name: view.name, from: view.from, primary: view.primary, backups: view.backups, replyTo: view.replyTo ?? '' } });
  });

  app.post<NameParams>('/senders/:name', async (request, reply) => {
    const view = await services.senders.show(request.params.name);
    if (view.source === 'config') return readOnlyPage(request, reply, ctx, 'sender', view.name);
    const smtp = await smtpServers(ctx);
    const values = { ...senderValuesFromForm(request.body), name: view.name };
    try {
      const { name: _name, ...patch } = senderInput(values, 'edit');
      await services.senders.update(view.name, patch);
      return ctx.redirectWithFlash(request, reply, '/servers#senders', { kind: 'success', title: `Saved sender ${view.name}` });
    } catch (err) {
      return senderForm(request, reply, ctx, { mode: 'edit', view, smtp, values, problems: senderProblems(err) });
    }
  });

  app.get<NameParams>('/senders/:name/delete', async (request, reply) => {
    const view = await services.senders.show(request.params.name);
    if (view.source === 'config') return readOnlyPage(request, reply, ctx, 'sender', view.name);
    return ctx.page(request, reply, {
      title: `Delete sender ${view.name}`,
      section: 'servers',
      body: html`<section class="panel narrow"><h1>Delete sender ${view.name}?</h1>
<p>Applications that send as <strong>${view.name}</strong> get an error from then on; messages already queued for it fail. The servers stay.</p>
<form method="post" action="/senders/${encodeURIComponent(view.name)}/delete" class="actions">${csrfField(sessionOf(request))}
<button type="submit" class="button danger">Delete sender ${view.name}</button> <a class="button secondary" href="/servers#senders">Cancel</a></form></section>`,
    });
  });

  app.post<NameParams>('/senders/:name/delete', async (request, reply) => {
    try {
      await services.senders.remove(request.params.name);
    } catch (err) {
      // Still used by a relay account, or defined in mailgate.yaml: say why on the page instead of an error page.
      if (!isMailgateError(err) || (err.code !== ErrorCode.STATE_CONFLICT && err.code !== ErrorCode.INPUT_INVALID)) throw err;
      return ctx.redirectWithFlash(request, reply, '/servers#senders', { kind: 'error', title: `Sender ${request.params.name} was not deleted`, message: err.message });
    }
    return ctx.redirectWithFlash(request, reply, '/servers#senders', { kind: 'success', title: `Deleted sender ${request.params.name}` });
  });
}

interface SenderFormValues {
  name: string;
  from: string;
  primary: string;
  backups: string[];
  replyTo: string;
}

async function smtpServers(ctx: WebContext): Promise<ServerView[]> {
  return (await ctx.services.servers.list()).filter((s) => s.protocol === 'smtp');
}

function senderValuesFromForm(body: unknown): SenderFormValues {
  const primary = formText(body, 'primary').trim();
  return {
    name: formText(body, 'name').trim(),
    from: formText(body, 'from').trim(),
    primary,
    // the primary is tried first anyway: ticking it as a backup too changes nothing
    backups: formList(body, 'backups').filter((b) => b !== primary),
    replyTo: formText(body, 'replyTo').trim(),
  };
}

function senderInput(values: SenderFormValues, mode: 'add' | 'edit'): Record<string, unknown> & { name: string } {
  return { name: values.name, primary: values.primary, backups: values.backups, from: values.from, ...(values.replyTo !== '' || mode === 'edit' ? { replyTo: values.replyTo === '' ? undefined : values.replyTo } : {}) };
}

/** The sender service names backups one by one ("backups[1]: …"): the form shows them on the backups field. */
function senderProblems(err: unknown): Map<string, string> {
  if (isMailgateError(err) && err.code === ErrorCode.INPUT_INVALID) return problemsByField(err.message.split('; ').map((p) => p.replace(/^backups\[\d+\]/, 'backups')));
  return formProblems(err);
}

async function senderForm(
  request: FastifyRequest,
  reply: FastifyReply,
  ctx: WebContext,
  options: { mode: 'add' | 'edit'; smtp: ServerView[]; values: SenderFormValues; view?: SenderView; problems?: Map<string, string> },
): Promise<FastifyReply> {
  const session = sessionOf(request);
  const { mode, smtp, values, view } = options;
  const problems = options.problems ?? new Map<string, string>();
  const title = mode === 'add' ? 'Add a sender' : `Edit sender ${view!.name}`;
  const crumbs = html`<nav class="crumbs" aria-label="Breadcrumb"><a href="/servers">Servers &amp; senders</a> / ${mode === 'add' ? 'Add sender' : html`${view!.name} / Edit`}</nav>`;
  if (smtp.length === 0) {
    return ctx.page(request, reply, {
      title,
      section: 'servers',
      body: html`${crumbs}<h1>${title}</h1>${emptyState('No SMTP server yet', 'A sender sends through an SMTP server. Add one first, then the sender.', html`<a class="button primary" href="/servers/new?protocol=smtp">Add an SMTP server</a>`)}`,
    });
  }
  const backups = new Set(values.backups);
  const f = (name: keyof SenderFormValues & string, extra: Partial<Parameters<typeof field>[0]> = {}) =>
    field({ name, label: SENDER_LABELS[name] ?? name, value: String(values[name] ?? ''), error: problems.get(name), ...extra });
  const backupError = problems.get('backups');
  const body = html`${crumbs}
<h1>${title}</h1>
${errorSummary(problems, SENDER_LABELS)}
<form method="post" action="${mode === 'add' ? '/senders' : `/senders/${encodeURIComponent(view!.name)}`}" class="stack sender-form" novalidate>
  ${csrfField(session)}
  <div class="form-grid">
  ${mode === 'add' ? f('name', { required: true, help: 'What applications name when they send, e.g. alerts. Letters, digits, “.”, “_” and “-”.', attributes: 'autocapitalize="none" spellcheck="false"' }) : ''}
  ${f('from', { required: true, placeholder: 'Alarm Centre <alerts@example.com>', help: 'An address, optionally with a display name: Alarm Centre <alerts@example.com>. Microsoft 365 and Google accept only the signed-in mailbox or its aliases.' })}
  ${selectField('primary', SENDER_LABELS.primary!, [['', 'Choose an SMTP server…'] as const, ...smtp.map((s) => [s.name, `${s.name} — ${s.host}:${s.port}`] as const)], values.primary, problems.get('primary'), 'Mail goes through this server first.')}
  ${f('replyTo', { help: 'Where replies go, if not to the From address.' })}
  </div>
  <fieldset id="f-backups" class="${backupError ? 'has-error' : ''}"${backupError ? html` aria-describedby="backups-error"` : ''}><legend>${SENDER_LABELS.backups} <span class="optional">(optional)</span></legend>
    ${backupError ? html`<p class="error-text" id="backups-error"><span class="visually-hidden">Error: </span>${backupError}</p>` : ''}
    <p class="help">Tried in this order when the primary fails to take the mail. The primary itself is always tried first.</p>
    ${smtp.map((s, i) => html`<div class="check"><input type="checkbox" id="backup-${i}" name="backups" value="${s.name}"${backups.has(s.name) ? html` checked` : ''}><label for="backup-${i}">${s.name} <span class="muted mono small">${s.host}:${s.port}</span></label></div>`)}
  </fieldset>
  <div class="actions"><button type="submit" class="button primary">${mode === 'add' ? 'Add sender' : 'Save changes'}</button>
  <a class="button secondary" href="/servers#senders">Cancel</a></div>
</form>`;
  return ctx.page(request, reply, { title, section: 'servers', body, status: problems.size > 0 ? 400 : 200 });
}
