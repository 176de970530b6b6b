// Parses and checks e-mail addresses at the edge: one mailbox, optional display name, no line breaks (header injection).
import { isIP } from 'node:net';

export type AddressResult = { ok: true; address: string; name: string | undefined } | { ok: false; problem: string };

/** Local part and domain per RFC 5321 §4.1.2 in its practical subset; IDN domains are accepted as Unicode. */
const MAILBOX = /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~\u0080-\uFFFF-]{1,64}@[A-Za-z0-9\u0080-\uFFFF](?:[A-Za-z0-9\u0080-\uFFFF-]{0,61}[A-Za-z0-9\u0080-\uFFFF])?(?:\.[A-Za-z0-9\u0080-\uFFFF](?:[A-Za-z0-9\u0080-\uFFFF-]{0,61}[A-Za-z0-9\u0080-\uFFFF])?)+$/;

/** `alerts@example.com` or `Alarm Centre <alerts@example.com>` or `"Doe, Jane" <jane@example.com>`. */
export function parseAddress(text: string): AddressResult {
  if (/[\r\n\0]/.test(text)) return { ok: false, problem: 'contains a line break (header injection is refused)' };
  const trimmed = text.trim();
  const angle = /^(.*?)\s*<([^<>]+)>$/.exec(trimmed);
  const address = (angle ? angle[2]! : trimmed).trim();
  let name = angle ? angle[1]!.trim() : undefined;
  if (name?.startsWith('"') && name.endsWith('"') && name.length >= 2) name = name.slice(1, -1).replace(/\\(.)/g, '$1');
  if (!MAILBOX.test(address) || address.includes('..') || address.startsWith('.') || isIP(address.split('@')[1] ?? '') !== 0) {
    return { ok: false, problem: `expected an e-mail address such as alerts@example.com, got ${JSON.stringify(text.length > 80 ? `${text.slice(0, 77)}...` : text)}` };
  }
  return { ok: true, address, name: name || undefined };
}
