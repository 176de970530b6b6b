// The IMAP proxy before login, command by command: the grammar it accepts, each refusal with its exact reply, and hostile streams that end only their own session.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CapabilityCache } from '../../src/proxy/imap/capabilities.js';
import { getFreePort } from '../testbed/ports.js';
import { useTestbed } from '../testbed/useTestbed.js';
import { addConnected, login, microsoftCredential } from '../support/credentials.js';
import { RawClient, startImapProxyApp, type ImapProxyApp } from './imapHarness.js';

const bed = useTestbed();
let proxy: ImapProxyApp;
let ca: string;
/** A chosen password with the characters a quoted string must escape. */
const QUOTED_PASSWORD = 'Tr0ub4dor"&\\3 horse';

beforeAll(async () => {
  proxy = await startImapProxyApp(bed, { clientId: 'imap-refusals', loginTimeoutMs: 6000 });
  ca = fs.readFileSync(proxy.certFile, 'utf8');
  const services = proxy.app.services;
  await services.proxyAccounts.add({ name: 'quoted', server: 'dovecot', password: QUOTED_PASSWORD });
  // A server nobody listens on, and a mailbox whose grant will be revoked at the provider.
  const closedPort = await getFreePort();
  expect((await proxy.app.api('POST', '/api/v1/servers', { name: 'gone', protocol: 'imap', host: '127.0.0.1', port: closedPort, security: 'tls', username: 'alice@example.test', auth: { type: 'oauth2', credential: 'alice' } })).status).toBe(201);
  await services.proxyAccounts.add({ name: 'unreachable', server: 'gone', password: 'unreachable-password-1' });
  const bobClient = bed.auth.addClient({ clientId: 'imap-refusals-bob', clientSecret: 'imap-refusals-bob-secret', redirectUris: [`${proxy.app.url}/oauth/callback`] });
  await addConnected(proxy.app, microsoftCredential(bed.auth, bobClient, 'bob', bed.auth.users.bob.email), login(bed.auth.users.bob));
  expect((await proxy.app.api('POST', '/api/v1/servers', { name: 'dovecot-bob', protocol: 'imap', host: '127.0.0.1', port: bed.mail.ports.imaps, security: 'tls', tlsCa: bed.mail.caPem, username: bed.auth.users.bob.email, auth: { type: 'oauth2', credential: 'bob' } })).status).toBe(201);
  await services.proxyAccounts.add({ name: 'bobs-scanner', server: 'dovecot-bob', password: 'bobs-scanner-password-1' });
});
afterAll(async () => proxy?.close());

/** A client over implicit TLS, past the greeting. */
async function connect(): Promise<RawClient> {
  const client = await RawClient.connect(proxy.tlsPort, ca);
  await client.until(/^\* OK .*\r\n/);
  return client;
}

/** Sends one command and returns the lines from it up to its tagged reply. */
async function exchange(client: RawClient, tag: string, command: string | Buffer): Promise<string> {
  const before = client.text.length;
  client.send(typeof command === 'string' ? `${tag} ${command}\r\n` : command);
  await client.until(new RegExp(`(^|\\n)${tag.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} (OK|NO|BAD)[^\r]*\r\n`), 20_000);
  return client.text.slice(before);
}

