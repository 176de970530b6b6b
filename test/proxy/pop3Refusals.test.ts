// Proves every refusal of the POP3 proxy with its exact reply (wrong password, unknown account, password before TLS, lockout, upstream down, sign-in needed), the refresh after a revoked token, and hostile streams beside a healthy session.
import crypto from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { addConnected, login, microsoftCredential } from '../support/credentials.js';
import { getFreePort } from '../testbed/ports.js';
import { useTestbed } from '../testbed/useTestbed.js';
import { listenerConfig, RawPop3, startLanView, startPop3ProxyBed, type Pop3ProxyBed } from './pop3Setup.js';

const bed = useTestbed();
let proxy: Pop3ProxyBed;
const INVALID = '-ERR [AUTH] Invalid credentials\r\n';

beforeAll(async () => {
  proxy = await startPop3ProxyBed(bed, {
    configure: (config) => ({ ...config, proxy: { ...config.proxy, loginTimeoutMs: 2000, login: { maxFailures: 3, lockoutMs: 15 * 60_000 } } }),
  });
  await bed.mail.deliver('From: dana@example.test\r\nSubject: refusals\r\n\r\nhi\r\n', bed.auth.users.bob.email);
}, 60_000);
afterAll(async () => {
  await proxy?.close();
});

async function loggedIn(): Promise<RawPop3> {
  const raw = await RawPop3.connect(proxy.implicit.address.port, { tls: { ca: proxy.certPem } });
  expect(await raw.command(`USER ${proxy.accounts.reader.name}`)).toMatch(/^\+OK/);
  expect(await raw.command(`PASS ${proxy.accounts.reader.password}`)).toMatch(/^\+OK Logged in/);
  return raw;
}

it('answers a wrong password and an unknown account alike, after the guard\'s delay, with -ERR [AUTH] Invalid credentials', async () => {
  const raw = await RawPop3.connect(proxy.implicit.address.port, { tls: { ca: proxy.certPem } });
  await raw.command(`USER ${proxy.accounts.reader.name}`);
  const started = Date.now();
  expect(await raw.command('PASS not the password')).toBe(INVALID);
  expect(Date.now() - started).toBeGreaterThanOrEqual(200);
  const plain = Buffer.from('\0nobody-here\0whatever it is').toString('base64');
  expect(await raw.command(`AUTH PLAIN ${plain}`)).toBe(INVALID);
  // the connection stays usable: the right password still logs in (and clears this address's failures)
  await raw.command(`USER ${proxy.accounts.reader.name}`);
  expect(await raw.command(`PASS ${proxy.accounts.reader.password}`)).toMatch(/^\+OK Logged in/);
  expect(await raw.command('STAT')).toMatch(/^\+OK \d+ \d+/);
  raw.close();
});

it('refuses USER, PASS and AUTH PLAIN before STLS from another machine, hides SASL PLAIN from its CAPA, and logs it in after STLS', async () => {
  const lan = await startLanView(proxy.app, listenerConfig('starttls'));
  try {
    const raw = await RawPop3.connect(lan.port);
    const capa = await raw.command('CAPA', true);
    expect(capa).toContain('\r\nSTLS\r\n');
    expect(capa).toContain('\r\nUSER\r\n');
    expect(capa).not.toContain('SASL');
    const tlsFirst = '-ERR [AUTH] Plaintext authentication is not allowed before TLS: use STLS first\r\n';
    expect(await raw.command(`USER ${proxy.accounts.reader.name}`)).toBe(tlsFirst);
    expect(await raw.command(`PASS ${proxy.accounts.reader.password}`)).toBe(tlsFirst);
    expect(await raw.command('AUTH PLAIN')).toBe(tlsFirst);
    expect(await raw.command('STLS')).toBe('+OK Begin TLS negotiation now\r\n');
    await raw.startTls(proxy.certPem);
    const after = await raw.command('CAPA', true);
    expect(after).toContain('\r\nSASL PLAIN\r\n');
    expect(after).not.toContain('STLS');
    expect(await raw.command('STLS')).toBe('-ERR TLS is already active\r\n');
    expect(await raw.command('AUTH PLAIN')).toBe('+ \r\n');
    expect(await raw.command('*')).toBe('-ERR [AUTH] Authentication cancelled\r\n');
    expect(await raw.command('AUTH PLAIN')).toBe('+ \r\n');
    expect(await raw.command(Buffer.from(`\0${proxy.accounts.reader.name}\0${proxy.accounts.reader.password}`).toString('base64'))).toMatch(/^\+OK Logged in/);
    expect(await raw.command('UIDL', true)).toMatch(/^\+OK/);
    raw.close();
  } finally {
    await lan.stop();
  }
});

