// Sending limits of an SMTP server: the providers' published limits as presets, and the limits that apply.
import { LIMIT_NAMES, type ConfiguredLimits, type LimitPreset, type SendingLimits } from './model.js';

/**
 * The providers' published limits for one mailbox, by the host the server sends to:
 * - Exchange Online SMTP AUTH client submission: 30 messages a minute, 10,000 recipients a day, 3 connections
 *   (learn.microsoft.com, "Exchange Online limits", sending limits);
 * - Google Workspace: 2,000 messages and 10,000 recipients a rolling day; personal Gmail: about 500
 *   (support.google.com/a/answer/166852).
 */
export function presetLimits(host: string, username: string | undefined): LimitPreset | undefined {
  const h = host.toLowerCase();
  if (/(^|\.)(office365\.com|outlook\.com|office\.com)$/.test(h)) {
    return { name: 'microsoft-365', limits: { messagesPerMinute: 30, recipientsPerDay: 10_000, connections: 3 }, source: 'Exchange Online: 30 messages per minute, 10,000 recipients per day, 3 concurrent connections per mailbox' };
  }
  if (/(^|\.)(gmail\.com|googlemail\.com)$/.test(h)) {
    const personal = /@(gmail|googlemail)\.com$/i.test(username ?? '');
    return personal
      ? { name: 'gmail', limits: { messagesPerDay: 500, recipientsPerDay: 500 }, source: 'personal Gmail: about 500 messages and recipients per day' }
      : { name: 'google-workspace', limits: { messagesPerDay: 2_000, recipientsPerDay: 10_000 }, source: 'Google Workspace: 2,000 messages and 10,000 recipients per rolling day' };
  }
  return undefined;
}

/** The limits that apply: the preset for the host, each key overridden by the configured value (null: off). */
export function effectiveLimits(configured: ConfiguredLimits | undefined, preset: LimitPreset | undefined): SendingLimits {
  const result: SendingLimits = { ...(preset?.limits ?? {}) };
  for (const name of LIMIT_NAMES) {
    const value = configured?.[name];
    if (value === null) delete result[name];
    else if (value !== undefined) result[name] = value;
  }
  return result;
}

/** A stored server's limits: as configured (its JSON column), the host's preset, and what applies. */
export function limitsOfServer(row: { host: string; username: string | null; limits: string | null }): { configured: ConfiguredLimits; preset: LimitPreset | undefined; effective: SendingLimits } {
  const configured = row.limits ? (JSON.parse(row.limits) as ConfiguredLimits) : {};
  const preset = presetLimits(row.host, row.username ?? undefined);
  return { configured, preset, effective: effectiveLimits(configured, preset) };
}

/** Parses `KEY=VALUE` pairs (the CLI's `--limit`), e.g. `messagesPerMinute=20`, `recipientsPerDay=none`. */
export function parseLimitPairs(pairs: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    const key = at > 0 ? pair.slice(0, at) : pair;
    const value = at > 0 ? pair.slice(at + 1) : '';
    out[key] = value;
  }
  return out;
}

/** The limits counted in a window (all but `connections`). */
export const COUNTED_LIMITS = LIMIT_NAMES.filter((n): n is Exclude<typeof n, 'connections'> => n !== 'connections');

/** Whether any counted limit is set: a server without one needs no budget. */
export function hasLimits(limits: SendingLimits): boolean {
  return COUNTED_LIMITS.some((n) => limits[n] !== undefined);
}
