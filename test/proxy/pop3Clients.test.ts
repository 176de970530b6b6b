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
  // before TLS: STLS offered, USER listed, SASL PLAIN hidden (a loopback client may log in, so SASL is there too)
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