it('on a listener without TLS refuses passwords from other machines unless allowInsecureAuth is set', async () => {
  const strict = await startLanView(proxy.app, listenerConfig('none'), '192.0.2.30');
  const lax = await startLanView(proxy.app, listenerConfig('none', { allowInsecureAuth: true }), '192.0.2.31');
  try {
    const refused = await RawPop3.connect(strict.port);
    expect(await refused.command('STLS')).toBe('-ERR STLS is not available on this listener\r\n');
    expect(await refused.command(`USER ${proxy.accounts.reader.name}`)).toBe(
      '-ERR [AUTH] Plaintext authentication is not allowed from this address on this listener without TLS: connect to a TLS listener (or an admin sets allowInsecureAuth)\r\n',
    );
    refused.close();
    const allowed = await RawPop3.connect(lax.port);
    await allowed.command(`USER ${proxy.accounts.reader.name}`);
    expect(await allowed.command(`PASS ${proxy.accounts.reader.password}`)).toMatch(/^\+OK Logged in/);
    allowed.close();
  } finally {
    await strict.stop();
    await lax.stop();
  }
});

it('closes a connection after three failed logins and then answers the address with the lockout and its wait', async () => {
  const lan = await startLanView(proxy.app, listenerConfig('none', { allowInsecureAuth: true }), '192.0.2.20');
  try {
    const raw = await RawPop3.connect(lan.port);
    for (let i = 0; i < 3; i++) {
      await raw.command(`USER ${proxy.accounts.reader.name}`);
      await raw.command(`PASS wrong guess ${i}`);
    }
    await raw.waitClosed();
    expect(raw.text).toContain(`${INVALID}-ERR [AUTH] Too many failed logins on this connection: closing it\r\n`);
    const again = await RawPop3.connect(lan.port);
    await again.command(`USER ${proxy.accounts.reader.name}`);
    // locked: refused at once, even with the right password
    expect(await again.command(`PASS ${proxy.accounts.reader.password}`)).toBe('-ERR [SYS/TEMP] Too many failed logins: temporarily locked, try again in 15 minutes\r\n');
    again.close();
    const metrics = await proxy.app.services.metrics.registry.metrics();
    expect(metrics).toMatch(/mailgate_listener_logins_total\{listener="pop3-proxy",outcome="locked"\} 1/);
  } finally {
    await lan.stop();
  }
}, 30_000);

it('says -ERR [SYS/TEMP] when the upstream server cannot be reached, and -ERR [SYS/PERM] naming the credential when it needs a new sign-in', async () => {
  const { app } = proxy;
  const closedPort = await getFreePort();
  const servers = [
    { name: 'down-pop3', port: closedPort, credential: 'bob-m365' },
    { name: 'unsigned-pop3', port: bed.mail.ports.pop3s, credential: 'never-connected' },
  ];
  expect((await app.api('POST', '/api/v1/credentials', microsoftCredential(bed.auth, proxy.client, 'never-connected', bed.auth.users.bob.email))).status).toBe(201);
  for (const s of servers) {
    const created = await app.api('POST', '/api/v1/servers', { name: s.name, protocol: 'pop3', host: '127.0.0.1', port: s.port, security: 'tls', tlsCa: bed.mail.caPem, username: bed.auth.users.bob.email, auth: { type: 'oauth2', credential: s.credential } });
    expect(created.status, created.text).toBe(201);
    await app.services.proxyAccounts.add({ name: `via-${s.name}`, server: s.name, password: 'a long enough password' });
  }
  const raw = await RawPop3.connect(proxy.implicit.address.port, { tls: { ca: proxy.certPem } });
  await raw.command('USER via-down-pop3');
  expect(await raw.command('PASS a long enough password')).toBe('-ERR [SYS/TEMP] The mail server cannot be reached just now: try again in a minute\r\n');
  await raw.command('USER via-unsigned-pop3');
  expect(await raw.command('PASS a long enough password')).toBe('-ERR [SYS/PERM] Mailgate needs a new sign-in for this mailbox: an admin must reconnect credential never-connected in Mailgate\r\n');
  raw.close();
  expect(app.logs()).toContain('POP3 proxy: upstream login failed');
});

