// Proves the POP3 proxy with real clients through Mailgate to the test bed's Dovecot (XOAUTH2 upstream): Python's poplib, curl and fetchmail, and a large message byte for byte.
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { connectPop3 } from '../../src/inbound/pop3/client.js';
import { tempDir } from '../support/cli.js';
import { obtainTokens } from '../testbed/providerLogin.js';
import { useTestbed } from '../testbed/useTestbed.js';
import { RawPop3, startPop3ProxyBed, type Pop3ProxyBed } from './pop3Setup.js';

const run = promisify(execFile);
const bed = useTestbed();
let proxy: Pop3ProxyBed;
const bob = () => bed.auth.users.bob;
const sha256 = (data: Buffer | string) => crypto.createHash('sha256').update(data).digest('hex');

const message = (subject: string, body = 'hello through the proxy\r\n') =>
  `From: Dana <dana@example.test>\r\nTo: ${bob().email}\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '-')}@example.test>\r\n\r\n${body}`;

beforeAll(async () => {
  proxy = await startPop3ProxyBed(bed);
  await bed.mail.deliver(message('first'), bob().email);
  await bed.mail.deliver(message('second', '.a line that starts with a dot\r\n..two dots\r\n'), bob().email);
}, 60_000);
afterAll(async () => {
  await proxy?.close();
});

/** RETR n straight from Dovecot with a token: what the proxy must hand over unchanged. */
async function directRetrieve(number: number): Promise<Buffer> {
  const pop = await connectPop3({ host: '127.0.0.1', port: bed.mail.ports.pop3s, security: 'tls', tlsCa: bed.mail.caPem });
  try {
    await pop.authXOAuth2(bob().email, (await obtainTokens(bed.auth, { user: bob() })).access_token);
    return await pop.retrieve(number);
  } finally {
    await pop.quit();
  }
}

