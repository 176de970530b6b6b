// Mounts the web UI on the HTTP server: cookies, form bodies, security headers, the session and CSRF guard, the audit of UI actions, and every page.
import fastifyCookie from '@fastify/cookie';
import fastifyFormbody from '@fastify/formbody';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { fieldsOf } from '../audit/auditLog.js';
import type { Services } from '../services.js';
import { isMailgateError } from '../errors.js';
import { statusOfError } from '../http/errorStatus.js';
import { registerAssetRoutes } from './assets.js';
import { attachSession, findSession, sessionOf, type PageContent, type WebContext } from './context.js';
import { html } from './html.js';
import { layout, publicPage, sendPage, URGENT_STATUSES } from './layout.js';
import { LoginGuard } from '../accounts/loginGuard.js';
import { csrfMatches, SessionStore, type Session } from './sessions.js';
import { registerAuthPages } from './pages/auth.js';
import { registerCredentialPages } from './pages/credentials.js';
import { registerConnectPages } from './pages/connect.js';
import { registerServerPages } from './pages/servers.js';
import { registerServerLimitPages } from './pages/serverLimits.js';
import { registerSenderPages } from './pages/senders.js';
import { registerServerTestPages } from './pages/serverTest.js';
import { registerOutboxPages } from './pages/outbox.js';
import { registerInboundPages } from './pages/inbound.js';
import { registerAlertPages } from './pages/alerts.js';
import { registerApiKeyPages } from './pages/apiKeys.js';
import { registerAccountPages } from './pages/accounts.js';
import { registerOverviewPages } from './pages/overview.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** A UI route reachable without a session (sign-in, setup). */
    publicPage?: boolean;
  }
}

/** Scripts, styles and images come from Mailgate only; nothing may frame the UI. */
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'";

export function createWebContext(services: Services): WebContext {
  const secureCookies = services.config.publicUrl.startsWith('https:');
  const sessions = new SessionStore(services.store);
  const ctx: WebContext = {
    services,
    accounts: services.admins,
    sessions,
    throttle: new LoginGuard(),
    secureCookies,
    // __Host-: the browser then insists on Secure, Path=/ and no Domain, so no sibling host can set it.
    sessionCookie: secureCookies ? '__Host-mailgate_session' : 'mailgate_session',
    async page(request, reply, content) {
      const session = sessionOf(request);
      // The banner reads the credentials' own status, the source the two alert kinds are raised from.
      const [flash, urgent, alerts] = await Promise.all([sessions.takeFlash(session), services.credentialRepo.withStatus(URGENT_STATUSES), services.alerts.list('active')]);
      return sendPage(reply, content, layout({ title: content.title, section: content.section, session, body: content.body, flash, urgent, alertCount: alerts.length }).text);
    },
    async redirectWithFlash(request, reply, to, flash) {
      await sessions.setFlash(sessionOf(request), flash);
      return reply.redirect(to, 303);
    },
  };
  return ctx;
}