it('refreshes once when Dovecot refuses a token Mailgate still thinks valid, and the client\'s login still succeeds', async () => {
  // Tokens of this client live 2 s at the provider; Mailgate is then told the one it holds lasts an hour, so it presents
  // a token the provider no longer accepts (what a token revoked at the provider looks like upstream). Revoking an
  // access token at this provider revokes its whole grant, so that way would only prove the sign-in case again.
  const { app } = proxy;
  const services = app.services;
  const alice = bed.auth.users.alice;
  const shortClient = bed.auth.addClient({ clientId: 'pop3-proxy-short', clientSecret: 'pop3-proxy-short-secret', redirectUris: [`${app.url}/oauth/callback`], accessTokenTtl: 2 });
  await addConnected(app, microsoftCredential(bed.auth, shortClient, 'alice-short', alice.email), login(alice));
  const created = await app.api('POST', '/api/v1/servers', { name: 'alice-short-pop3', protocol: 'pop3', host: '127.0.0.1', port: bed.mail.ports.pop3s, security: 'tls', tlsCa: bed.mail.caPem, username: alice.email, auth: { type: 'oauth2', credential: 'alice-short' } });
  expect(created.status, created.text).toBe(201);
  await services.proxyAccounts.add({ name: 'alice-reader', server: 'alice-short-pop3', password: 'alice reader password' });
  const stale = (await services.credentialRepo.accessTokenOf(await services.credentialRepo.get('alice-short')))!.reveal();
  await new Promise((resolve) => setTimeout(resolve, 3000));
  await services.store.db.updateTable('credentials').set({ expires_at: new Date(Date.now() + 3_600_000).toISOString() }).where('name', '=', 'alice-short').execute();
  services.tokens.forget('alice-short');
  const refreshesBefore = services.tokens.refreshCount;

  const raw = await RawPop3.connect(proxy.implicit.address.port, { tls: { ca: proxy.certPem } });
  await raw.command('USER alice-reader');
  expect(await raw.command('PASS alice reader password')).toMatch(/^\+OK Logged in/);
  expect(await raw.command('STAT')).toMatch(/^\+OK \d+/);
  raw.close();
  expect(services.tokens.refreshCount - refreshesBefore).toBe(1);
  expect(app.logs()).toContain('POP3 server refused the token: refreshing once and retrying');
  expect(app.logs()).not.toContain(stale);
}, 30_000);

