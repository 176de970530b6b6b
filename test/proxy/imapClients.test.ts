// Real IMAP clients (Python imaplib, curl, Debian's fetchmail) read the test bed's Dovecot mailbox through Mailgate's IMAP proxy with a proxy account's password.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestbed } from '../testbed/useTestbed.js';
import { tempDir } from '../support/cli.js';
import { python, startImapProxyApp, type ImapProxyApp } from './imapHarness.js';

const run = promisify(execFile);
const bed = useTestbed();
let proxy: ImapProxyApp;
const MESSAGE = ['From: Alarm Panel <panel@example.test>', 'To: alice@example.test', 'Subject: zone 4 tripped', 'Message-ID: <zone4@example.test>', '', 'Zone 4 tripped at 03:12.', ''].join('\r\n');

beforeAll(async () => {
  proxy = await startImapProxyApp(bed, { clientId: 'imap-clients' });
  await bed.mail.deliver(MESSAGE, proxy.mailbox);
});
afterAll(async () => proxy?.close());

const env = () => ({ PORT: String(proxy.port), TLS_PORT: String(proxy.tlsPort), CA: proxy.certFile, USER: proxy.account, PASS: proxy.password });

describe('Python imaplib', () => {
  it('logs in with LOGIN after STARTTLS, gets the upstream capabilities in the OK, selects INBOX and fetches the message', async () => {
    const out = await python(
      `
import imaplib, ssl, os, hashlib
ctx = ssl.create_default_context(cafile=os.environ['CA'])
M = imaplib.IMAP4('127.0.0.1', int(os.environ['PORT']))
print('BEFORE', ' '.join(sorted(M.capabilities)))
M.starttls(ssl_context=ctx)
print('AFTER-TLS', ' '.join(sorted(M.capabilities)))
typ, data = M.login(os.environ['USER'], os.environ['PASS'])
print('LOGIN', typ, data[0].decode())
typ, data = M.select('INBOX')
print('SELECT', typ, data[0].decode())
typ, data = M.fetch('1', '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
print('SUBJECT', data[0][1].decode().strip())
M.logout()
`,
      env(),
    );
    // A loopback client may send its password before TLS; others see LOGINDISABLED (imapRefusals.test.ts).
    expect(out).toMatch(/^BEFORE .*\bSTARTTLS\b/m);
    expect(out).toMatch(/^BEFORE .*\bSASL-IR\b/m);
    expect(out).toMatch(/^BEFORE .*\bLITERAL\+/m);
    expect(out).not.toMatch(/^BEFORE .*AUTH=(XOAUTH2|OAUTHBEARER)/m);
    expect(out).toMatch(/^AFTER-TLS .*\bAUTH=PLAIN\b/m);
    expect(out).not.toMatch(/^AFTER-TLS .*(STARTTLS|LOGINDISABLED|AUTH=XOAUTH2|AUTH=OAUTHBEARER)/m);
    expect(out).toMatch(/^LOGIN OK \[CAPABILITY IMAP4rev1 .*\] Logged in$/m);
    expect(out).toMatch(/^SELECT OK [1-9]\d*$/m);
    expect(out).toMatch(/^SUBJECT Subject: zone 4 tripped$/m);
  });

  it('logs in with AUTHENTICATE PLAIN (continuation, no SASL-IR) over implicit TLS and fetches the whole message', async () => {
    const out = await python(
      `
import imaplib, ssl, os, hashlib
ctx = ssl.create_default_context(cafile=os.environ['CA'])
M = imaplib.IMAP4_SSL('127.0.0.1', int(os.environ['TLS_PORT']), ssl_context=ctx)
typ, data = M.authenticate('PLAIN', lambda _: ('\\0' + os.environ['USER'] + '\\0' + os.environ['PASS']).encode())
print('AUTH', typ, data[0].decode())
M.select('INBOX', readonly=True)
typ, data = M.fetch('1', '(BODY.PEEK[])')
print('BODY', data[0][1].decode().split('\\r\\n\\r\\n', 1)[1].strip())
M.logout()
`,
      env(),
    );
    expect(out).toMatch(/^AUTH OK \[CAPABILITY IMAP4rev1 .*\] Logged in$/m);
    expect(out).toMatch(/^BODY Zone 4 tripped at 03:12\.$/m);
  });
});

