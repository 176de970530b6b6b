// GET /oauth/callback: the redirect URI; finishes a sign-in and shows a page that says what happened (never a stack trace).
import type { FastifyInstance } from 'fastify';
import type { AuthorizationFlow, CallbackOutcome } from './authorization.js';
import { renderCallbackPage } from './callbackPage.js';
import type { AuditLog } from '../audit/auditLog.js';

/** Listeners a CLI `credential authorize` waits on when it runs its own temporary callback listener. */
export type CallbackListener = (outcome: CallbackOutcome) => void;

export function registerCallbackRoute(app: FastifyInstance, authorization: AuthorizationFlow, onOutcome?: CallbackListener, audit?: AuditLog): void {
  app.get('/oauth/callback', async (request, reply) => {
    const query = new URLSearchParams(request.url.split('?')[1] ?? '');
    let outcome: CallbackOutcome;
    try {
      outcome = await authorization.complete(query);
    } catch (err) {
      request.log.error({ err }, 'oauth callback failed');
      outcome = { ok: false, code: 'INTERNAL', credential: undefined, title: 'Mailgate could not finish the sign-in', message: 'An internal error occurred; the details are in Mailgate\'s log. Try again.' };
    }
    onOutcome?.(outcome);
    await audit?.record(`browser:${outcome.ok ? (outcome.signedInAs ?? 'unknown') : (outcome.signedInAs ?? 'unknown')}`, 'oauth.callback', outcome.credential, { ok: outcome.ok, ...(outcome.ok ? {} : { code: outcome.code }) }).catch(() => undefined);
    const status = outcome.ok ? 200 : outcome.code === 'OAUTH_STATE_INVALID' || outcome.code === 'OAUTH_PROVIDER_ERROR' ? 400 : outcome.code === 'OAUTH_WRONG_ACCOUNT' ? 403 : outcome.code === 'INTERNAL' ? 500 : 400;
    return reply
      .status(status)
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .header('referrer-policy', 'no-referrer')
      .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'")
      .send(renderCallbackPage(outcome));
  });
}