it('answers hostile streams (1 MB line, binary garbage, unknown commands, silence) with -ERR and a close while a logged-in session keeps working', async () => {
  const healthy = await loggedIn();
  const port = proxy.stls.address.port;

  const longLine = await RawPop3.connect(port);
  longLine.write(Buffer.alloc(1024 * 1024, 0x41));
  await longLine.waitClosed();
  expect(longLine.text).toContain('-ERR Line too long: closing the connection\r\n');
  expect(await healthy.command('NOOP')).toBe('+OK\r\n');

  const garbage = await RawPop3.connect(port);
  garbage.write(Buffer.concat([crypto.randomBytes(4096), Buffer.from('\r\n')]));
  await garbage.waitClosed();
  expect(garbage.text).toMatch(/-ERR (Binary data is not a POP3 command|Line too long): closing the connection\r\n/);

  const chatter = await RawPop3.connect(port);
  for (let i = 0; i < 9; i++) expect(await chatter.command(`XCMD${i}`)).toBe('-ERR Unknown command\r\n');
  expect(await chatter.command('RETR 1')).toBe('-ERR RETR needs a login first (USER/PASS or AUTH PLAIN)\r\n');
  chatter.write('XCMD9\r\n');
  await chatter.waitClosed();
  expect(chatter.text).toContain('-ERR Unknown command\r\n-ERR Too many invalid commands: closing the connection\r\n');

  // loginTimeoutMs is 2 s in this file
  const silent = await RawPop3.connect(port);
  await silent.waitClosed(8000);
  expect(silent.text).toContain('-ERR Disconnected: no login within 2 seconds\r\n');

  expect(await healthy.command('LIST', true)).toMatch(/^\+OK[^\r]*\r\n(\d+ \d+\r\n)+\.\r\n$/);
  expect(await healthy.command('QUIT')).toMatch(/^\+OK/);
  healthy.close();
}, 30_000);

it('closes a client that keeps talking but never logs in, five login timeouts after it connected', async () => {
  // loginTimeoutMs is 2 s in this file: CAPA every 300 ms keeps the line busy, the 10 s deadline still ends it.
  const chattering = await RawPop3.connect(proxy.stls.address.port);
  const capa = setInterval(() => {
    if (!chattering.closed) chattering.write('CAPA\r\n');
  }, 300);
  try {
    await chattering.waitClosed(15_000);
  } finally {
    clearInterval(capa);
  }
  expect(chattering.text).toContain('+OK Capability list follows');
  expect(chattering.text).toContain('-ERR Disconnected: no login within 10 seconds of connecting\r\n');
}, 20_000);

it('keeps a client waiting silently while the upstream login takes longer than the login timeout (a server 400 ms away), and logs it in', async () => {
  // A TCP relay that holds every chunk 400 ms each way in front of the real Dovecot: the upstream login (TLS, greeting,
  // CAPA, AUTH) takes several seconds, longer than this file's 2 s login timeout, while the client only waits.
  const relay = net.createServer((inbound) => {
    const outbound = net.connect(bed.mail.ports.pop3s, '127.0.0.1');
    const hold = (from: net.Socket, to: net.Socket) => from.on('data', (chunk: Buffer) => setTimeout(() => to.write(chunk), 400));
    hold(inbound, outbound);
    hold(outbound, inbound);
    for (const socket of [inbound, outbound]) socket.on('error', () => undefined).on('close', () => setTimeout(() => (inbound.destroy(), outbound.destroy()), 400));
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', () => resolve()));
  try {
    const created = await proxy.app.api('POST', '/api/v1/servers', { name: 'bob-pop3s-far', protocol: 'pop3', host: '127.0.0.1', port: (relay.address() as net.AddressInfo).port, security: 'tls', tlsCa: bed.mail.caPem, username: bed.auth.users.bob.email, auth: { type: 'oauth2', credential: 'bob-m365' } });
    expect(created.status, created.text).toBe(201);
    await proxy.app.services.proxyAccounts.add({ name: 'reader-far', server: 'bob-pop3s-far', password: 'reader-far-password-1' });
    const raw = await RawPop3.connect(proxy.implicit.address.port, { tls: { ca: proxy.certPem } });
    expect(await raw.command('USER reader-far')).toMatch(/^\+OK/);
    const started = Date.now();
    expect(await raw.command('PASS reader-far-password-1', false, 15_000)).toMatch(/^\+OK Logged in/);
    expect(Date.now() - started).toBeGreaterThan(2000); // it really was longer than the login timeout
    expect(await raw.command('STAT', false, 15_000)).toMatch(/^\+OK \d+ \d+/);
    raw.close();
  } finally {
    relay.close();
  }
}, 40_000);

it('answers QUIT before login with +OK and closes', async () => {
  const raw = await RawPop3.connect(proxy.stls.address.port);
  expect(await raw.command('QUIT')).toBe('+OK Bye\r\n');
  await raw.waitClosed();
});
