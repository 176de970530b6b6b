// Proves the IMAP server test against real peers: Dovecot checking real tokens from the test authorization server
// by introspection (XOAUTH2 and OAUTHBEARER offered, as Microsoft and Google do), carol's password, real folders.
import { randomUUID } from 'node:crypto';
import { ImapFlow } from 'imapflow';
import { describe, expect, it, beforeAll } from 'vitest';
import { ErrorCode, MailgateError } from '../../src/errors.js';
import { explainImapFailure, testImapServer, type ImapTestDeps, type ImapTestReport, type ImapTestStep } from '../../src/servers/imapTest.js';
import type { ResolvedServer } from '../../src/servers/model.js';
import { getFreePort } from '../testbed/ports.js';
import { obtainTokens } from '../testbed/providerLogin.js';
import { useTestbed } from '../testbed/useTestbed.js';

const bed = useTestbed();
let aliceToken: string;
const DELIVERED = 3;

/** Hands out the given tokens in order (the last one again), recording each call. */
const tokenSource = (tokens: string[]) => {
  const calls: { credential: string; forceRefresh: boolean }[] = [];
  const deps: ImapTestDeps = {
    async getAccessToken(credential, options) {
      calls.push({ credential, forceRefresh: options?.forceRefresh === true });
      const token = tokens[Math.min(calls.length - 1, tokens.length - 1)]!;
      return { accessToken: { reveal: () => token }, expiresAt: undefined };
    },
  };
  return { deps, calls };
};
const noTokens: ImapTestDeps = { getAccessToken: () => Promise.reject(new Error('this server needs no token')) };

const imap = (overrides: Partial<ResolvedServer> = {}): ResolvedServer => ({
  name: 'bed-imap',
  protocol: 'imap',
  host: '127.0.0.1',
  port: bed.mail.ports.imap,
  security: 'starttls',
  username: bed.auth.users.alice.email,
  auth: { type: 'oauth2', credential: 'alice' },
  tlsCa: bed.mail.caPem,
  tlsRejectUnauthorized: true,
  ...overrides,
});

const names = (report: ImapTestReport) => report.steps.map((s) => `${s.name}:${s.ok ? 'ok' : 'FAIL'}`);
const failed = (report: ImapTestReport) => report.steps.find((s) => !s.ok)!;
const step = (report: ImapTestReport, name: ImapTestStep['name']) => report.steps.find((s) => s.name === name)!;
/** Dovecot logs each login with its mechanism: "imap-login: Info: Login: user=<…>, method=XOAUTH2". */
const loginMethods = (user: string) =>
  [...bed.mail.logs().matchAll(new RegExp(`imap-login: (?:Info: )?Login: user=<${user.replace(/[.@]/g, '\\$&')}>, method=([A-Z0-9-]+)`, 'g'))].map((m) => m[1]!);
/** Dovecot writes its log on its own time: wait briefly for the line. */
async function waitForLogins(user: string, count: number): Promise<string[]> {
  for (let i = 0; i < 40 && loginMethods(user).length < count; i++) await new Promise((resolve) => setTimeout(resolve, 50));
  return loginMethods(user);
}

beforeAll(async () => {
  aliceToken = (await obtainTokens(bed.auth, { user: bed.auth.users.alice, layout: 'microsoft' })).access_token;
  for (let i = 0; i < DELIVERED; i++) {
    const raw = [`From: sender@example.net`, `To: ${bed.auth.users.alice.email}`, `Subject: inbound ${i}`, `Message-ID: <${randomUUID()}@example.net>`, '', `body ${i}`, ''].join('\r\n');
    await bed.mail.deliver(raw, bed.auth.users.alice.email);
  }
});

