// A server's page: its settings, sending limits and the test that shows each step live (NDJSON for the page script) or as a whole report page (a plain form post without JavaScript).
import { PassThrough } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isMailgateError } from '../../errors.js';
import type { ServerView } from '../../servers/model.js';
import { testServer } from '../../servers/serverTest.js';
import type { ServerTestReport, ServerTestStep } from '../../servers/testReport.js';
import { csrfField, errorSummary, field } from '../components.js';
import { sessionOf, type WebContext } from '../context.js';
import { formProblems, formText } from '../forms.js';
import { html, type SafeHtml } from '../html.js';
import { limitsPanel } from './serverLimits.js';
import { PROTOCOL_LABEL } from './serverForm.js';
import { authCell, securityCell, sourceCell, type NameParams } from './servers.js';

export function registerServerTestPages(app: FastifyInstance, ctx: WebContext): void {
  const { services } = ctx;

  app.get<NameParams>('/servers/:name/test', async (request, reply) => {
    const view = await services.servers.show(request.params.name);
    return testPage(request, reply, ctx, { view, sendTo: '' });
  });

  app.post<NameParams>('/servers/:name/test', async (request, reply) => {
    const live = String(request.headers.accept ?? '').includes('application/x-ndjson');
    const sendTo = formText(request.body, 'sendTo').trim();
    if (live) return streamTest(request, reply, ctx, request.params.name, sendTo);

    const view = await services.servers.show(request.params.name);
    const server = services.serverRepo.resolve(await services.serverRepo.get(view.name));
    try {
      const report = await testServer(server, services, sendTo && view.protocol === 'smtp' ? { sendTo } : {});
      return testPage(request, reply, ctx, { view, sendTo, report });
    } catch (err) {
      const problems = formProblems(err);
      return testPage(request, reply, ctx, { view, sendTo, problems });
    }
  });
}

/** Human names of the steps, in the order they happen; a repeated step (EHLO after STARTTLS, a retried sign-in) says so. */
function stepLabeler(server: Pick<ServerView, 'protocol' | 'security' | 'auth'>): (step: ServerTestStep) => string {
  const seen = new Set<string>();
  return (step) => {
    const again = seen.has(step.name);
    seen.add(step.name);
    switch (step.name) {
      case 'connect':
        return server.protocol === 'imap' && server.security !== 'none' ? `Connect and TLS${server.security === 'starttls' ? ' (STARTTLS)' : ''}` : 'Connect';
      case 'tls':
        return server.security === 'starttls' ? (server.protocol === 'pop3' ? 'TLS (STLS)' : 'TLS (STARTTLS)') : 'TLS';
      case 'ehlo':
        return again ? 'Hello again over TLS (EHLO)' : 'Hello (EHLO)';
      case 'capabilities':
        return 'Capabilities';
      case 'token':
        return again ? 'Access token (refreshed)' : 'Access token';
      case 'auth': {
        const mechanism = /^([A-Z][A-Z0-9/_-]*) as /.exec(step.detail)?.[1] ?? (server.auth.type === 'oauth2' ? 'XOAUTH2' : server.auth.type === 'password' ? 'password' : 'no sign-in');
        return `Sign in (${mechanism})${again ? ', second attempt' : ''}`;
      }
      case 'folders':
        return 'List folders';
      case 'mailbox':
        return server.protocol === 'pop3' ? 'Read the mailbox (STAT)' : 'Open INBOX';
      case 'send':
        return 'Send test message';
      default:
        return String(step.name);
    }
  };
}

function reportHtml(report: ServerTestReport, view: ServerView): SafeHtml {
  const label = stepLabeler(view);
  return html`<p class="test-summary ${report.ok ? 'ok' : 'bad'}" role="status">${report.ok ? `Works: every step passed in ${report.totalMs} ms.` : 'Does not work as configured: see the failed step below.'}</p>
<ol class="steps">${report.steps.map(
    (step) => html`<li class="${step.ok ? 'ok' : 'bad'}">
  <p><span class="mark" aria-hidden="true">${step.ok ? '✓' : '✗'}</span><strong>${label(step)}</strong><span class="visually-hidden">${step.ok ? ' passed' : ' failed'}</span> <span class="ms">${step.ms} ms</span></p>
  <p class="detail">${step.detail}</p>
  ${step.explanation ? html`<div class="explanation"><p>${step.explanation.meaning}</p><p><strong>Fix: </strong>${step.explanation.fix}</p></div>` : ''}
</li>`,
  )}</ol>`;
}