describe('commands before login', () => {
  it('answers CAPABILITY with the upstream list minus its SASL mechanisms, plus AUTH=PLAIN, SASL-IR, LITERAL+ and ID', async () => {
    const client = await connect();
    const said = await exchange(client, 'c1', 'CAPABILITY');
    expect(said).toMatch(/^\* CAPABILITY IMAP4rev1 .*\r\nc1 OK Capability completed\r\n$/);
    const list = said.split('\r\n')[0]!.split(' ').slice(2);
    expect(list).toEqual(expect.arrayContaining(['IMAP4rev1', 'AUTH=PLAIN', 'SASL-IR', 'LITERAL+', 'ID', 'IDLE', 'ENABLE']));
    expect(list.filter((c) => /^AUTH=/.test(c))).toEqual(['AUTH=PLAIN']);
    expect(list).not.toContain('STARTTLS');
    expect(list).not.toContain('LOGINDISABLED');
    expect(await exchange(client, 'c2', 'NOOP')).toBe('c2 OK NOOP completed\r\n');
    expect(await exchange(client, 'c3', 'ID ("name" "scanner" "version" "1.0")')).toBe('* ID ("name" "Mailgate IMAP proxy")\r\nc3 OK ID completed\r\n');
    expect(await exchange(client, 'c4', 'ID NIL')).toContain('c4 OK ID completed');
    expect(await exchange(client, 'c5', 'STARTTLS')).toBe('c5 BAD TLS is already active\r\n');
    expect(await exchange(client, 'c6', 'SELECT INBOX')).toBe('c6 BAD Log in first: SELECT needs a login (LOGIN or AUTHENTICATE PLAIN)\r\n');
    expect(await exchange(client, 'c7', 'FROBNICATE')).toBe('c7 BAD Unknown command\r\n');
    expect(await exchange(client, 'c8', 'AUTHENTICATE XOAUTH2 abc')).toBe('c8 NO [CANNOT] Unsupported authentication mechanism: this proxy takes PLAIN or LOGIN\r\n');
    client.send('+bad NOOP\r\n');
    await client.until(/\* BAD Invalid tag\r\n$/);
    const bye = await exchange(client, 'c9', 'LOGOUT');
    expect(bye).toBe('* BYE Logging out\r\nc9 OK Logout completed\r\n');
    await client.untilClosed();
  });

  it('tells a client on another machine without TLS LOGINDISABLED and no AUTH=PLAIN, with STARTTLS', async () => {
    const list = await new CapabilityCache(proxy.app.services, proxy.app.services.logger).preLogin({ canStartTls: true, mayLogin: false });
    expect(list.split(' ')).toEqual(expect.arrayContaining(['IMAP4rev1', 'STARTTLS', 'LOGINDISABLED']));
    expect(list).not.toMatch(/AUTH=/);
  });

  it('logs in with a synchronizing literal after the + continuation, and with LITERAL+ without one', async () => {
    const sync = await connect();
    sync.send(`l1 LOGIN {${proxy.account.length}}\r\n`);
    await sync.until(/\+ Ready for literal data\r\n$/);
    sync.send(`${proxy.account} {${proxy.password.length}}\r\n`);
    await sync.until(/\+ Ready for literal data\r\n\+ Ready for literal data\r\n$/);
    sync.send(`${proxy.password}\r\n`);
    expect(await sync.until(/l1 (OK|NO|BAD).*\r\n/, 20_000)).toMatch(/l1 OK \[CAPABILITY IMAP4rev1 [^\]]+\] Logged in\r\n$/);
    expect(await exchange(sync, 'l2', 'SELECT INBOX')).toMatch(/l2 OK \[READ-WRITE\]/);
    sync.close();

    const plus = await connect();
    const said = await exchange(plus, 'p1', Buffer.from(`p1 LOGIN {${proxy.account.length}+}\r\n${proxy.account} {${proxy.password.length}+}\r\n${proxy.password}\r\n`));
    expect(said).not.toContain('+ Ready');
    expect(said).toMatch(/^p1 OK \[CAPABILITY IMAP4rev1 [^\]]+\] Logged in\r\n$/);
    plus.close();
  });

  it('logs in with a quoted password holding " and \\ escaped', async () => {
    const client = await connect();
    const quoted = `"${QUOTED_PASSWORD.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
    expect(await exchange(client, 'q1', `LOGIN "quoted" ${quoted}`)).toMatch(/^q1 OK \[CAPABILITY IMAP4rev1 [^\]]+\] Logged in\r\n$/);
    client.close();
  });

  it('logs in with AUTHENTICATE PLAIN and SASL-IR; "*" cancels one without', async () => {
    const client = await connect();
    client.send('a1 AUTHENTICATE PLAIN\r\n');
    await client.until(/\+ \r\n$/);
    expect(await exchange(client, 'a1', Buffer.from('*\r\n'))).toContain('a1 BAD Authentication cancelled\r\n');
    const plain = Buffer.from(`\0${proxy.account}\0${proxy.password}`).toString('base64');
    expect(await exchange(client, 'a2', `AUTHENTICATE PLAIN ${plain}`)).toMatch(/^a2 OK \[CAPABILITY IMAP4rev1 [^\]]+\] Logged in\r\n$/);
    expect(await exchange(client, 'a3', 'NOOP')).toMatch(/a3 OK/);
    client.close();
  });
});

describe('refusals', () => {
  it('answers a wrong password and an unknown account with the same NO [AUTHENTICATIONFAILED]', async () => {
    const client = await connect();
    expect(await exchange(client, 'w1', `LOGIN ${proxy.account} wrong-password`)).toBe('w1 NO [AUTHENTICATIONFAILED] Invalid credentials\r\n');
    expect(await exchange(client, 'w2', 'LOGIN nobody-here some-password')).toBe('w2 NO [AUTHENTICATIONFAILED] Invalid credentials\r\n');
    const plain = Buffer.from(`\0${proxy.account}\0nope`).toString('base64');
    expect(await exchange(client, 'w3', `AUTHENTICATE PLAIN ${plain}`)).toBe('w3 NO [AUTHENTICATIONFAILED] Invalid credentials\r\n');
    expect(await exchange(client, 'w4', `LOGIN ${proxy.account} ${proxy.password}`)).toMatch(/^w4 OK /);
    client.close();
  });

  it('answers NO [UNAVAILABLE] when the upstream server cannot be reached', async () => {
    const client = await connect();
    expect(await exchange(client, 'u1', 'LOGIN unreachable unreachable-password-1')).toBe('u1 NO [UNAVAILABLE] The mail server cannot be reached just now: try again in a minute\r\n');
    client.close();
  });

  it('says that Mailgate needs a new sign-in when the grant was revoked at the provider', async () => {
    expect(bed.auth.revokeGrants(bed.auth.users.bob.email, { clientId: 'imap-refusals-bob' })).toBeGreaterThan(0);
    const client = await connect();
    expect(await exchange(client, 'r1', 'LOGIN bobs-scanner bobs-scanner-password-1')).toBe('r1 NO [CONTACTADMIN] Mailgate needs a new sign-in for this mailbox: an admin must reconnect credential bob in Mailgate\r\n');
    client.close();
  });
});

describe('hostile input', () => {
  let healthy: RawClient;
  beforeAll(async () => {
    healthy = await connect();
    expect(await exchange(healthy, 'h1', `LOGIN ${proxy.account} ${proxy.password}`)).toMatch(/^h1 OK /);
    expect(await exchange(healthy, 'h2', 'SELECT INBOX')).toMatch(/h2 OK/);
  });
  afterAll(() => healthy?.close());

  it('ends a 1 MB line with BYE and closes it; a logged-in session on the listener keeps working', async () => {
    const client = await connect();
    client.send(`x1 LOGIN ${'a'.repeat(1024 * 1024)}\r\n`);
    expect(await client.untilClosed()).toMatch(/\* BYE Command line too long\r\n$/);
    expect(await exchange(healthy, 'h3', 'NOOP')).toMatch(/h3 OK/);
  });

  it('refuses a literal over 4 KB and ends an oversized LITERAL+ one', async () => {
    const client = await connect();
    expect(await exchange(client, 'x2', 'LOGIN {100000}')).toBe('x2 BAD Literal too large (at most 4096 bytes before login)\r\n');
    client.send('x3 LOGIN {100000+}\r\n');
    expect(await client.untilClosed()).toMatch(/\* BYE Literal too large \(at most 4096 bytes before login\)\r\n$/);
    expect(await exchange(healthy, 'h4', 'NOOP')).toMatch(/h4 OK/);
  });

  it('closes an unterminated literal and a client that says nothing after the login timeout, with BYE', async () => {
    const literal = await connect();
    literal.send('x4 LOGIN {20}\r\n');
    await literal.until(/\+ Ready for literal data\r\n$/);
    literal.send('only-ten-b');
    const silent = await connect();
    expect(await literal.untilClosed(15_000)).toMatch(/\* BYE Autologout: no login in time\r\n$/);
    expect(await silent.untilClosed(15_000)).toMatch(/\* BYE Autologout: no login in time\r\n$/);
    expect(await exchange(healthy, 'h5', 'NOOP')).toMatch(/h5 OK/);
  });

  it('answers random bytes with BAD and closes after ten bad commands', async () => {
    const client = await connect();
    let seed = 42;
    const noise = Buffer.from(
      Buffer.alloc(16 * 1024, 0).map(() => {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        return seed & 0xff;
      }),
    );
    client.send(noise);
    client.send('\r\n'.repeat(20));
    const said = await client.untilClosed();
    expect(said).toMatch(/BAD /);
    expect(said).toMatch(/\* BYE (Too many invalid commands|Command line too long)\r\n$/);
    expect(await exchange(healthy, 'h6', 'NOOP')).toMatch(/h6 OK/);
  });
});

describe('repeated failures', () => {
  it('locks the client address out after five failed logins with NO [UNAVAILABLE] saying how long, also for the right password', async () => {
    // Failures earlier in this file count too (a right password takes back only its own attempt): the lockout comes
    // within five more wrong guesses, each refused as invalid until then.
    const client = await connect();
    let attempts = 0;
    for (;;) {
      attempts += 1;
      const said = await exchange(client, `f${attempts}`, 'LOGIN quoted wrong-guess');
      if (said.includes('[UNAVAILABLE]')) {
        expect(said).toMatch(new RegExp(`^f${attempts} NO \\[UNAVAILABLE\\] Too many failed logins: this account is temporarily locked, try again in \\d+ minutes?\\r\\n$`));
        break;
      }
      expect(said).toBe(`f${attempts} NO [AUTHENTICATIONFAILED] Invalid credentials\r\n`);
      expect(attempts).toBeLessThanOrEqual(5);
    }
    expect(attempts).toBeGreaterThan(1);
    const locked = await exchange(client, 'right', `LOGIN "quoted" "${QUOTED_PASSWORD.replace(/[\\"]/g, (c) => `\\${c}`)}"`);
    expect(locked).toMatch(/^right NO \[UNAVAILABLE\] Too many failed logins: this account is temporarily locked, try again in \d+ minutes?\r\n$/);
    client.close();
    const metrics = await (await fetch(`${proxy.app.url}/metrics`, { headers: { authorization: `Bearer ${proxy.app.adminKey}` } })).text();
    expect(metrics).toMatch(/mailgate_listener_logins_total\{listener="imap-proxy",outcome="locked"\} [1-9]/);
    expect(metrics).toMatch(/mailgate_listener_logins_total\{listener="imap-proxy",outcome="invalid"\} [1-9]/);
    expect(metrics).toMatch(/mailgate_listener_logins_total\{listener="imap-proxy",outcome="upstream_failed"\} [1-9]/);
    expect(metrics).toMatch(/mailgate_listener_logins_total\{listener="imap-proxy",outcome="success"\} [1-9]/);
  });

  it('never writes a password or a token to the log', async () => {
    const logs = proxy.app.logs();
    expect(logs).toContain('IMAP proxy login');
    for (const secret of [proxy.password, QUOTED_PASSWORD, 'bobs-scanner-password-1', 'unreachable-password-1', 'wrong-guess']) expect(logs).not.toContain(secret);
    const token = await proxy.app.services.credentialRepo.accessTokenOf(await proxy.app.services.credentialRepo.get('alice'));
    expect(logs).not.toContain(token!.reveal());
  });
});
