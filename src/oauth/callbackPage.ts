// The small self-contained HTML page a person sees after signing in at the provider (no external assets).
import type { CallbackOutcome } from './authorization.js';

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * The page's headers. It carries the outcome of a sign-in (the account's address, the credential's name): nothing may
 * frame it (clickjacking: `frame-ancestors` for current browsers, X-Frame-Options for old ones), guess its type, cache
 * it, or send its URL (with the code and state) on as a Referer. Its only style is inline, hence `style-src 'unsafe-inline'`.
 */
export const CALLBACK_PAGE_HEADERS = {
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
};

export function renderCallbackPage(outcome: CallbackOutcome): string {
  const ok = outcome.ok;
  const title = ok ? `Connected ${outcome.credential}` : outcome.title;
  const body = ok
    ? `<p>Signed in as <strong>${escape(outcome.signedInAs ?? 'an account the provider did not name')}</strong>. Mailgate keeps the token fresh from now on; you can close this window.</p>` +
      outcome.warnings.map((w) => `<p class="warn"><strong>Warning:</strong> ${escape(w.message)}</p>`).join('')
    : `<p>${escape(outcome.message)}</p>` +
      (outcome.signedInAs ? `<dl><dt>Signed in</dt><dd>${escape(outcome.signedInAs)}</dd><dt>Expected</dt><dd>${escape(outcome.expected ?? '')}</dd></dl><p>Tip: a private (incognito) window starts without the provider's cookies, so you can choose the right account.</p>` : '') +
      `<p class="code">Error code: ${escape(outcome.code)}${outcome.credential ? ` · credential ${escape(outcome.credential)}` : ''}</p>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(title)} · Mailgate</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f5f6f8;color:#1c2330}
main{max-width:36rem;margin:3rem auto;padding:1.5rem 2rem;background:#fff;border-radius:8px;border-top:6px solid ${ok ? '#1b7f3b' : '#b3261e'}}
h1{font-size:1.4rem;margin:.2rem 0 1rem}.warn{background:#fff4ce;padding:.6rem .8rem;border-radius:4px}
dl{display:grid;grid-template-columns:auto 1fr;gap:.2rem 1rem}dt{font-weight:600}.code{color:#555;font-size:.9rem}
</style></head>
<body><main role="main"><h1>${ok ? '✔ ' : '✖ '}${escape(title)}</h1>${body}</main></body></html>`;
}
