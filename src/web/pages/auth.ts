// Sign-in, sign-out, the first-run setup link, and the signed-in admin's own account page (password change).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isMailgateError } from '../../errors.js';
import { csrfField, errorSummary, field, problemsByField } from '../components.js';
import { formText } from '../forms.js';
import { sessionOf, type WebContext } from '../context.js';
import { html } from '../html.js';
import { publicPage } from '../layout.js';
import { randomToken } from '../sessions.js';
import type { AdminUser } from '../adminAccounts.js';


/**
 * Only a path on this site may follow sign-in (no open redirect to another host). Resolved the way a browser resolves a
 * Location: `/\t/evil.example` and `/\evil.example` look like paths but are `//evil.example` once tabs are dropped and
 * backslashes read as slashes. The answer is path + query only, as the URL parser wrote it: no CR/LF, ASCII only
 * (a raw non-Latin-1 character in a Location header was a 500).
 * @see https://url.spec.whatwg.org/#concept-basic-url-parser
 */
function safeNext(next: unknown, publicUrl: string): string {
  // Without a page to return to, sign-in lands on the overview: what needs a person now.
  const fallback = '/overview';
  if (typeof next !== 'string' || !next.startsWith('/')) return fallback;
  let url: URL;
  try {
    url = new URL(next, publicUrl);
  } catch {
    return fallback;
  }
  if (url.origin !== new URL(publicUrl).origin || url.pathname.startsWith('/login')) return fallback;
  return url.pathname + url.search;
}

