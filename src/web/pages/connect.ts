// Connect / Reconnect: a confirmation page (the link alerts point to), the start of the provider sign-in bound to this browser, and the way back into the UI.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { BrowserCallback } from '../../oauth/callbackRoute.js';
import { csrfField } from '../components.js';
import { sessionOf, type WebContext } from '../context.js';
import { html } from '../html.js';
import { randomToken } from '../sessions.js';

type NameParams = { Params: { name: string } };

const PROVIDER_NAMES: Record<string, string> = { microsoft: 'Microsoft', google: 'Google', generic: 'the provider' };

function bindingCookieOf(ctx: WebContext): string {
  return ctx.secureCookies ? '__Host-mailgate_oauth' : 'mailgate_oauth';
}

export function registerConnectPages(app: FastifyInstance, ctx: WebContext): void {
  const { services } = ctx;

  app.get<NameParams>('/credentials/:name/connect', async (request, reply) => {
    const session = sessionOf(request);
    const view = await services.credentials.show(request.params.name);
    const provider = PROVIDER_NAMES[view.provider] ?? 'the provider';
    const href = `/credentials/${encodeURIComponent(view.name)}`;
    if (view.grant !== 'authorization_code') {
      return ctx.page(request, reply, {
        title: `Connect ${view.name}`,
        section: 'credentials',
        body: html`<nav class="crumbs" aria-label="Breadcrumb"><a href="/credentials">Credentials</a> / <a href="${href}">${view.name}</a></nav>
<section class="panel narrow"><h1>${view.name} has no browser sign-in</h1>
<p>It uses the <code>${view.grant}</code> grant: ${view.grant === 'client_credentials' ? 'the app signs in by itself, so use “Refresh now” on its page to fetch a token.' : html`run <code>mailgate credential authorize ${view.name}</code> on the server and follow the device code it prints.`}</p>
<p><a class="button secondary" href="${href}">Back to ${view.name}</a></p></section>`,
      });
    }
    const again = view.hasRefreshToken || view.status !== 'pending';
    return ctx.page(request, reply, {
      title: `${again ? 'Reconnect' : 'Connect'} ${view.name}`,
      section: 'credentials',
      body: html`<nav class="crumbs" aria-label="Breadcrumb"><a href="/credentials">Credentials</a> / <a href="${href}">${view.name}</a></nav>
<section class="panel narrow">
  <h1>${again ? 'Reconnect' : 'Connect'} ${view.name}</h1>
  <p>You will sign in at ${provider} as <strong>${view.email}</strong> and allow Mailgate to use the mailbox for ${view.protocols.map((p) => p.toUpperCase()).join(', ')}. Then you come back here.</p>
  <div class="hint"><p><strong>Tip:</strong> if this browser is signed in to ${provider} with another account, open Mailgate in a private (incognito) window first. Mailgate refuses tokens of any account other than ${view.email}.</p></div>
  ${view.status === 'needs_reauthorization' && view.statusReason ? html`<p class="muted">Why: ${view.statusReason}</p>` : ''}
  <form method="post" action="/credentials/${encodeURIComponent(view.name)}/connect" class="actions">
    ${csrfField(session)}
    <button type="submit" class="button primary">Continue to ${provider}</button>
    <a class="button secondary" href="${href}">Cancel</a>
  </form>
</section>`,
    });
  });

  app.post<NameParams>('/credentials/:name/connect', async (request, reply) => {
    const binding = randomToken();
    const start = await services.authorization.start(request.params.name, { browserBinding: binding });
    // Lax: the cookie comes back on the provider's top-level redirect to /oauth/callback, never on a cross-site subrequest.
    void reply.setCookie(bindingCookieOf(ctx), binding, { path: '/', httpOnly: true, sameSite: 'lax', secure: ctx.secureCookies, maxAge: 600 });
    return reply.redirect(start.authorizationUrl, 303);
  });
}

/** The callback's browser side: read this browser's binding, and bring a UI-started sign-in back to the credential's page with a message. */
export function browserCallback(ctx: WebContext): BrowserCallback {
  const cookie = bindingCookieOf(ctx);
  return {
    bindingOf: (request: FastifyRequest) => request.cookies?.[cookie],
    async finish(request: FastifyRequest, reply: FastifyReply, outcome) {
      if (!request.cookies?.[cookie]) return undefined;
      void reply.clearCookie(cookie, { path: '/' });
      const session = await ctx.sessions.find(request.cookies[ctx.sessionCookie]);
      if (!session) return undefined;
      const target = outcome.credential ? `/credentials/${encodeURIComponent(outcome.credential)}` : '/credentials';
      if (outcome.ok) {
        const warnings = outcome.warnings.map((w) => w.message).join(' ');
        await ctx.sessions.setFlash(session, { kind: 'success', title: `Connected ${outcome.credential} as ${outcome.signedInAs ?? 'the account the provider named'}`, message: `Mailgate keeps the token fresh from now on.${warnings ? ` Warning: ${warnings}` : ''}` });
      } else {
        const named = outcome.signedInAs && outcome.message.includes(outcome.signedInAs);
        const who = outcome.signedInAs && !named ? ` (signed in: ${outcome.signedInAs}; expected: ${outcome.expected ?? '?'})` : '';
        await ctx.sessions.setFlash(session, { kind: 'error', title: outcome.title, message: `${outcome.message}${who} Error code: ${outcome.code}.` });
      }
      return reply.header('cache-control', 'no-store').redirect(target, 303);
    },
  };
}