export function registerWebUi(app: FastifyInstance, services: Services): WebContext {
  const ctx = createWebContext(services);
  void app.register(fastifyCookie);
  registerAssetRoutes(app);

  void app.register(async (ui) => {
    await ui.register(fastifyFormbody, { bodyLimit: 512 * 1024 });

    ui.addHook('onSend', async (_request, reply, payload) => {
      reply.header('content-security-policy', CSP);
      reply.header('x-frame-options', 'DENY');
      reply.header('x-content-type-options', 'nosniff');
      reply.header('referrer-policy', 'no-referrer');
      reply.header('cache-control', 'no-store');
      return payload;
    });

    // Every UI route needs a session unless it says otherwise; every state change also needs the session's CSRF token
    // and must come from this site.
    ui.addHook('preHandler', async (request, reply) => {
      const unsafe = request.method !== 'GET' && request.method !== 'HEAD';
      if (unsafe && !sameOrigin(request, services.config.publicUrl)) return refuse(reply, 403, 'This request came from another site', 'Mailgate accepts changes only from its own pages. Open Mailgate and try again from there.');
      if (request.routeOptions.config.publicPage) return;
      const session = await ctx.sessions.find(request.cookies[ctx.sessionCookie]);
      if (!session) {
        if (!unsafe) return reply.redirect(`/login?next=${encodeURIComponent(request.url)}`, 303);
        return refuse(reply, 401, 'Your session has ended', 'Sign in again, then repeat what you were doing. Nothing was changed.', '/login');
      }
      if (unsafe) {
        const presented = (request.body as Record<string, unknown> | undefined)?._csrf ?? request.headers['x-csrf-token'];
        if (!csrfMatches(session, presented)) return refuse(reply, 403, 'This form has expired', 'The security token of the form is missing or out of date, so nothing was changed. Go back, reload the page and try again.');
      }
      attachSession(request, session);
    });

    // UI changes go to the audit log like API ones: who (the admin), what (route), which object, field names only.
    ui.addHook('onResponse', async (request, reply) => {
      if (request.method === 'GET' || request.method === 'HEAD' || reply.statusCode >= 400) return;
      const session = findSession(request);
      if (!session) return;
      const route = request.routeOptions.url ?? request.url.split('?')[0]!;
      const params = request.params as Record<string, string> | undefined;
      const target = params?.name ?? params?.id ?? (request.body as { name?: unknown } | undefined)?.name;
      const fields = fieldsOf(request.body).filter((f) => f !== '_csrf');
      await services.audit
        .record(`admin:${session.user.username}`, `ui ${request.method} ${route}`, typeof target === 'string' ? target : undefined, { fields })
        .catch((err: unknown) => request.log.error({ err }, 'cannot write the audit log'));
    });

    // Errors on UI routes become pages, not JSON: what went wrong and where to go; a 5xx says nothing specific.
    ui.setErrorHandler(async (err, request, reply) => {
      const statusCode = (err as { statusCode?: number }).statusCode;
      const status = isMailgateError(err) ? statusOfError(err) : statusCode !== undefined && statusCode >= 400 && statusCode < 500 ? statusCode : 500;
      if (status >= 500) request.log.error({ err }, 'web page failed');
      const message = status >= 500 ? 'Something went wrong inside Mailgate; the details are in its log. Try again, and if it keeps failing, check the log.' : (err as Error).message;
      return publicPage(reply, status === 404 ? 'Not found' : 'Something went wrong', html`<section class="panel narrow"><h1>${status === 404 ? 'Not found' : 'That did not work'}</h1><p>${message}</p><p><a class="button secondary" href="/credentials">Back to Mailgate</a></p></section>`, status);
    });

    registerAuthPages(ui, ctx);
    registerCredentialPages(ui, ctx);
    registerConnectPages(ui, ctx);
    registerServerPages(ui, ctx);
    registerServerTestPages(ui, ctx);
    registerServerLimitPages(ui, ctx);
    registerSenderPages(ui, ctx);
    registerOutboxPages(ui, ctx);
    registerInboundPages(ui, ctx);
    registerAlertPages(ui, ctx);
    registerApiKeyPages(ui, ctx);
    registerAccountPages(ui, ctx);
    registerOverviewPages(ui, ctx);
  });
  return ctx;
}

/** Origin (or, without it, Sec-Fetch-Site) must name this site: the public URL or the host the browser used. */
function sameOrigin(request: FastifyRequest, publicUrl: string): boolean {
  const origin = request.headers.origin;
  if (origin !== undefined && origin !== 'null') {
    const allowed = new Set([new URL(publicUrl).origin, `${request.protocol}://${request.host}`]);
    return allowed.has(origin);
  }
  const site = request.headers['sec-fetch-site'];
  return site === undefined || site === 'same-origin' || site === 'none';
}

function refuse(reply: FastifyReply, status: number, title: string, message: string, link?: string): FastifyReply {
  return publicPage(reply, title, html`<section class="panel narrow"><h1>${title}</h1><p>${message}</p>${link ? html`<p><a class="button primary" href="${link}">Sign in</a></p>` : ''}</section>`, status);
}

/** A random value for a cookie (CSRF of the sign-in form, browser binding of an OAuth sign-in). */
export type { Session };
