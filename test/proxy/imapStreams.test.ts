// After login the IMAP proxy is a pipe: a 20 MB message arrives byte-identical, IDLE sees new mail, and a token the server refuses is refreshed once without the client noticing.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { obtainTokens } from '../testbed/providerLogin.js';
import { useTestbed } from '../testbed/useTestbed.js';
import { addConnected, login, microsoftCredential } from '../support/credentials.js';
import { python, RawClient, startImapProxyApp, type ImapProxyApp } from './imapHarness.js';

const bed = useTestbed();
let proxy: ImapProxyApp;
let ca: string;

beforeAll(async () => {
  proxy = await startImapProxyApp(bed, { clientId: 'imap-streams' });
  ca = fs.readFileSync(proxy.certFile, 'utf8');
});
afterAll(async () => proxy?.close());

async function loggedIn(): Promise<RawClient> {
  const client = await RawClient.connect(proxy.tlsPort, ca);
  await client.until(/^\* OK .*\r\n/);
  client.send(`l1 LOGIN ${proxy.account} ${proxy.password}\r\nl2 SELECT INBOX\r\n`);
  await client.until(/l2 OK .*\r\n/, 20_000);
  return client;
}

/** Fetches the message with this subject and prints its size and SHA-256: through the proxy or straight from Dovecot with a token. */
const FETCH_HASH = `
import imaplib, ssl, os, hashlib
if os.environ['MODE'] == 'proxy':
    M = imaplib.IMAP4_SSL('127.0.0.1', int(os.environ['PORT']), ssl_context=ssl.create_default_context(cafile=os.environ['CA']))
    M.login(os.environ['USER'], os.environ['PASS'])
else:
    M = imaplib.IMAP4_SSL('127.0.0.1', int(os.environ['PORT']), ssl_context=ssl.create_default_context(cadata=os.environ['CADATA']))
    M.authenticate('XOAUTH2', lambda _: ('user=' + os.environ['USER'] + '\\x01auth=Bearer ' + os.environ['TOKEN'] + '\\x01\\x01').encode())
M.select('INBOX', readonly=True)
typ, data = M.search(None, 'SUBJECT', os.environ['SUBJECT'])
num = data[0].split()[0]
typ, data = M.fetch(num, '(BODY.PEEK[])')
body = data[0][1]
print(len(body), hashlib.sha256(body).hexdigest())
M.logout()
`;

describe('relaying', () => {
  it('delivers a 20 MB message byte-identical to a direct fetch from Dovecot, counted in the proxied bytes', async () => {
    const lines = randomBytes(15 * 1024 * 1024).toString('base64').match(/.{1,76}/g)!;
    const raw = ['From: scanner@example.test', `To: ${proxy.mailbox}`, 'Subject: big-scan', 'Message-ID: <big-scan@example.test>', 'Content-Type: application/octet-stream', 'Content-Transfer-Encoding: base64', '', ...lines, ''].join('\r\n');
    expect(raw.length).toBeGreaterThan(20 * 1024 * 1024);
    await bed.mail.deliver(raw, proxy.mailbox);
    const tokens = await obtainTokens(bed.auth, { user: login(bed.auth.users.alice) });
    const [viaProxy, direct] = await Promise.all([
      python(FETCH_HASH, { MODE: 'proxy', PORT: String(proxy.tlsPort), CA: proxy.certFile, USER: proxy.account, PASS: proxy.password, SUBJECT: 'big-scan' }, 120_000),
      python(FETCH_HASH, { MODE: 'direct', PORT: String(bed.mail.ports.imaps), CADATA: bed.mail.caPem, USER: proxy.mailbox, TOKEN: tokens.access_token, SUBJECT: 'big-scan' }, 120_000),
    ]);
    const [size] = viaProxy.trim().split(' ');
    expect(Number(size)).toBeGreaterThan(20 * 1024 * 1024);
    expect(viaProxy.trim()).toBe(direct.trim());
    const metrics = await (await fetch(`${proxy.app.url}/metrics`, { headers: { authorization: `Bearer ${proxy.app.adminKey}` } })).text();
    const down = Number(/mailgate_proxy_bytes_total\{listener="imap-proxy",direction="down"\} (\d+)/.exec(metrics)?.[1]);
    expect(down).toBeGreaterThan(20 * 1024 * 1024);
  }, 120_000);

  it('passes IDLE through: a message delivered while idling is announced as EXISTS', async () => {
    const client = await loggedIn();
    const exists = Number(/\* (\d+) EXISTS/.exec(client.text)![1]);
    client.send('i1 IDLE\r\n');
    await client.until(/\+ idling\r\n$/);
    await bed.mail.deliver(['From: panel@example.test', `To: ${proxy.mailbox}`, 'Subject: while idling', '', 'New.', ''].join('\r\n'), proxy.mailbox);
    await client.until(new RegExp(`\\* ${exists + 1} EXISTS\\r\\n`), 20_000);
    client.send('DONE\r\n');
    await client.until(/i1 OK .*\r\n/);
    client.close();
  });

  it('relays a command pipelined right behind LOGIN to the server', async () => {
    const client = await RawClient.connect(proxy.tlsPort, ca);
    await client.until(/^\* OK .*\r\n/);
    client.send(`p1 LOGIN ${proxy.account} ${proxy.password}\r\np2 STATUS INBOX (MESSAGES)\r\np3 LOGOUT\r\n`);
    const said = await client.untilClosed(20_000);
    expect(said).toMatch(/p1 OK \[CAPABILITY [^\]]+\] Logged in\r\n\* STATUS INBOX \(MESSAGES \d+\)\r\np2 OK .*\r\n\* BYE .*\r\np3 OK .*\r\n$/);
  });
});

