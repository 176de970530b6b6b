// Unit proofs of the web UI's building blocks: escaping, password hashing, and field-named problems.
import { describe, expect, it } from 'vitest';
import { problemsByField } from './components.js';
import { html, raw } from './html.js';
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

describe('form problems', () => {
  it('maps "field: problem" messages to their fields and keeps the rest general', () => {
    const map = problemsByField(['clientId: required', 'tenant: required for Microsoft', 'authParams.x: bad', 'something odd']);
    expect(Object.fromEntries(map)).toEqual({ clientId: 'required', tenant: 'required for Microsoft', authParams: 'bad', _: 'something odd' });
  });
});