async function testPage(
  request: FastifyRequest,
  reply: FastifyReply,
  ctx: WebContext,
  options: { view: ServerView; sendTo: string; report?: ServerTestReport; problems?: Map<string, string> },
): Promise<FastifyReply> {
  const session = sessionOf(request);
  const { view, report } = options;
  const problems = options.problems ?? new Map<string, string>();
  const base = `/servers/${encodeURIComponent(view.name)}`;
  const does = view.protocol === 'smtp' ? 'connects, secures the connection, says hello, signs in and, if you give an address, sends a short test message' : view.protocol === 'imap' ? 'connects, secures the connection, signs in, lists the folders and opens the INBOX without changing any message' : 'connects, secures the connection, signs in and reads the mailbox size without changing any message';
  const body = html`<nav class="crumbs" aria-label="Breadcrumb"><a href="/servers">Servers &amp; senders</a> / ${view.name}</nav>
<div class="page-head"><h1>${view.name} <span class="badge muted">${view.protocol.toUpperCase()}</span></h1>
<div class="actions">${view.source === 'api' ? html`<a class="button secondary" href="${base}/edit">Edit</a> <a class="button danger-outline" href="${base}/delete">Delete</a>` : html`<span class="muted">Defined in mailgate.yaml: read-only here</span>`}</div></div>
${view.warnings.map((w) => html`<div class="hint warn"><p><strong>Warning:</strong> ${w.message}</p></div>`)}
<section class="panel"><h2>Settings</h2><dl class="facts">
  <dt>Protocol</dt><dd>${PROTOCOL_LABEL[view.protocol]}</dd>
  <dt>Host and port</dt><dd class="mono">${view.host}:${view.port}</dd>
  <dt>Security</dt><dd>${securityCell(view.security)}${view.tlsCa ? ' · trusts its own CA certificate' : ''}${view.tlsRejectUnauthorized ? '' : html` · <strong>certificate not verified</strong>`}</dd>
  <dt>Username</dt><dd>${view.username ?? '—'}</dd>
  <dt>Sign-in</dt><dd>${authCell(view)}</dd>
  <dt>Defined in</dt><dd>${sourceCell(view.source)}</dd>
</dl></section>
${view.protocol === 'smtp' ? limitsPanel(view, session) : ''}
<section class="panel" aria-labelledby="test-title"><h2 id="test-title">Test</h2>
<p class="help">The test ${does}. Each step shows as it completes; a failed step says what it means and how to fix it.</p>
${errorSummary(problems, { sendTo: 'Send a test message to' })}
<form method="post" action="${base}/test" data-live-test="test-output" class="stack test-form" novalidate>
  ${csrfField(session)}
  ${view.protocol === 'smtp' ? html`<div class="form-grid">${field({ name: 'sendTo', label: 'Send a test message to', type: 'email', value: options.sendTo, error: problems.get('sendTo'), autocomplete: 'email', help: 'Mailgate sends “Mailgate test message” to this address after signing in. Leave empty to test without sending.' })}</div>` : ''}
  <div class="actions"><button type="submit" class="button primary">Run test</button></div>
</form>
<div id="test-output" class="test-output"${report ? '' : html` hidden`} aria-live="polite">${report ? reportHtml(report, view) : ''}</div>
</section>`;
  return ctx.page(request, reply, { title: `Test ${view.name}`, section: 'servers', body, status: problems.size > 0 ? 400 : 200 });
}

/** One JSON line per completed step, then the report (or an error): the page script shows them as they come. */
async function streamTest(request: FastifyRequest, reply: FastifyReply, ctx: WebContext, name: string, sendTo: string): Promise<FastifyReply> {
  const { services } = ctx;
  const out = new PassThrough();
  const write = (event: unknown) => {
    if (!out.writableEnded) out.write(`${JSON.stringify(event)}\n`);
  };
  void (async () => {
    try {
      const view = await services.servers.show(name);
      const server = services.serverRepo.resolve(await services.serverRepo.get(name));
      const label = stepLabeler(view);
      const report = await testServer(server, services, {
        onStep: (step) => write({ type: 'step', label: label(step), step }),
        ...(sendTo && view.protocol === 'smtp' ? { sendTo } : {}),
      });
      write({ type: 'done', report });
    } catch (err) {
      if (!isMailgateError(err)) request.log.error({ err }, 'server test failed');
      write({ type: 'error', message: isMailgateError(err) ? err.message.replace(/^sendTo: /, 'Send a test message to: ') : 'The test failed inside Mailgate; the details are in its log.' });
    } finally {
      out.end();
    }
  })();
  return reply.type('application/x-ndjson; charset=utf-8').header('x-accel-buffering', 'no').send(out);
}
