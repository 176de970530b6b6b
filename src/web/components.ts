// Small HTML pieces the pages share: form fields with help and errors, status badges, times, buttons that post with the CSRF token.
import { html, raw, type SafeHtml } from './html.js';
import type { Session } from './sessions.js';

/** The hidden CSRF field every form carries. */
export function csrfField(session: Session): SafeHtml {
  return html`<input type="hidden" name="_csrf" value="${session.csrfToken}">`;
}

/** A one-button form (POST), optionally asking for confirmation first (with JavaScript; without, the action still needs the CSRF token). */
export function postButton(session: Session, action: string, label: string, options: { style?: 'primary' | 'danger' | 'secondary'; confirm?: string; hidden?: Record<string, string> } = {}): SafeHtml {
  return html`<form method="post" action="${action}" class="inline"${options.confirm ? html` data-confirm="${options.confirm}"` : ''}>${csrfField(session)}${Object.entries(options.hidden ?? {}).map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`)}<button type="submit" class="button ${options.style ?? 'secondary'}">${label}</button></form>`;
}

/** A badge's colour: each has a text and background pair checked for contrast. */
export type Tone = 'ok' | 'warn' | 'bad' | 'muted' | 'info';

/** The tone of each status word the domain uses (credentials, messages, deliveries, watchers). */
const TONE: Record<string, Tone> = {
  active: 'ok',
  sent: 'ok',
  delivered: 'ok',
  connected: 'ok',
  idle: 'ok',
  polling: 'ok',
  resolved: 'muted',
  pending: 'info',
  queued: 'info',
  sending: 'info',
  starting: 'info',
  connecting: 'info',
  refresh_failing: 'warn',
  retrying: 'warn',
  reconnecting: 'warn',
  needs_reauthorization: 'bad',
  client_secret_invalid: 'bad',
  configuration_error: 'bad',
  failed: 'bad',
  parked: 'bad',
  error: 'bad',
  disabled: 'muted',
  stopped: 'muted',
};

const WORDS: Record<string, string> = {
  needs_reauthorization: 'Needs sign-in',
  client_secret_invalid: 'Client secret refused',
  configuration_error: 'Settings refused',
  refresh_failing: 'Refresh failing',
  pending: 'Not connected',
};

/** A coloured badge that also says the status in words (colour is never the only signal). */
export function badge(tone: Tone, words: string): SafeHtml {
  return html`<span class="badge ${tone}"><span class="dot" aria-hidden="true"></span>${words}</span>`;
}

/** A domain status as a badge: its tone and, unless given, its words. */
export function statusBadge(status: string, words?: string): SafeHtml {
  return badge(TONE[status] ?? 'muted', words ?? WORDS[status] ?? humanize(status));
}

/** needs_reauthorization → "Needs reauthorization" */
export function humanize(code: string): string {
  return code.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
}

/** `text` cut to `max` characters, with an ellipsis when cut (the full text goes in a title attribute where it matters). */
export function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** 515 bytes / 12.3 KB / 4.0 MB */
export function formatBytes(n: number): string {
  return n < 1024 ? `${n} bytes` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1048576).toFixed(1)} MB`;
}

/** "in 42 min" / "3 h ago", relative to now. */
export function relative(iso: string, now = Date.now()): string {
  const ms = Date.parse(iso) - now;
  const abs = Math.abs(ms);
  const unit = abs < 90_000 ? `${Math.round(abs / 1000)} s` : abs < 90 * 60_000 ? `${Math.round(abs / 60_000)} min` : abs < 36 * 3_600_000 ? `${Math.round(abs / 3_600_000)} h` : `${Math.round(abs / 86_400_000)} days`;
  return ms >= 0 ? `in ${unit}` : `${unit} ago`;
}

/** 2026-11-23 14:05 UTC */
export function absolute(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}

/** A time shown both ways: relative in the text, absolute beside it (and machine-readable). */
export function timeCell(iso: string | null | undefined, empty = '—'): SafeHtml {
  if (!iso) return html`<span class="muted">${empty}</span>`;
  return html`<time datetime="${iso}" title="${absolute(iso)}">${relative(iso)}</time> <span class="abs">${absolute(iso)}</span>`;
}