describe('a working server', () => {
  it('passes every step over STARTTLS with XOAUTH2 (chosen over OAUTHBEARER), and counts the messages delivered to INBOX', async () => {
    const { deps, calls } = tokenSource([aliceToken]);
    const live: ImapTestStep[] = [];
    const before = loginMethods(bed.auth.users.alice.email).length;
    const report = await testImapServer(imap(), deps, { timeoutMs: 10_000, onStep: (s) => live.push(s) });

    expect(names(report)).toEqual(['connect:ok', 'capabilities:ok', 'token:ok', 'auth:ok', 'folders:ok', 'mailbox:ok']);
    expect(report.ok).toBe(true);
    expect(live).toEqual(report.steps);
    expect(calls).toEqual([{ credential: 'alice', forceRefresh: false }]);
    expect(step(report, 'connect').detail).toMatch(/^connected to 127\.0\.0\.1:\d+; STARTTLS; TLSv1\.[23] .*certificate for 127\.0\.0\.1 .*\(self-signed\).*verified \(trusting the server's tlsCa/);
    expect(step(report, 'capabilities').detail).toMatch(/server offers AUTH (?=.*XOAUTH2)(?=.*OAUTHBEARER).*; IMAP4rev1/);
    expect(step(report, 'auth').detail).toBe('XOAUTH2 as alice@example.test: accepted');
    expect(step(report, 'folders').detail).toMatch(/^\d+ folders; special-use: (?=.*\\Sent Sent)(?=.*\\Drafts Drafts)(?=.*\\Trash Trash)/);
    expect(step(report, 'mailbox').detail).toMatch(new RegExp(`^INBOX: ${DELIVERED} messages, ${DELIVERED} unseen, UIDVALIDITY \\d+, UIDNEXT ${DELIVERED + 1}$`));
    expect(report.totalMs).toBeGreaterThanOrEqual(report.steps.reduce((sum, s) => sum + s.ms, 0) - report.steps.length);
    expect(JSON.stringify(report)).not.toContain(aliceToken);
    // Dovecot's word, not ours, that the login went over XOAUTH2
    expect((await waitForLogins(bed.auth.users.alice.email, before + 1)).slice(before)).toEqual(['XOAUTH2']);
  });

  it('passes every step over implicit TLS', async () => {
    const report = await testImapServer(imap({ port: bed.mail.ports.imaps, security: 'tls' }), tokenSource([aliceToken]).deps, { timeoutMs: 10_000 });
    expect(names(report)).toEqual(['connect:ok', 'capabilities:ok', 'token:ok', 'auth:ok', 'folders:ok', 'mailbox:ok']);
    expect(step(report, 'connect').detail).toMatch(/^connected to 127\.0\.0\.1:\d+; TLSv1\.[23] .*verified/);
    expect(step(report, 'connect').detail).not.toContain('STARTTLS');
    expect(step(report, 'mailbox').detail).toMatch(new RegExp(`^INBOX: ${DELIVERED} messages`));
  });

  it('logs carol in with her password (PLAIN) and never shows the password', async () => {
    const carol = bed.mail.passwordUser;
    const report = await testImapServer(imap({ username: carol.email, auth: { type: 'password', password: carol.password } }), noTokens, { timeoutMs: 10_000 });
    expect(names(report)).toEqual(['connect:ok', 'capabilities:ok', 'auth:ok', 'folders:ok', 'mailbox:ok']);
    expect(step(report, 'auth').detail).toBe('PLAIN as carol@example.test: accepted');
    expect(JSON.stringify(report)).not.toContain(carol.password);
  });

  it('a login refused for too many open connections is explained as a connection limit, not as a bad password or token', async () => {
    const carol = bed.mail.passwordUser;
    // Dovecot allows 10 connections per user and address (mail_max_userip_connections): hold them all open.
    const held: ImapFlow[] = [];
    try {
      for (let i = 0; i < 12; i++) {
        const c = new ImapFlow({ host: '127.0.0.1', port: bed.mail.ports.imaps, secure: true, tls: { ca: bed.mail.caPem }, auth: { user: carol.email, pass: carol.password }, logger: false });
        c.on('error', () => undefined);
        const ok = await c.connect().then(() => c.mailboxOpen('INBOX')).then(() => true, () => false);
        if (!ok) break;
        held.push(c);
      }
      const report = await testImapServer(imap({ username: carol.email, auth: { type: 'password', password: carol.password } }), noTokens, { timeoutMs: 10_000 });
      const refusal = failed(report);
      expect(refusal.name === 'auth' || refusal.name === 'mailbox', JSON.stringify(refusal)).toBe(true);
      expect(refusal.detail).toMatch(/Maximum number of connections/i);
      expect(refusal.explanation?.meaning).toMatch(/already has as many connections open as it allows; the password or token itself was not the problem/);
      expect(refusal.explanation?.fix).toContain('mail_max_userip_connections');
    } finally {
      await Promise.all(held.map((c) => c.logout().catch(() => c.close())));
    }
  });
});

describe('a refused token', () => {
  it('shows the decoded XOAUTH2 status, refreshes once, and succeeds with the refreshed token on the same connection', async () => {
    const { deps, calls } = tokenSource(['forged-token-not-issued-by-anyone', aliceToken]);
    const report = await testImapServer(imap(), deps, { timeoutMs: 10_000 });

    expect(names(report)).toEqual(['connect:ok', 'capabilities:ok', 'token:ok', 'auth:FAIL', 'token:ok', 'auth:ok', 'folders:ok', 'mailbox:ok']);
    expect(report.ok).toBe(true);
    expect(calls).toEqual([
      { credential: 'alice', forceRefresh: false },
      { credential: 'alice', forceRefresh: true },
    ]);
    const refused = report.steps[3]!;
    expect(refused.detail).toMatch(/^XOAUTH2 as alice@example\.test: NO \[AUTHENTICATIONFAILED\] Authentication failed\. \(XOAUTH2 status \{"status":"401"/);
    expect(refused.explanation!.meaning).toMatch(/refused the access token \(status 401.*\): the token is invalid or expired, or lacks the IMAP scope/);
    expect(refused.explanation!.fix).toContain('Set-CASMailbox -Identity alice@example.test -ImapEnabled $true');
    expect(refused.explanation!.fix).toContain('mailgate credential authorize alice');
    expect(report.steps[4]!.detail).toBe('refreshed access token of credential alice');
    expect(report.steps[5]!.detail).toBe('XOAUTH2 as alice@example.test (refreshed token, second attempt): accepted');
    expect(JSON.stringify(report)).not.toContain(aliceToken);
    expect(JSON.stringify(report)).not.toContain('forged-token');
  });

  it('fails after one refresh when the fresh token is refused too', async () => {
    const { deps, calls } = tokenSource(['forged-1', 'forged-2']);
    const report = await testImapServer(imap(), deps, { timeoutMs: 10_000 });
    expect(names(report)).toEqual(['connect:ok', 'capabilities:ok', 'token:ok', 'auth:FAIL', 'token:ok', 'auth:FAIL']);
    expect(report.ok).toBe(false);
    expect(calls).toHaveLength(2);
  });

  it('reports a credential that needs signing in again at the token step, before any login', async () => {
    const deps: ImapTestDeps = {
      getAccessToken: () => Promise.reject(new MailgateError(ErrorCode.CREDENTIAL_NEEDS_REAUTHORIZATION, 'credential alice: the refresh token was revoked; sign in again')),
    };
    const report = await testImapServer(imap(), deps, { timeoutMs: 10_000 });
    expect(names(report)).toEqual(['connect:ok', 'capabilities:ok', 'token:FAIL']);
    expect(failed(report).explanation!.fix).toBe('Sign in again: mailgate credential authorize alice.');
  });
});

describe('explains the configuration mistakes', () => {
  it('a folder that does not exist: the mailbox step fails and names the folders that do', async () => {
    const report = await testImapServer(imap(), tokenSource([aliceToken]).deps, { timeoutMs: 10_000, folder: 'Alarms/Replies' });
    expect(names(report)).toEqual(['connect:ok', 'capabilities:ok', 'token:ok', 'auth:ok', 'folders:ok', 'mailbox:FAIL']);
    expect(report.ok).toBe(false);
    expect(failed(report).detail).toMatch(/^folder "Alarms\/Replies" does not exist/);
    expect(failed(report).explanation!.meaning).toBe('The folder "Alarms/Replies" does not exist in alice@example.test.');
    expect(failed(report).explanation!.fix).toMatch(/^Use an existing folder \((?=.*INBOX)(?=.*Sent)/);
  });

  it('security tls on the plain IMAP port: the connect step fails with "expects STARTTLS"', async () => {
    const report = await testImapServer(imap({ security: 'tls' }), tokenSource([aliceToken]).deps, { timeoutMs: 5000 });
    expect(names(report)).toEqual(['connect:FAIL']);
    expect(failed(report).detail).toMatch(/ERR_SSL_WRONG_VERSION_NUMBER|ERR_SSL_PACKET_LENGTH_TOO_LONG|wrong version number/);
    expect(failed(report).explanation!.meaning).toMatch(/it expects STARTTLS, not implicit TLS/);
    expect(failed(report).explanation!.fix).toMatch(/^Set security: starttls/);
  });

  it('security starttls on the implicit-TLS port: no greeting, a TLS handshake works, so "expects implicit TLS"', async () => {
    const report = await testImapServer(imap({ port: bed.mail.ports.imaps }), tokenSource([aliceToken]).deps, { timeoutMs: 1000 });
    expect(names(report)).toEqual(['connect:FAIL']);
    expect(failed(report).detail).toBe('no IMAP greeting within 1000 ms; a TLS handshake on the same port succeeded');
    expect(failed(report).explanation!.meaning).toMatch(/expects implicit TLS/);
    expect(failed(report).explanation!.fix).toMatch(/^Set security: tls/);
  });

  it('a self-signed certificate without tlsCa: the connect step fails and says to add the CA as tlsCa', async () => {
    const report = await testImapServer(imap({ port: bed.mail.ports.imaps, security: 'tls', tlsCa: undefined }), tokenSource([aliceToken]).deps, { timeoutMs: 5000 });
    expect(names(report)).toEqual(['connect:FAIL']);
    expect(failed(report).detail).toContain('DEPTH_ZERO_SELF_SIGNED_CERT');
    expect(failed(report).explanation!.fix).toMatch(/as tlsCa/);
  });

  it('nothing listening: the connect step fails with ECONNREFUSED explained', async () => {
    const port = await getFreePort();
    const report = await testImapServer(imap({ port }), tokenSource([aliceToken]).deps, { timeoutMs: 5000 });
    expect(names(report)).toEqual(['connect:FAIL']);
    expect(report.ok).toBe(false);
    expect(failed(report).detail).toContain('ECONNREFUSED');
    expect(failed(report).explanation!.meaning).toBe(`Nothing listens on 127.0.0.1:${port} (connection refused).`);
  });

  it('an SMTP port is not IMAP: the capabilities step shows what the peer said', async () => {
    const report = await testImapServer(imap({ port: bed.mail.ports.submission, security: 'none' }), tokenSource([aliceToken]).deps, { timeoutMs: 1000 });
    expect(names(report)).toEqual(['connect:ok', 'capabilities:FAIL']);
    expect(failed(report).detail).toMatch(/^not an IMAP greeting: "220 /);
    expect(failed(report).explanation!.meaning).toMatch(/does not speak IMAP/);
  });

  it('refuses to test a server that is not IMAP', async () => {
    await expect(testImapServer(imap({ protocol: 'smtp' }), noTokens)).rejects.toMatchObject({ code: ErrorCode.INPUT_INVALID });
  });
});

describe('the explanation table', () => {
  const office = { host: 'outlook.office365.com', port: 993, security: 'tls', username: 'alerts@contoso.test', credential: 'm365' } as const;
  const gmail = { host: 'imap.gmail.com', port: 993, security: 'tls', username: 'alerts@example.com', credential: 'gmail' } as const;

  it("names Microsoft's IMAP switch and the app-only service principal for Exchange's bare \"AUTHENTICATE failed.\"", () => {
    const e = explainImapFailure({ ...office, code: 'AUTH_REFUSED', mechanism: 'XOAUTH2' });
    expect(e.meaning).toMatch(/IMAP\.AccessAsUser\.All.*"AUTHENTICATE failed\." .*app-only tokens whose app has no Exchange service principal/);
    expect(e.fix).toContain('Set-CASMailbox -Identity alerts@contoso.test -ImapEnabled $true');
    expect(e.fix).toContain('New-ServicePrincipal');
    expect(e.fix).not.toContain('Gmail');
  });

  it("names Gmail's scope and the Workspace admin console, and the scope a 403 asks for", () => {
    const e = explainImapFailure({ ...gmail, code: 'AUTH_REFUSED', mechanism: 'XOAUTH2', oauthStatus: '400' });
    expect(e.meaning).toContain('https://mail.google.com/');
    expect(e.fix).toMatch(/Workspace admin .*Admin console/);
    expect(e.fix).not.toContain('Set-CASMailbox');
    expect(explainImapFailure({ ...gmail, code: 'AUTH_REFUSED', mechanism: 'XOAUTH2', oauthStatus: '403', oauthScope: 'https://mail.google.com/' }).meaning).toMatch(/valid but not allowed/);
  });

  it('explains an Exchange session refused after the login, and passwords refused by Microsoft 365', () => {
    expect(explainImapFailure({ ...office, code: 'SESSION_REFUSED' }).fix).toMatch(/Add-MailboxPermission -Identity alerts@contoso\.test/);
    expect(explainImapFailure({ ...office, code: 'AUTH_REFUSED', mechanism: 'PLAIN' }).fix).toMatch(/basic authentication is off/);
  });

  it('decides the port/security pairing by code, and by OpenSSL text only when no code came', () => {
    const tlsOn143 = { host: 'mail.example.com', port: 143, security: 'tls' } as const;
    expect(explainImapFailure({ ...tlsOn143, code: 'ERR_SSL_WRONG_VERSION_NUMBER' }).fix).toMatch(/^Set security: starttls for this server \(port 143 is IMAP with STARTTLS\)/);
    expect(explainImapFailure({ ...tlsOn143, tlsReason: 'packet length too long' }).fix).toMatch(/^Set security: starttls/);
    expect(explainImapFailure({ host: 'imap.gmail.com', port: 993, security: 'starttls', code: 'GREETING_TIMEOUT' }).meaning).toMatch(/port 993 is IMAPS/);
    expect(explainImapFailure({ host: 'mail.example.com', port: 993, security: 'starttls', code: 'ENOTFOUND' }).meaning).toBe('The host name mail.example.com does not resolve (DNS: no such host).');
  });
});