describe('upstream token refused', () => {
  it('refreshes once when the server refuses a token Mailgate still thinks valid, and the client login succeeds', async () => {
    // Tokens of this client live 2 s at the provider; Mailgate is then told the one it holds lasts an hour, so it
    // presents a token the provider no longer accepts (what a token revoked at the provider looks like upstream).
    const shortClient = bed.auth.addClient({ clientId: 'imap-streams-short', clientSecret: 'imap-streams-short-secret', redirectUris: [`${proxy.app.url}/oauth/callback`], accessTokenTtl: 2 });
    await addConnected(proxy.app, microsoftCredential(bed.auth, shortClient, 'short'), login(bed.auth.users.alice));
    expect((await proxy.app.api('POST', '/api/v1/servers', { name: 'dovecot-short', protocol: 'imap', host: '127.0.0.1', port: bed.mail.ports.imaps, security: 'tls', tlsCa: bed.mail.caPem, username: proxy.mailbox, auth: { type: 'oauth2', credential: 'short' } })).status).toBe(201);
    await proxy.app.services.proxyAccounts.add({ name: 'short-scanner', server: 'dovecot-short', password: 'short-scanner-password-1' });
    const services = proxy.app.services;
    const stale = (await services.credentialRepo.accessTokenOf(await services.credentialRepo.get('short')))!.reveal();
    await new Promise((resolve) => setTimeout(resolve, 3000));
    await services.store.db.updateTable('credentials').set({ expires_at: new Date(Date.now() + 3_600_000).toISOString() }).where('name', '=', 'short').execute();
    services.tokens.forget('short');
    const refreshesBefore = services.tokens.refreshCount;

    const client = await RawClient.connect(proxy.tlsPort, ca);
    await client.until(/^\* OK .*\r\n/);
    client.send('s1 LOGIN short-scanner short-scanner-password-1\r\ns2 SELECT INBOX\r\n');
    expect(await client.until(/s2 (OK|NO|BAD).*\r\n/, 20_000)).toMatch(/s1 OK \[CAPABILITY [^\]]+\] Logged in\r\n[\s\S]*s2 OK \[READ-WRITE\]/);
    client.close();
    expect(services.tokens.refreshCount - refreshesBefore).toBe(1);
    expect(proxy.app.logs()).toContain('IMAP server refused the token: refreshing once and retrying');
    expect(proxy.app.logs()).not.toContain(stale);
  });

  it('never writes a password or a token to the log', async () => {
    const logs = proxy.app.logs();
    const repo = proxy.app.services.credentialRepo;
    for (const name of ['alice', 'short']) {
      const row = await repo.get(name);
      for (const secret of [repo.accessTokenOf(row), repo.refreshTokenOf(row)]) if (secret) expect(logs).not.toContain(secret.reveal());
    }
    for (const secret of [proxy.password, 'short-scanner-password-1']) expect(logs).not.toContain(secret);
  });
});