export function registerAuthPages(app: FastifyInstance, ctx: WebContext): void {
  const loginCookie = ctx.secureCookies ? '__Host-mailgate_login' : 'mailgate_login';
  const cookieOptions = { path: '/', httpOnly: true, sameSite: 'lax' as const, secure: ctx.secureCookies };

  // The sign-in form carries a token that must match a cookie set with it (double submit): no site can sign a browser in to another account.
  function loginForm(reply: FastifyReply, options: { next: string; username?: string; error?: string; status?: number }): FastifyReply {
    const token = randomToken();
    void reply.setCookie(loginCookie, token, { ...cookieOptions, maxAge: 3600 });
    return publicPage(
      reply,
      'Sign in',
      html`<section class="panel narrow">
  <h1>Sign in to Mailgate</h1>
  ${options.error ? html`<div class="flash error" role="alert" tabindex="-1" data-autofocus><p class="flash-title">${options.error}</p></div>` : ''}
  <form method="post" action="/login" class="stack">
    <input type="hidden" name="_csrf" value="${token}">
    <input type="hidden" name="next" value="${options.next}">
    ${field({ name: 'username', label: 'Username', value: options.username ?? '', required: true, autocomplete: 'username', attributes: 'autocapitalize="none" spellcheck="false"' })}
    ${field({ name: 'password', label: 'Password', type: 'password', required: true, autocomplete: 'current-password' })}
    <button type="submit" class="button primary">Sign in</button>
  </form>
  <p class="help">Forgot the password? On the server run <code>mailgate admin password admin</code>.</p>
</section>`,
      options.status,
    );
  }

  async function startSession(reply: FastifyReply, user: AdminUser): Promise<void> {
    const { cookieValue } = await ctx.sessions.create(user);
    void reply.setCookie(ctx.sessionCookie, cookieValue, cookieOptions);
    void reply.clearCookie(loginCookie, { path: '/' });
  }

  app.get<{ Querystring: { next?: string } }>('/login', { config: { publicPage: true } }, async (request, reply) => {
    if (await ctx.sessions.find(request.cookies[ctx.sessionCookie])) return reply.redirect(safeNext(request.query.next, ctx.services.config.publicUrl), 303);
    if ((await ctx.accounts.count()) === 0) {
      return publicPage(reply, 'Set up Mailgate', html`<section class="panel narrow"><h1>Mailgate has no admin yet</h1>
<p>Open the one-time setup link Mailgate printed to its log when it started (it begins with <code>/setup?token=</code>), or start Mailgate with <code>MAILGATE_ADMIN_PASSWORD</code> set to create the admin <code>admin</code>.</p></section>`);
    }
    return loginForm(reply, { next: safeNext(request.query.next, ctx.services.config.publicUrl) });
  });

  app.post('/login', { config: { publicPage: true } }, async (request, reply) => {
    const username = formText(request.body, 'username').trim();
    const password = formText(request.body, 'password');
    const next = safeNext(formText(request.body, 'next'), ctx.services.config.publicUrl);
    const cookie = request.cookies[loginCookie];
    if (!cookie || cookie !== formText(request.body, '_csrf')) {
      return loginForm(reply, { next, username, status: 403, error: 'The sign-in form expired. Please sign in again.' });
    }
    // Per client address first (5 failures), then per username only for guessing spread over many addresses (4 times as
    // many): someone typing wrong passwords for "admin" from elsewhere cannot lock the admin out of their own browser.
    // A password is checked only while failures and checks in progress together stay under the limit: twelve guesses
    // sent at once are checked at most five at a time, and the later ones find the address locked.
    const attempt = await ctx.throttle.begin(request.ip, username);
    if ('lockedForMs' in attempt) {
      const minutes = Math.ceil(attempt.lockedForMs / 60_000);
      void reply.header('retry-after', String(Math.ceil(attempt.lockedForMs / 1000)));
      return loginForm(reply, { next, username, status: 429, error: `Too many failed sign-ins. Try again in ${minutes} minute${minutes === 1 ? '' : 's'}.` });
    }
    const user = username && password ? await ctx.accounts.authenticate(username, password) : undefined;
    if (!user) {
      // The growing delay LoginGuard suggests is for mail programs that retry at once; a browser gains nothing from it.
      attempt.failed();
      request.log.warn({ ip: request.ip }, 'failed admin sign-in');
      // Only a real username is recorded: people do type their password into the username box.
      const known = username !== '' && (await ctx.accounts.exists(username));
      await ctx.services.audit.record(`admin:${known ? username : 'unknown'}`, 'ui sign-in failed', undefined, { ip: request.ip }).catch(() => undefined);
      return loginForm(reply, { next, username, status: 401, error: 'The username or password is not right.' });
    }
    attempt.succeeded();
    await startSession(reply, user);
    await ctx.services.audit.record(`admin:${user.username}`, 'ui sign-in', undefined, { ip: request.ip }).catch(() => undefined);
    return reply.redirect(next, 303);
  });

  app.post('/logout', async (request, reply) => {
    await ctx.sessions.destroy(sessionOf(request));
    void reply.clearCookie(ctx.sessionCookie, { path: '/' });
    return publicPage(reply, 'Signed out', html`<section class="panel narrow"><h1>You are signed out</h1><p><a class="button primary" href="/login">Sign in again</a></p></section>`);
  });

  function setupForm(reply: FastifyReply, token: string, options: { username?: string; problems?: Map<string, string>; status?: number } = {}): FastifyReply {
    const problems = options.problems ?? new Map<string, string>();
    return publicPage(
      reply,
      'Set up Mailgate',
      html`<section class="panel narrow">
  <h1>Create the first admin</h1>
  <p>This link works once. The admin you create here signs in to manage credentials, servers and alerts.</p>
  ${errorSummary(problems, { username: 'Username', password: 'Password', confirm: 'Repeat the password' })}
  <form method="post" action="/setup" class="stack">
    <input type="hidden" name="token" value="${token}">
    ${field({ name: 'username', label: 'Username', value: options.username ?? 'admin', required: true, autocomplete: 'username', error: problems.get('username') })}
    ${field({ name: 'password', label: 'Password', type: 'password', required: true, autocomplete: 'new-password', help: 'At least 12 characters; a passphrase of a few words is easiest to type and hardest to guess.', error: problems.get('password') })}
    ${field({ name: 'confirm', label: 'Repeat the password', type: 'password', required: true, autocomplete: 'new-password', error: problems.get('confirm') })}
    <button type="submit" class="button primary">Create admin and sign in</button>
  </form>
</section>`,
      options.status,
    );
  }

  const setupInvalid = (reply: FastifyReply) =>
    publicPage(reply, 'Setup link not valid', html`<section class="panel narrow"><h1>This setup link is not valid</h1><p>It was used already, it expired (links last 24 hours), or an admin exists. Restart Mailgate for a new link, or <a href="/login">sign in</a>.</p></section>`, 403);

  // The token comes in the query (from the log line) and is the only credential this page needs; it is posted back with the form.
  app.get<{ Querystring: { token?: string } }>('/setup', { config: { publicPage: true } }, async (request, reply) => {
    const token = request.query.token ?? '';
    if (!(await ctx.accounts.setupTokenValid(token))) return setupInvalid(reply);
    return setupForm(reply, token);
  });

  app.post('/setup', { config: { publicPage: true } }, async (request, reply) => {
    const token = formText(request.body, 'token');
    const username = formText(request.body, 'username').trim();
    const password = formText(request.body, 'password');
    if (!(await ctx.accounts.setupTokenValid(token))) return setupInvalid(reply);
    if (password !== formText(request.body, 'confirm')) return setupForm(reply, token, { username, status: 400, problems: new Map([['confirm', 'the two passwords differ']]) });
    try {
      const user = await ctx.accounts.completeSetup(token, username, password);
      await startSession(reply, user);
      await ctx.services.audit.record(`admin:${user.username}`, 'ui setup: first admin created', undefined, {}).catch(() => undefined);
      return reply.redirect('/credentials', 303);
    } catch (err) {
      if (isMailgateError(err) && err.code === 'INPUT_INVALID') return setupForm(reply, token, { username, status: 400, problems: problemsByField((err.details.problems as string[] | undefined) ?? [err.message]) });
      if (isMailgateError(err)) return setupInvalid(reply);
      throw err;
    }
  });

  app.get('/account', async (request, reply) => accountPage(request, reply, ctx));

  app.post('/account/password', async (request, reply) => {
    const session = sessionOf(request);
    const current = formText(request.body, 'current');
    const password = formText(request.body, 'password');
    const problems = new Map<string, string>();
    if (!(await ctx.accounts.authenticate(session.user.username, current))) problems.set('current', 'this is not your current password');
    if (password !== formText(request.body, 'confirm')) problems.set('confirm', 'the two new passwords differ');
    if (problems.size === 0) {
      try {
        await ctx.accounts.setPassword(session.user.username, password);
      } catch (err) {
        if (!isMailgateError(err) || err.code !== 'INPUT_INVALID') throw err;
        for (const [k, v] of problemsByField((err.details.problems as string[] | undefined) ?? [err.message])) problems.set(k, v);
      }
    }
    if (problems.size > 0) return accountPage(request, reply, ctx, problems);
    // setPassword ended every session, this one too: start a fresh one so the admin stays signed in here.
    await startSession(reply, session.user);
    return publicPage(reply, 'Password changed', html`<section class="panel narrow"><h1>Password changed</h1><p>Every other session of ${session.user.username} was signed out.</p><p><a class="button primary" href="/credentials">Continue</a></p></section>`);
  });
}

