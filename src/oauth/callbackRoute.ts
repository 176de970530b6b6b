// GET /oauth/callback: the redirect URI; finishes a sign-in and shows a page that says what happened (never a stack trace).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuthorizationFlow, CallbackOutcome } from './authorization.js';
import { CALLBACK_PAGE_HEADERS, renderCallbackPage } from './callbackPage.js';
import type { AuditLog } from '../audit/auditLog.js';

/** Listeners a CLI `credential authorize` waits on when it runs its own temporary callback listener. */
export type CallbackListener = (outcome: CallbackOutcome) => void;

/** How a sign-in started in the web UI finishes: bound to the browser that started it, and back into the UI. */
export interface BrowserCallback {
  /** The browser-binding value the UI set when it started the sign-in (a cookie), if any. */
  bindingOf(request: FastifyRequest): string | undefined;
  /** Takes the browser back into the UI with the outcome; undefined to show the plain outcome page instead. */
  finish(request: FastifyRequest, reply: FastifyReply, outcome: CallbackOutcome): Promise<FastifyReply | undefined>;
}

export interface CallbackRouteOptions {
  onOutcome?: CallbackListener | undefined;
  audit?: AuditLog | undefined;
  browser?: BrowserCallback | undefined;
}

export function registerCallbackRoute(app: FastifyInstance, authorization: AuthorizationFlow, options: CallbackRouteOptions = {}): void {
  app.get('/oauth/callback', async (request, reply) => {
    const query = new URLSearchParams(request.url.split('?')[1] ?? '');
    let outcome: CallbackOutcome;
    try {
      const browserBinding = options.browser?.bindingOf(request);
      outcome = await authorization.complete(query, browserBinding ? { browserBinding } : {});
    } catch (err) {
      request.log.error({ err }, 'oauth callback failed');
      outcome = { ok: false, code: 'INTERNAL', credential: undefined, title: 'Mailgate could not finish the sign-in', message: 'An internal error occurred; the details are in Mailgate\'s log. Try again.' };
    }
    options.onOutcome?.(outcome);
    // Only a callback that matched a sign-in Mailgate started is audited (its credential is known): anyone can request
    // /oauth/callback?state=x, and each such request must not add a row to the audit log.
    if (outcome.credential !== undefined) {
      await options.audit?.record(`browser:${outcome.signedInAs ?? 'unknown'}`, 'oauth.callback', outcome.credential, { ok: outcome.ok, ...(outcome.ok ? {} : { code: outcome.code }) }).catch(() => undefined);
    }
    // Set before the browser hand-off too: whichever answer leaves, it may not be framed, sniffed, cached or referred.
    void reply.headers(CALLBACK_PAGE_HEADERS);
    const handled = await options.browser?.finish(request, reply, outcome);
    if (handled) return handled;
    const status = outcome.ok ? 200 : outcome.code === 'OAUTH_STATE_INVALID' || outcome.code === 'OAUTH_PROVIDER_ERROR' ? 400 : outcome.code === 'OAUTH_WRONG_ACCOUNT' ? 403 : outcome.code === 'INTERNAL' ? 500 : 400;
    return reply.status(status).header('content-type', 'text/html; charset=utf-8').send(renderCallbackPage(outcome));
  });
}
