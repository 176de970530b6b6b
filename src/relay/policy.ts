// The relay's decisions, apart from the wire: may this client log in without TLS, may it submit without a login, which addresses may it use, and how many messages a minute.
import type { RelayListenerConfig } from '../config/load.js';
import { addressAllowed } from '../accounts/model.js';
import { isLoopback, networkMatcher } from '../listeners/connectionLimits.js';

/**
 * Password logins travel in clear before TLS: allowed only on a TLS connection, from a loopback client (the bytes
 * never leave the machine), or where the listener says so for LAN devices that cannot do TLS (allowInsecureAuth).
 * @see https://www.rfc-editor.org/rfc/rfc4954#section-4 (538 when encryption is required for the mechanism)
 */
export function passwordAuthAllowed(listener: Pick<RelayListenerConfig, 'allowInsecureAuth'>, connection: { secure: boolean; client: string }): boolean {
  return connection.secure || listener.allowInsecureAuth || isLoopback(connection.client);
}

/** Who a transaction sends as: a relay account, or the listener's sender for an allowed unauthenticated network. */
export interface SendingIdentity {
  /** The relay account's name, or `unauthenticated`. */
  account: string;
  sender: string;
  /** The sender's From address (bare). */
  senderFrom: string;
  allowFrom: readonly string[];
}

/** A matcher for the networks that may submit without a login on this listener (none: every submission needs one). */
export function unauthenticatedNetworks(listener: Pick<RelayListenerConfig, 'requireAuth' | 'allowUnauthenticatedFrom' | 'sender'>): (client: string) => boolean {
  if (listener.requireAuth || listener.allowUnauthenticatedFrom.length === 0 || !listener.sender) return () => false;
  return networkMatcher(listener.allowUnauthenticatedFrom);
}

/** Whether the identity may use `address` (envelope sender or a From mailbox). */
export function mayUse(identity: SendingIdentity, address: string): boolean {
  return address !== '' && addressAllowed(address, identity.senderFrom, identity.allowFrom);
}

/** What the identity may send as, for a refusal that tells the person what to change. */
export function allowedText(identity: SendingIdentity): string {
  const all = [identity.senderFrom, ...identity.allowFrom];
  const shown = all.slice(0, 8).join(', ');
  return all.length > 8 ? `${shown} and ${all.length - 8} more` : shown;
}

/**
 * Messages per minute per key (an account, or `client:ADDRESS` when unauthenticated): a sliding window of the last
 * minute's submissions. Memory stays bounded: keys idle for a minute are dropped as the map grows.
 */
export class RateLimiter {
  readonly #stamps = new Map<string, number[]>();

  constructor(
    private readonly perMinute: number,
    private readonly windowMs = 60_000,
  ) {}

  /** Counts one submission for `key` if the window has room; otherwise how long until it has (ms). */
  take(key: string, now = Date.now()): { ok: true } | { ok: false; retryAfterMs: number } {
    const since = now - this.windowMs;
    let stamps = this.#stamps.get(key);
    if (!stamps) {
      if (this.#stamps.size >= 10_000) this.#sweep(since);
      stamps = [];
      this.#stamps.set(key, stamps);
    }
    let expired = 0;
    while (expired < stamps.length && stamps[expired]! <= since) expired++;
    if (expired > 0) stamps.splice(0, expired);
    if (stamps.length >= this.perMinute) return { ok: false, retryAfterMs: stamps[0]! + this.windowMs - now };
    stamps.push(now);
    return { ok: true };
  }

  #sweep(since: number): void {
    for (const [key, stamps] of this.#stamps) if ((stamps[stamps.length - 1] ?? 0) <= since) this.#stamps.delete(key);
  }
}