describe('curl', () => {
  let netrc: string;
  beforeAll(() => {
    netrc = path.join(tempDir('imap-curl-'), 'netrc');
    fs.writeFileSync(netrc, `machine 127.0.0.1 login ${proxy.account} password ${proxy.password}\n`, { mode: 0o600 });
  });

  it('fetches the message over imap:// with --ssl-reqd (STARTTLS, AUTHENTICATE PLAIN with SASL-IR)', async () => {
    const { stdout, stderr } = await run('curl', ['-sS', '-v', '--ssl-reqd', '--cacert', proxy.certFile, '--netrc-file', netrc, `imap://127.0.0.1:${proxy.port}/INBOX;MAILINDEX=1`], { timeout: 30_000 });
    expect(stdout).toContain('Zone 4 tripped at 03:12.');
    expect(stderr).toMatch(/> A\d+ STARTTLS/);
    expect(stderr).toMatch(/> A\d+ AUTHENTICATE PLAIN \S+/);
    expect(stderr).not.toContain(proxy.password);
  });

  it('fetches the message over imaps://', async () => {
    const { stdout } = await run('curl', ['-sS', '--cacert', proxy.certFile, '--netrc-file', netrc, `imaps://127.0.0.1:${proxy.tlsPort}/INBOX;MAILINDEX=1`], { timeout: 30_000 });
    expect(stdout).toContain('Subject: zone 4 tripped');
    expect(stdout).toContain('Zone 4 tripped at 03:12.');
  });
});

describe('fetchmail', () => {
  it('downloads the message with STARTTLS, checking the proxy certificate, and hands it to its MDA byte for byte', async () => {
    const dir = tempDir('imap-fetchmail-');
    const out = path.join(dir, 'delivered.eml');
    const rc = path.join(dir, 'fetchmailrc');
    fs.writeFileSync(
      rc,
      [
        'set no bouncemail',
        `poll 127.0.0.1 service ${proxy.port} protocol IMAP auth password`,
        `  user "${proxy.account}" there with password "${proxy.password}" is "local" here`,
        `  sslproto "TLS1.2+" sslcertck sslcertfile "${proxy.certFile}" sslcommonname "localhost"`,
        '  keep fetchall',
        `  mda "/bin/sh -c 'cat > ${out}'"`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    const { stdout, stderr } = await run('fetchmail', ['-f', rc, '--nodetach', '-v', '--pidfile', path.join(dir, 'pid')], { env: { ...process.env, HOME: dir, FETCHMAILHOME: dir }, timeout: 60_000 });
    const transcript = stdout + stderr;
    expect(transcript).toMatch(/IMAP> A\d+ STARTTLS/);
    expect(transcript).toMatch(/1 message for scanner/);
    expect(transcript).not.toContain(proxy.password);
    const delivered = fs.readFileSync(out, 'utf8');
    expect(delivered).toContain('Subject: zone 4 tripped');
    expect(delivered.replace(/\r\n/g, '\n')).toContain('Zone 4 tripped at 03:12.');
    // What fetchmail received is the message Dovecot keeps (fetchmail adds only its own Received line on top).
    const maildir = bed.mail.maildir(proxy.mailbox);
    const [stored] = ['cur', 'new'].flatMap((d) => fs.readdirSync(path.join(maildir, d)).map((f) => path.join(maildir, d, f)));
    const fetchmailReceived = /^Received: from 127\.0\.0\.1 \[127\.0\.0\.1\]\n\tby .* with IMAP \(fetchmail-[^\n]*\n(\t[^\n]*\n)*/m;
    expect(delivered.replace(/\r\n/g, '\n')).toMatch(fetchmailReceived);
    expect(delivered.replace(/\r\n/g, '\n').replace(fetchmailReceived, '').trim()).toBe(fs.readFileSync(stored!, 'utf8').replace(/\r\n/g, '\n').trim());
  });
});
