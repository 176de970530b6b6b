// The page shell: header and navigation, the re-authorization banner shown on every page, the flash message, and the main content.
import type { FastifyReply } from 'fastify';
import type { CredentialStatus } from '../credentials/model.js';
import { assetUrl } from './assets.js';
import { csrfField } from './components.js';
import type { PageContent, Section } from './context.js';
import { html, type SafeHtml } from './html.js';
import type { Flash, Session } from './sessions.js';

const NAV: ReadonlyArray<{ section: Section; href: string; label: string }> = [
  { section: 'overview', href: '/overview', label: 'Overview' },
  { section: 'credentials', href: '/credentials', label: 'Credentials' },
  { section: 'servers', href: '/servers', label: 'Servers & senders' },
  { section: 'outbox', href: '/outbox', label: 'Outbox' },
  { section: 'inbound', href: '/inbound', label: 'Inbound' },
  { section: 'relay', href: '/relay', label: 'Relay & proxies' },
  { section: 'alerts', href: '/alerts', label: 'Alerts' },
  { section: 'apikeys', href: '/apikeys', label: 'API keys' },
  { section: 'audit', href: '/audit', label: 'Audit log' },
];

export interface LayoutInput {
  title: string;
  section: Section | undefined;
  session: Session | undefined;
  body: SafeHtml;
  flash?: Flash | undefined;
  /** Credentials that need a person now: shown as a banner with the link that fixes each. */
  urgent?: readonly UrgentCredential[];
  alertCount?: number;
}

export function layout(input: LayoutInput): SafeHtml {
  const { session } = input;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${input.title} · Mailgate</title>
<link rel="icon" href="${assetUrl('favicon.svg')}" type="image/svg+xml">
<link rel="stylesheet" href="${assetUrl('mailgate.css')}">
<script src="${assetUrl('mailgate.js')}" defer></script>
</head>
<body>
<a class="skip-link" href="#main">Skip to content</a>
<header class="topbar">
  <a class="brand" href="/"><img src="${assetUrl('favicon.svg')}" alt="" width="24" height="24"> Mailgate</a>
  ${session
    ? html`<nav aria-label="Main">
    <ul>${NAV.map((item) => html`<li><a href="${item.href}"${item.section === input.section ? html` aria-current="page"` : ''}>${item.label}${item.section === 'alerts' && input.alertCount ? html` <span class="count" aria-label="${input.alertCount} active">${input.alertCount}</span>` : ''}</a></li>`)}</ul>
  </nav>
  <div class="account">
    <a href="/account"${input.section === 'account' ? html` aria-current="page"` : ''}>${session.user.username}</a>
    <form method="post" action="/logout" class="inline">${csrfField(session)}<button type="submit" class="link">Sign out</button></form>
  </div>`
    : ''}
</header>
${input.urgent && input.urgent.length > 0 ? banner(input.urgent) : ''}
<main id="main" tabindex="-1">
${input.flash ? flashBox(input.flash) : ''}
${input.body}
</main>
<footer class="footer">Mailgate · OAuth2 mail gateway</footer>
</body>
</html>`;
}

/** The two states only a person can fix: sign in again, or paste a new client secret. */
export const URGENT_STATUSES = ['needs_reauthorization', 'client_secret_invalid'] as const satisfies readonly CredentialStatus[];
export interface UrgentCredential {
  name: string;
  status: CredentialStatus;
}

function banner(urgent: readonly UrgentCredential[]): SafeHtml {
  return html`<section class="banner" role="alert" aria-label="Needs attention">
  ${urgent.map((c) => {
    const { name } = c;
    const href = c.status === 'needs_reauthorization' ? `/credentials/${encodeURIComponent(name)}/connect` : `/credentials/${encodeURIComponent(name)}/edit`;
    const text = c.status === 'needs_reauthorization' ? html`Credential <strong>${name}</strong> needs someone to sign in again. Mail through it fails until then.` : html`Credential <strong>${name}</strong>: the provider refuses its client secret. Paste a new one.`;
    const action = c.status === 'needs_reauthorization' ? `Reconnect ${name}` : `Update the secret of ${name}`;
    return html`<p><span class="banner-icon" aria-hidden="true">!</span> <span class="banner-text">${text}</span> <a class="button primary small" href="${href}">${action}</a></p>`;
  })}
</section>`;
}

function flashBox(flash: Flash): SafeHtml {
  return html`<div class="flash ${flash.kind}" role="${flash.kind === 'error' ? 'alert' : 'status'}" tabindex="-1" data-autofocus>
  <p class="flash-title">${flash.title}</p>
  ${flash.message ? html`<p>${flash.message}</p>` : ''}
</div>`;
}

/** Sends a rendered page with its status as HTML. */
export function sendPage(reply: FastifyReply, content: Pick<PageContent, 'status'>, markup: string): FastifyReply {
  return reply.status(content.status ?? 200).type('text/html; charset=utf-8').send(markup);
}

/** A page outside the session (sign-in, errors): same layout, no navigation. */
export function publicPage(reply: FastifyReply, title: string, body: SafeHtml, status = 200): FastifyReply {
  return sendPage(reply, { status }, layout({ title, section: undefined, session: undefined, body }).text);
}
