// The authorization server's own login page and automatic consent (what a person does at Entra ID or Google).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import { findUserByLogin } from './users.js';

/** Marker the login driver looks for to tell "wrong password" from other pages. */
export const LOGIN_REJECTED_MARKER = 'data-testbed-error="invalid_login"';

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function sendLoginPage(res: ServerResponse, uid: string, loginHint: string, rejected: boolean): void {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html>
<html><head><title>Test bed sign-in</title></head><body>
<h1>Sign in</h1>
${rejected ? `<p ${LOGIN_REJECTED_MARKER}>Your account or password is incorrect.</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<input name="login" type="email" autocomplete="username" placeholder="Email" value="${escapeHtml(loginHint)}">
<input name="password" type="password" autocomplete="current-password" placeholder="Password">
<button type="submit">Sign in</button>
</form></body></html>`);
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  let body = '';
  for await (const chunk of req) body += chunk;
  return new URLSearchParams(body);
}

async function handleInteraction(provider: Provider, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const details = await provider.interactionDetails(req, res);
  const { uid, prompt, params } = details;
  const loginHint = typeof params.login_hint === 'string' ? params.login_hint : '';

  if (req.method === 'POST' && req.url?.split('?')[0]?.endsWith('/login')) {
    const form = await readForm(req);
    const user = findUserByLogin(form.get('login') ?? '');
    if (!user || user.password !== form.get('password')) return sendLoginPage(res, uid, form.get('login') ?? '', true);
    return provider.interactionFinished(req, res, { login: { accountId: user.sub } }, { mergeWithLastSubmission: false });
  }
  if (prompt.name === 'login') return sendLoginPage(res, uid, loginHint, false);
  if (prompt.name === 'consent') {
    // Consent is given automatically to everything asked for; tests revoke it with the harness instead.
    const accountId = details.session?.accountId;
    if (!accountId) throw new Error('consent prompt without a signed-in session');
    const grant =
      (details.grantId ? await provider.Grant.find(details.grantId) : undefined) ??
      new provider.Grant({ accountId, clientId: String(params.client_id) });
    const missing = prompt.details as {
      missingOIDCScope?: string[];
      missingOIDCClaims?: string[];
      missingResourceScopes?: Record<string, string[]>;
    };
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [resource, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
      grant.addResourceScope(resource, scopes.join(' '));
    }
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  res.writeHead(400, { 'content-type': 'text/plain' }).end(`unsupported prompt ${prompt.name}`);
}

/** HTTP handler for `/interaction/*`; everything else goes to oidc-provider itself. */
export function interactionHandler(provider: Provider, onError: (err: unknown) => void) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    handleInteraction(provider, req, res).catch((err: unknown) => {
      onError(err);
      if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`interaction failed: ${err instanceof Error ? err.message : String(err)}`);
    });
  };
}
