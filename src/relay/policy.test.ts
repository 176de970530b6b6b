// The relay's rules apart from the wire: who may log in without TLS, who may submit without a login, which addresses an identity may use, and the per-minute window.
import { describe, expect, it } from 'vitest';
import { allowedText, mayUse, passwordAuthAllowed, RateLimiter, unauthenticatedNetworks, type SendingIdentity } from './policy.js';

describe('passwordAuthAllowed', () => {
  const strict = { allowInsecureAuth: false };
  it('refuses a password login in clear from a LAN or Internet address', () => {
    for (const client of ['192.168.10.20', '10.0.0.5', '203.0.113.9', '2001:db8::1', 'fd00::7']) expect(passwordAuthAllowed(strict, { secure: false, client }), client).toBe(false);
  });
  it('allows it on TLS from anywhere, in clear from loopback, and in clear anywhere with allowInsecureAuth', () => {
    expect(passwordAuthAllowed(strict, { secure: true, client: '203.0.113.9' })).toBe(true);
    for (const client of ['127.0.0.1', '127.0.0.2', '::1']) expect(passwordAuthAllowed(strict, { secure: false, client }), client).toBe(true);
    expect(passwordAuthAllowed({ allowInsecureAuth: true }, { secure: false, client: '192.168.10.20' })).toBe(true);
  });
});

describe('unauthenticatedNetworks', () => {
  it('matches only the configured networks, and nothing when a login is required', () => {
    const lan = unauthenticatedNetworks({ requireAuth: false, allowUnauthenticatedFrom: ['192.168.10.0/24', '10.1.2.3'], sender: 'scanner' });
    expect(['192.168.10.1', '192.168.10.254', '10.1.2.3'].map(lan)).toEqual([true, true, true]);
    expect(['192.168.11.1', '10.1.2.4', '127.0.0.1', '::1'].map(lan)).toEqual([false, false, false, false]);
    expect(unauthenticatedNetworks({ requireAuth: true, allowUnauthenticatedFrom: [], sender: undefined })('192.168.10.1')).toBe(false);
  });
});

describe('mayUse', () => {
  const identity: SendingIdentity = { account: 'scanner', sender: 'alerts', senderFrom: 'alarms@example.com', allowFrom: ['ops@example.org', '@devices.example.com'] };
  it('allows the sender From, allow-listed addresses and domains (case-insensitively), nothing else, never the null sender', () => {
    expect(['alarms@example.com', 'ALARMS@Example.com', 'ops@example.org', 'cam-3@devices.example.com'].map((a) => mayUse(identity, a))).toEqual([true, true, true, true]);
    expect(['ceo@example.com', 'ops@example.org.evil.test', 'x@sub.devices.example.com', ''].map((a) => mayUse(identity, a))).toEqual([false, false, false, false]);
    expect(allowedText(identity)).toBe('alarms@example.com, ops@example.org, @devices.example.com');
  });
});

describe('RateLimiter', () => {
  it('allows perMinute submissions in any minute, per key, and says when the next one fits', () => {
    const limiter = new RateLimiter(3);
    const t0 = 1_000_000;
    expect([0, 10, 20].map((dt) => limiter.take('account:a', t0 + dt).ok)).toEqual([true, true, true]);
    expect(limiter.take('account:a', t0 + 30)).toEqual({ ok: false, retryAfterMs: 59_970 });
    expect(limiter.take('account:b', t0 + 30).ok).toBe(true);
    expect(limiter.take('account:a', t0 + 60_001).ok).toBe(true);
  });
});