async function python(script: string, env: Record<string, string>): Promise<string> {
  const { stdout } = await run('python3', ['-c', script], { env: { ...process.env, ...env }, timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

const POPLIB_STLS = `
import hashlib, os, poplib, ssl
ctx = ssl.create_default_context(cafile=os.environ['CA'])
p = poplib.POP3('127.0.0.1', int(os.environ['PORT']), timeout=30)
print('greeting', p.getwelcome().decode())
print('capa-before', sorted(p.capa().keys()))
print('stls', p.stls(ctx).decode())
print('capa-after', sorted(p.capa().keys()))
print('user', p.user(os.environ['USER_NAME']).decode())
print('pass', p.pass_(os.environ['PASSWORD']).decode())
count, size = p.stat()
print('stat', count, size)
for n in range(1, count + 1):
    resp, lines, octets = p.retr(n)
    print('retr', n, hashlib.sha256(b'\\r\\n'.join(lines) + b'\\r\\n').hexdigest())
print('quit', p.quit().decode())
`;

it('serves Python poplib over STLS with USER/PASS: CAPA before and after TLS, STAT and RETR of every message as Dovecot has it', async () => {
  const out = await python(POPLIB_STLS, { CA: proxy.certFile, PORT: String(proxy.stls.address.port), USER_NAME: proxy.accounts.readerStls.name, PASSWORD: proxy.accounts.readerStls.password });
  expect(out).toContain('greeting +OK Mailgate POP3 proxy ready');
  // before TLS: STLS offered and USER listed (SASL PLAIN too: a loopback client may send a password in clear)
  expect(out).toMatch(/capa-before \[.*'STLS'.*\]/);
  expect(out).toMatch(/capa-before \[.*'TOP'.*'UIDL'.*'USER'.*\]/);
  expect(out).not.toMatch(/capa-after \[.*'STLS'.*\]/);
  expect(out).toMatch(/capa-after \[.*'SASL'.*\]/);
  expect(out).toContain('stls +OK Begin TLS negotiation now');
  expect(out).toContain('user +OK Send the password with PASS');
  expect(out).toMatch(/pass \+OK Logged in/);
  const stat = /stat (\d+) (\d+)/.exec(out)!;
  expect(Number(stat[1])).toBeGreaterThanOrEqual(2);
  for (const n of [1, 2]) expect(out).toContain(`retr ${n} ${sha256(await directRetrieve(n))}`);
  expect(out).toMatch(/quit \+OK/);
}, 60_000);

const POPLIB_SSL_PLAIN = `
import base64, hashlib, os, poplib, ssl
ctx = ssl.create_default_context(cafile=os.environ['CA'])
p = poplib.POP3_SSL('127.0.0.1', int(os.environ['PORT']), context=ctx, timeout=30)
plain = base64.b64encode(('\\0' + os.environ['USER_NAME'] + '\\0' + os.environ['PASSWORD']).encode()).decode()
print('auth', p._shortcmd('AUTH PLAIN ' + plain).decode())
count, size = p.stat()
print('stat', count)
resp, lines, octets = p.retr(count)
print('retr', hashlib.sha256(b'\\r\\n'.join(lines) + b'\\r\\n').hexdigest())
print('uidl', len(p.uidl()[1]))
print('quit', p.quit().decode())
`;

it('serves Python poplib over implicit TLS with AUTH PLAIN and an initial response', async () => {
  const out = await python(POPLIB_SSL_PLAIN, { CA: proxy.certFile, PORT: String(proxy.implicit.address.port), USER_NAME: proxy.accounts.reader.name, PASSWORD: proxy.accounts.reader.password });
  expect(out).toMatch(/auth \+OK Logged in/);
  const count = Number(/stat (\d+)/.exec(out)![1]);
  expect(out).toContain(`retr ${sha256(await directRetrieve(count))}`);
  expect(out).toContain(`uidl ${count}`);
  expect(out).toMatch(/quit \+OK/);
}, 60_000);

it('serves curl: pop3:// with --ssl-reqd (STLS) lists, pop3s:// retrieves a message byte for byte', async () => {
  const account = proxy.accounts.readerStls;
  const listed = await run('curl', ['-sS', '--ssl-reqd', '--cacert', proxy.certFile, '-u', `${account.name}:${account.password}`, `pop3://127.0.0.1:${proxy.stls.address.port}/`], { timeout: 30_000 });
  const lines = listed.stdout.trim().split(/\r?\n/);
  expect(lines.length).toBeGreaterThanOrEqual(2);
  expect(lines[0]).toMatch(/^1 \d+$/);
  const reader = proxy.accounts.reader;
  const fetched = await run('curl', ['-sS', '--cacert', proxy.certFile, '-u', `${reader.name}:${reader.password}`, `pop3s://127.0.0.1:${proxy.implicit.address.port}/2`], { timeout: 30_000, encoding: 'buffer' });
  expect(sha256(fetched.stdout)).toBe(sha256(await directRetrieve(2)));
}, 60_000);

it('serves fetchmail from Debian (POP3, implicit TLS, certificate checked against the proxy\'s) delivering to an MDA', async () => {
  const dir = tempDir('mailgate-fetchmail-');
  const out = path.join(dir, 'delivered');
  const rc = path.join(dir, 'fetchmailrc');
  const account = proxy.accounts.reader;
  fs.writeFileSync(
    rc,
    [
      'set no bouncemail',
      `poll 127.0.0.1 with proto POP3 service ${proxy.implicit.address.port}`,
      `  user "${account.name}" there with password "${account.password}" is "tester" here`,
      // fetchmail matches DNS names only, not the certificate's IP address: the name it must carry is given
      `  ssl sslcertck sslcertfile "${proxy.certFile}" sslcommonname "localhost"`,
      '  keep fetchall',
      `  mda "cat >> ${out}"`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const result = await run('fetchmail', ['-f', rc, '--nosyslog', '--pidfile', path.join(dir, 'pid'), '-v'], { env: { ...process.env, HOME: dir, FETCHMAILHOME: dir }, timeout: 60_000 }).catch((err: { stdout: string; stderr: string; code: number }) => err);
  expect(fs.existsSync(out), `${result.stdout}\n${result.stderr}`).toBe(true);
  const delivered = fs.readFileSync(out, 'utf8');
  expect(delivered).toContain('Subject: first');
  expect(delivered).toContain('Subject: second');
  // fetchmail's transcript: the proxy's CAPA and greeting, the certificate accepted, the password never echoed
  expect(result.stderr + result.stdout).toContain('Mailgate POP3 proxy ready');
  expect(result.stderr + result.stdout).not.toContain(account.password);
}, 90_000);

it('relays a 6 MB message byte-identical to a direct RETR from Dovecot, as a stream', async () => {
  const line = `${'x'.repeat(74)}\r\n`;
  const body = `.leading dot\r\n${line.repeat(Math.ceil((6 * 1024 * 1024) / line.length))}`;
  await bed.mail.deliver(message('large', body), bob().email);
  const raw = await RawPop3.connect(proxy.implicit.address.port, { tls: { ca: proxy.certPem } });
  try {
    expect(await raw.command(`USER ${proxy.accounts.reader.name}`)).toMatch(/^\+OK/);
    expect(await raw.command(`PASS ${proxy.accounts.reader.password}`)).toMatch(/^\+OK Logged in/);
    const stat = /\+OK (\d+)/.exec(await raw.command('STAT'))!;
    const number = Number(stat[1]);
    const retr = await raw.command(`RETR ${number}`, true, 60_000);
    expect(retr.length).toBeGreaterThan(6 * 1024 * 1024);
    // undo the wire's dot-stuffing and compare with Mailgate's own client fetching straight from Dovecot
    const wire = retr.slice(retr.indexOf('\r\n') + 2, -'.\r\n'.length).replace(/^\.\./gm, '.');
    const direct = await directRetrieve(number);
    expect(sha256(Buffer.from(wire, 'latin1'))).toBe(sha256(direct));
    expect(direct.toString('latin1')).toContain(body);
    expect(await raw.command('QUIT')).toMatch(/^\+OK/);
  } finally {
    raw.close();
  }
  const metrics = await proxy.app.services.metrics.registry.metrics();
  expect(metrics).toMatch(/mailgate_proxy_bytes_total\{listener="pop3-proxy",direction="down"\} \d{7,}/);
  expect(metrics).toMatch(/mailgate_listener_logins_total\{listener="pop3-proxy",outcome="success"\} [1-9]/);
}, 90_000);

it('hands commands pipelined behind the login to Dovecot in order (RFC 2449 PIPELINING)', async () => {
  const raw = await RawPop3.connect(proxy.implicit.address.port, { tls: { ca: proxy.certPem } });
  const { name, password } = proxy.accounts.reader;
  raw.write(`USER ${name}\r\nPASS ${password}\r\nSTAT\r\nNOOP\r\nQUIT\r\n`);
  await raw.waitClosed();
  expect(raw.text).toMatch(/^\+OK Mailgate POP3 proxy ready\r\n\+OK Send the password with PASS\r\n\+OK Logged in[^\r]*\r\n\+OK \d+ \d+\r\n\+OK\r\n\+OK[^\r]*\r\n$/);
});

it('writes no password or token to the log', async () => {
  const logs = proxy.app.logs();
  expect(logs).toContain('POP3 proxy session logged in');
  for (const secret of [proxy.accounts.reader.password, proxy.accounts.readerStls.password, (await proxy.app.services.tokens.getAccessToken('bob-m365')).accessToken.reveal()]) {
    expect(logs).not.toContain(secret);
  }
});