export interface FieldSpec {
  name: string;
  label: string;
  value?: string | undefined;
  type?: 'text' | 'password' | 'email' | 'url' | 'date' | 'number' | 'textarea';
  help?: SafeHtml | string;
  error?: string | undefined;
  required?: boolean;
  placeholder?: string;
  autocomplete?: string;
  /** Extra attributes, e.g. pattern or inputmode (constants only). */
  attributes?: string;
}

/** A labelled input with its help text and error, wired with aria-describedby / aria-invalid. */
export function field(spec: FieldSpec): SafeHtml {
  const id = `f-${spec.name}`;
  const describedBy = [spec.help ? `${id}-help` : '', spec.error ? `${id}-error` : ''].filter(Boolean).join(' ');
  const common = html`id="${id}" name="${spec.name}"${spec.required ? raw(' required') : ''}${describedBy ? html` aria-describedby="${describedBy}"` : ''}${spec.error ? raw(' aria-invalid="true"') : ''}${spec.placeholder ? html` placeholder="${spec.placeholder}"` : ''}${spec.autocomplete ? html` autocomplete="${spec.autocomplete}"` : ''}${spec.attributes ? raw(` ${spec.attributes}`) : ''}`;
  const input =
    spec.type === 'textarea'
      ? html`<textarea ${common} rows="4">${spec.value ?? ''}</textarea>`
      : html`<input type="${spec.type ?? 'text'}" ${common} value="${spec.value ?? ''}">`;
  return html`<div class="field${spec.error ? ' has-error' : ''}">
  <label for="${id}">${spec.label}${spec.required ? '' : html` <span class="optional">(optional)</span>`}</label>
  ${spec.error ? html`<p class="error-text" id="${id}-error"><span class="visually-hidden">Error: </span>${spec.error}</p>` : ''}
  ${input}
  ${spec.help ? html`<p class="help" id="${id}-help">${spec.help}</p>` : ''}
</div>`;
}

/** A labelled <select> with its error and help, described for screen readers as `field` does; `options` are [value, label] pairs. */
export function selectField(name: string, label: string, options: ReadonlyArray<readonly [string, string]>, value: string, error: string | undefined, help?: string | SafeHtml): SafeHtml {
  const id = `f-${name}`;
  const describedBy = [help ? `${id}-help` : '', error ? `${id}-error` : ''].filter(Boolean).join(' ');
  return html`<div class="field${error ? ' has-error' : ''}"><label for="${id}">${label}</label>
  ${error ? html`<p class="error-text" id="${id}-error"><span class="visually-hidden">Error: </span>${error}</p>` : ''}
  <select id="${id}" name="${name}"${describedBy ? html` aria-describedby="${describedBy}"` : ''}${error ? html` aria-invalid="true"` : ''}>
    ${options.map(([v, l]) => html`<option value="${v}"${v === value ? html` selected` : ''}>${l}</option>`)}
  </select>
  ${help ? html`<p class="help" id="${id}-help">${help}</p>` : ''}</div>`;
}

/** Splits "field: problem; field: problem" (a MailgateError INPUT_INVALID message) into a map by field. */
export function problemsByField(problems: readonly string[]): Map<string, string> {
  const byField = new Map<string, string>();
  for (const p of problems) {
    const match = /^([A-Za-z0-9_.]+): (.*)$/s.exec(p);
    const key = match ? match[1]!.split('.')[0]! : '_';
    const text = match ? match[2]! : p;
    byField.set(key, byField.has(key) ? `${byField.get(key)}; ${text}` : text);
  }
  return byField;
}

/** The list of problems at the top of a form, each linking to its field (focus moves here on load). */
export function errorSummary(problems: Map<string, string>, labels: Record<string, string>): SafeHtml {
  if (problems.size === 0) return html``;
  return html`<div class="error-summary" role="alert" tabindex="-1" data-autofocus>
  <h2>There ${problems.size === 1 ? 'is a problem' : `are ${problems.size} problems`}</h2>
  <ul>${[...problems].map(([key, text]) => html`<li>${labels[key] ? html`<a href="#f-${key}">${labels[key]}: ${text}</a>` : html`${key === '_' ? '' : `${key}: `}${text}`}</li>`)}</ul>
</div>`;
}

/** An empty-state panel: what is missing and the action that adds it. */
export function emptyState(title: string, text: string | SafeHtml, action?: SafeHtml): SafeHtml {
  return html`<div class="empty"><h2>${title}</h2><p>${text}</p>${action ?? ''}</div>`;
}
