// Unit proofs of the web UI's building blocks: escaping, password hashing, the sign-in throttle, and field-named problems.
import { describe, expect, it } from 'vitest';
import { problemsByField } from './components.js';
import { html, raw } from './html.js';
import { LoginThrottle } from '../accounts/loginThrottle.js';
import { hashPassword, passwordProblem, verifyPassword } from '../accounts/passwords.js';

describe('html templates', () => {
  it('escapes every interpolated value, in text and in attributes, unless it is markup built the same way', () => {
    const hostile = `"><script>alert('x')</script>&`;
    expect(html`<p title="${hostile}">${hostile}</p>`.text).toBe('<p title="&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;">&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;</p>');
    expect(html`<ul>${['a<', 'b'].map((x) => html`<li>${x}</li>`)}</ul>`.text).toBe('<ul><li>a&lt;</li><li>b</li></ul>');
    expect(html`${raw('<br>')}${null}${undefined}${false}${0}`.text).toBe('<br>0');
  });
});

describe('admin passwords', () => {
  it('verifies the right password only, with a fresh salt per hash', async () => {
    const a = await hashPassword('correct horse battery staple');
    const b = await hashPassword('correct horse battery staple');
    expect(a).toMatch(/^scrypt\$32768\$8\$1\$[\w-]{22}\$[\w-]{43}$/);
    expect(a).not.toBe(b);
    await expect(verifyPassword('correct horse battery staple', a)).resolves.toBe(true);
    await expect(verifyPassword('correct horse battery stapl', a)).resolves.toBe(false);
    await expect(verifyPassword('anything', 'md5$garbage')).resolves.toBe(false);
  });

  it('refuses short passwords and the username as password, saying what to do', () => {
    expect(passwordProblem('short', 'admin')).toContain('at least 12 characters');
    expect(passwordProblem('Administrator', 'administrator')).toContain('must not be the username');
    expect(passwordProblem('a long passphrase here', 'admin')).toBeUndefined();
  });
});

describe('sign-in throttle', () => {
  it('locks a key after five failures in the window, unlocks when they age out, and caps the keys it remembers', () => {
    const throttle = new LoginThrottle({ maxFailures: 5, windowMs: 60_000, maxKeys: 3 });
    const t0 = 1_000_000;
    for (let i = 0; i < 4; i++) throttle.recordFailure(['ip:1', 'user:admin'], t0 + i);
    expect(throttle.retryAfterMs(['ip:1'], t0 + 10)).toBe(0);
    throttle.recordFailure(['ip:1', 'user:admin'], t0 + 4);
    expect(throttle.retryAfterMs(['ip:1'], t0 + 10)).toBe(60_000 - 10);
    expect(throttle.retryAfterMs(['ip:2', 'user:admin'], t0 + 10)).toBeGreaterThan(0);
    expect(throttle.retryAfterMs(['ip:1'], t0 + 60_001)).toBe(0);
    throttle.recordSuccess('user:admin');
    expect(throttle.retryAfterMs(['user:admin'], t0 + 10)).toBe(0);
    for (const key of ['a', 'b', 'c', 'd']) throttle.recordFailure([key], t0);
    for (let i = 0; i < 5; i++) throttle.recordFailure(['e'], t0);
    // Oldest keys were dropped: "ip:1" is forgotten, "e" is locked.
    expect(throttle.retryAfterMs(['ip:1'], t0 + 10)).toBe(0);
    expect(throttle.retryAfterMs(['e'], t0 + 10)).toBeGreaterThan(0);
  });
});

describe('form problems', () => {
  it('maps "field: problem" messages to their fields and keeps the rest general', () => {
    const map = problemsByField(['clientId: required', 'tenant: required for Microsoft', 'authParams.x: bad', 'something odd']);
    expect(Object.fromEntries(map)).toEqual({ clientId: 'required', tenant: 'required for Microsoft', authParams: 'bad', _: 'something odd' });
  });
});