async function accountPage(request: FastifyRequest, reply: FastifyReply, ctx: WebContext, problems = new Map<string, string>()): Promise<FastifyReply> {
  const session = sessionOf(request);
  const admins = await ctx.accounts.list();
  return ctx.page(request, reply, {
    title: 'Your account',
    section: 'account',
    status: problems.size > 0 ? 400 : 200,
    body: html`<h1>Your account</h1>
<section class="panel">
  <h2>Change your password</h2>
  ${errorSummary(problems, { current: 'Current password', password: 'New password', confirm: 'Repeat the new password' })}
  <form method="post" action="/account/password" class="stack narrow-form">
    ${csrfField(session)}
    <input type="text" name="username" value="${session.user.username}" autocomplete="username" hidden>
    ${field({ name: 'current', label: 'Current password', type: 'password', required: true, autocomplete: 'current-password', error: problems.get('current') })}
    ${field({ name: 'password', label: 'New password', type: 'password', required: true, autocomplete: 'new-password', help: 'At least 12 characters. Changing it signs you out everywhere else.', error: problems.get('password') })}
    ${field({ name: 'confirm', label: 'Repeat the new password', type: 'password', required: true, autocomplete: 'new-password', error: problems.get('confirm') })}
    <button type="submit" class="button primary">Change password</button>
  </form>
</section>
<section class="panel">
  <h2>Admins</h2>
  <p class="help">Add admins on the server with <code>mailgate admin add NAME</code>.</p>
  <div class="table-wrap"><table class="responsive"><thead><tr><th scope="col">Username</th><th scope="col">Created</th><th scope="col">Last sign-in</th></tr></thead>
  <tbody>${admins.map((a) => html`<tr><td data-label="Username">${a.username}</td><td data-label="Created">${a.createdAt.slice(0, 10)}</td><td data-label="Last sign-in">${a.lastLoginAt ? a.lastLoginAt.slice(0, 16).replace('T', ' ') + ' UTC' : '—'}</td></tr>`)}</tbody></table></div>
</section>`,
  });
}
