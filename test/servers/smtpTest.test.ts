// Proves the SMTP server test against real peers: Dovecot submission checking real tokens from the test
// authorization server, plus an in-process smtp-server as a network-level fake for what Dovecot cannot say
// (implicit TLS on "465", Microsoft's 535 5.7.139 / 5.7.3).
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, MailgateError } from '../../src/errors.js';
import type { ResolvedServer } from '../../src/servers/model.js';
import { explainSmtpFailure } from '../../src/servers/smtpExplanations.js';
import { testSmtpServer, type ServerTestReport, type ServerTestStep, type SmtpTestDeps } from '../../src/servers/smtpTest.js';
import { testCertificate } from '../testbed/mail/certificate.js';
import { getFreePort } from '../testbed/ports.js';
import { obtainTokens } from '../testbed/providerLogin.js';
import { useTestbed } from '../testbed/useTestbed.js';

const bed = useTestbed();
let aliceToken: string;

/** A token straight from the bed's provider: real, checked by Dovecot's introspection. */
const tokenSource = (tokens: string[]) => {
  const calls: { credential: string; forceRefresh: boolean }[] = [];
  const deps: SmtpTestDeps = {
    async getAccessToken(credential, options) {
      calls.push({ credential, forceRefresh: options?.forceRefresh === true });
      const token = tokens[Math.min(calls.length - 1, tokens.length - 1)]!;
      return { accessToken: { reveal: () => token }, expiresAt: undefined };
    },
  };
  return { deps, calls };
};
const noTokens: SmtpTestDeps = {
  getAccessToken: () => Promise.reject(new Error('this server needs no token')),
};

const submission = (overrides: Partial<ResolvedServer> = {}): ResolvedServer => ({
  name: 'bed-submission',
  protocol: 'smtp',
  host: '127.0.0.1',
  port: bed.mail.ports.submission,
  security: 'starttls',
  username: bed.auth.users.alice.email,
  auth: { type: 'oauth2', credential: 'alice' },
  tlsCa: bed.mail.caPem,
  tlsRejectUnauthorized: true,
  ...overrides,
});

const names = (report: ServerTestReport) => report.steps.map((s) => `${s.name}:${s.ok ? 'ok' : 'FAIL'}`);
const failed = (report: ServerTestReport) => report.steps.find((s) => !s.ok)!;

// The implicit-TLS peer: smtp-server with the bed's kind of self-signed certificate, TLS from the first byte.
let implicitTls: SMTPServer;
let implicitTlsPort: number;
let implicitTlsCa: string;
/** Microsoft 365's replies for accounts it refuses, chosen by username. */
const REFUSALS: Record<string, string> = {
  'disabled@contoso.test': '5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.',
  'nolicense@contoso.test': '5.7.3 Authentication unsuccessful [SN4PR0501CA0001.namprd05.prod.outlook.com]',
};

beforeAll(async () => {
  aliceToken = (await obtainTokens(bed.auth, { user: bed.auth.users.alice, layout: 'microsoft' })).access_token;
  const cert = await testCertificate();
  implicitTlsCa = cert.certPem;
  implicitTlsPort = await getFreePort();
  implicitTls = new SMTPServer({
    secure: true,
    key: cert.keyPem,
    cert: cert.certPem,
    authMethods: ['PLAIN', 'LOGIN', 'XOAUTH2'],
    disableReverseLookup: true,
    logger: false,
    onAuth(auth, _session, callback) {
      const refusal = auth.username ? REFUSALS[auth.username] : undefined;
      if (refusal) return callback(Object.assign(new Error(refusal), { responseCode: 535 }));
      callback(null, { user: auth.username });
    },
  });
  // Some tests misbehave towards it on purpose (plain text to a TLS port); those are not the peer's errors to throw.
  implicitTls.on('error', () => undefined);
  await new Promise<void>((resolve) => implicitTls.listen(implicitTlsPort, '127.0.0.1', resolve));
});
afterAll(async () => {
  await new Promise<void>((resolve) => (implicitTls ? implicitTls.close(() => resolve()) : resolve()));
});

describe('a working server', () => {
  it('passes every step over STARTTLS with the bed CA, authenticates with XOAUTH2, and the test message lands in the Maildir', async () => {
    const { deps, calls } = tokenSource([aliceToken]);
    const live: ServerTestStep[] = [];
    const report = await testSmtpServer(submission(), deps, { sendTo: bed.auth.users.bob.email, timeoutMs: 10_000, onStep: (s) => live.push(s) });

    expect(names(report)).toEqual(['connect:ok', 'ehlo:ok', 'tls:ok', 'ehlo:ok', 'token:ok', 'auth:ok', 'send:ok']);
    expect(report.ok).toBe(true);
    expect(live).toEqual(report.steps);
    expect(calls).toEqual([{ credential: 'alice', forceRefresh: false }]);
    const [, plainEhlo, tlsStep, ehlo, , auth, send] = report.steps;
    expect(plainEhlo!.detail).toMatch(/^greeting 220 .*STARTTLS/);
    expect(tlsStep!.detail).toMatch(/^STARTTLS 220 .*TLSv1\.[23] .*certificate for 127\.0\.0\.1 .*issued by 127\.0\.0\.1 \(self-signed\).*verified \(trusting the server's tlsCa/);
    expect(ehlo!.detail).toMatch(/server offers AUTH [A-Z ]*XOAUTH2/);
    expect(auth!.detail).toMatch(/^XOAUTH2 as alice@example\.test: 235 /);
    expect(report.totalMs).toBeGreaterThanOrEqual(report.steps.reduce((sum, s) => sum + s.ms, 0) - report.steps.length);
    expect(JSON.stringify(report)).not.toContain(aliceToken);

    const messageId = /Message-ID (<[^>]+>)/.exec(send!.detail)![1]!;
    expect(send!.detail).toMatch(/^from alice@example\.test to bob@example\.test: 250 /);
    expect(bed.mail.sink.received.some((m) => m.raw.toString().includes(`Message-ID: ${messageId}`))).toBe(true);
    const dir = join(bed.mail.maildir(bed.auth.users.bob.email), 'new');
    const delivered = await Promise.all((await readdir(dir)).map((f) => readFile(join(dir, f), 'utf8')));
    const message = delivered.find((m) => m.includes(messageId));
    expect(message).toContain('Subject: Mailgate test message');
    expect(message).toMatch(/^Date: \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$/m);
  });

  it('authenticates carol with a password (PLAIN) and never shows the password', async () => {
    const carol = bed.mail.passwordUser;
    const report = await testSmtpServer(submission({ username: carol.email, auth: { type: 'password', password: carol.password } }), noTokens, { timeoutMs: 10_000 });
    expect(names(report)).toEqual(['connect:ok', 'ehlo:ok', 'tls:ok', 'ehlo:ok', 'auth:ok']);
    expect(report.steps[4]!.detail).toMatch(/^PLAIN as carol@example\.test: 235 /);
    expect(JSON.stringify(report)).not.toContain(carol.password);
  });

  it('reports the certificate and protocol over implicit TLS, and warns when verification is off', async () => {
    const server = submission({ port: implicitTlsPort, security: 'tls', username: 'someone@contoso.test', auth: { type: 'password', password: 'pw' } });
    const verified = await testSmtpServer({ ...server, tlsCa: implicitTlsCa }, noTokens, { timeoutMs: 5000 });
    expect(names(verified)).toEqual(['connect:ok', 'tls:ok', 'ehlo:ok', 'auth:ok']);
    expect(verified.steps[1]!.detail).not.toContain('WARNING');

    const unverified = await testSmtpServer({ ...server, tlsCa: undefined, tlsRejectUnauthorized: false }, noTokens, { timeoutMs: 5000 });
    expect(unverified.ok).toBe(true);
    expect(unverified.steps[1]!.detail).toMatch(/WARNING: certificate NOT verified \(tlsRejectUnauthorized: false; verification fails with DEPTH_ZERO_SELF_SIGNED_CERT\)/);
  });

  it('says that plaintext is tolerable only on loopback and that STARTTLS is on offer', async () => {
    const carol = bed.mail.passwordUser;
    const report = await testSmtpServer(submission({ security: 'none', username: carol.email, auth: { type: 'password', password: carol.password } }), noTokens, { timeoutMs: 10_000 });
    expect(names(report)).toEqual(['connect:ok', 'ehlo:ok', 'auth:ok']);
    expect(report.steps[0]!.detail).toContain('security: none (plaintext, acceptable on loopback only)');
    expect(report.steps[1]!.detail).toContain('STARTTLS is offered');
  });
});

describe('a refused token', () => {
  it('shows the decoded XOAUTH2 status, refreshes once, and succeeds with the refreshed token', async () => {
    const { deps, calls } = tokenSource(['forged-token-not-issued-by-anyone', aliceToken]);
    const report = await testSmtpServer(submission(), deps, { timeoutMs: 10_000 });

    expect(names(report)).toEqual(['connect:ok', 'ehlo:ok', 'tls:ok', 'ehlo:ok', 'token:ok', 'auth:FAIL', 'token:ok', 'auth:ok']);
    expect(report.ok).toBe(true);
    expect(calls).toEqual([
      { credential: 'alice', forceRefresh: false },
      { credential: 'alice', forceRefresh: true },
    ]);
    const refused = report.steps[5]!;
    expect(refused.detail).toMatch(/^XOAUTH2 as alice@example\.test: 535 .*\(XOAUTH2 status \{"status":"401"/);
    expect(refused.explanation!.meaning).toMatch(/rejected the access token: invalid or expired token, or wrong scope/);
    expect(refused.explanation!.fix).toContain('mailgate credential authorize alice');
    expect(report.steps[6]!.detail).toContain('refreshed access token of credential alice');
    expect(report.steps[7]!.detail).toMatch(/second attempt\): 235 /);
    expect(JSON.stringify(report)).not.toContain(aliceToken);
    expect(JSON.stringify(report)).not.toContain('forged-token');
  });

  it('fails after one refresh when the fresh token is refused too', async () => {
    const { deps, calls } = tokenSource(['forged-1', 'forged-2']);
    const report = await testSmtpServer(submission(), deps, { sendTo: bed.auth.users.bob.email, timeoutMs: 10_000 });
    expect(names(report).slice(4)).toEqual(['token:ok', 'auth:FAIL', 'token:ok', 'auth:FAIL']);
    expect(report.ok).toBe(false);
    expect(calls).toHaveLength(2);
  });

  it('reports a credential that needs signing in again at the token step, before any AUTH', async () => {
    const deps: SmtpTestDeps = {
      getAccessToken: () => Promise.reject(new MailgateError(ErrorCode.CREDENTIAL_NEEDS_REAUTHORIZATION, 'credential alice: the refresh token was revoked; sign in again')),
    };
    const report = await testSmtpServer(submission(), deps, { timeoutMs: 10_000 });
    expect(names(report)).toEqual(['connect:ok', 'ehlo:ok', 'tls:ok', 'ehlo:ok', 'token:FAIL']);
    expect(failed(report).explanation!.fix).toBe('Sign in again: mailgate credential authorize alice.');
  });
});

describe('explains the configuration mistakes', () => {
  it('security tls against the STARTTLS submission port: the tls step fails with "expects STARTTLS"', async () => {
    const report = await testSmtpServer(submission({ security: 'tls' }), tokenSource([aliceToken]).deps, { timeoutMs: 5000 });
    expect(names(report)).toEqual(['connect:ok', 'tls:FAIL']);
    expect(failed(report).detail).toContain('ERR_SSL_WRONG_VERSION_NUMBER');
    expect(failed(report).explanation!.meaning).toMatch(/it expects STARTTLS, not implicit TLS/);
    expect(failed(report).explanation!.fix).toMatch(/^Set security: starttls/);
  });

  it('security starttls against an implicit-TLS port: no greeting, a TLS handshake works, so "expects implicit TLS"', async () => {
    const report = await testSmtpServer(submission({ port: implicitTlsPort, tlsCa: implicitTlsCa }), tokenSource([aliceToken]).deps, { timeoutMs: 1000 });
    expect(names(report)).toEqual(['connect:ok', 'ehlo:FAIL']);
    expect(failed(report).detail).toMatch(/no SMTP greeting within 1000 ms; a TLS handshake on the same port succeeded/);
    expect(failed(report).explanation!.meaning).toMatch(/expects implicit TLS/);
    expect(failed(report).explanation!.fix).toMatch(/^Set security: tls/);
  });

  it('a self-signed certificate without tlsCa: the tls step fails and says to add the CA as tlsCa', async () => {
    const report = await testSmtpServer(submission({ tlsCa: undefined }), tokenSource([aliceToken]).deps, { timeoutMs: 5000 });
    expect(names(report)).toEqual(['connect:ok', 'ehlo:ok', 'tls:FAIL']);
    expect(failed(report).detail).toContain('DEPTH_ZERO_SELF_SIGNED_CERT');
    expect(failed(report).explanation!.meaning).toMatch(/is self-signed/);
    expect(failed(report).explanation!.fix).toMatch(/as tlsCa/);
  });

  it('nothing listening: the connect step fails with ECONNREFUSED explained', async () => {
    const port = await getFreePort();
    const report = await testSmtpServer(submission({ port }), tokenSource([aliceToken]).deps, { timeoutMs: 5000 });
    expect(names(report)).toEqual(['connect:FAIL']);
    expect(report.ok).toBe(false);
    expect(failed(report).detail).toContain('ECONNREFUSED');
    expect(failed(report).explanation!.meaning).toBe(`Nothing listens on 127.0.0.1:${port} (connection refused).`);
  });

  it('an IMAP port is not SMTP', async () => {
    const report = await testSmtpServer(submission({ port: bed.mail.ports.imap, security: 'none' }), noTokens, { timeoutMs: 5000 });
    expect(names(report)).toEqual(['connect:ok', 'ehlo:FAIL']);
    expect(failed(report).detail).toMatch(/not an SMTP reply: "\* OK/);
    expect(failed(report).explanation!.meaning).toMatch(/does not speak SMTP/);
  });
});

// Dovecot cannot answer like Microsoft 365; smtp-server on loopback (a network-level fake peer) sends the exact replies.
describe("Microsoft 365's refusals, from a fake peer on the wire", () => {
  const office = (username: string): ResolvedServer =>
    submission({ port: implicitTlsPort, security: 'tls', tlsCa: implicitTlsCa, username, auth: { type: 'oauth2', credential: 'm365' } });

  it('535 5.7.139: SMTP AUTH disabled, fixed with Set-CASMailbox or Set-TransportConfig', async () => {
    const report = await testSmtpServer(office('disabled@contoso.test'), tokenSource(['t1', 't2']).deps, { timeoutMs: 5000 });
    const refused = failed(report);
    expect(refused.name).toBe('auth');
    expect(refused.detail).toMatch(/^XOAUTH2 as disabled@contoso\.test: 535 5\.7\.139 /);
    expect(refused.explanation!.meaning).toMatch(/SMTP AUTH .* is disabled for the tenant or for this mailbox/);
    expect(refused.explanation!.fix).toContain('Set-CASMailbox -Identity disabled@contoso.test -SmtpClientAuthenticationDisabled $false');
    expect(refused.explanation!.fix).toContain('Set-TransportConfig -SmtpClientAuthenticationDisabled $false');
  });

  it('535 5.7.3: wrong credentials, no SMTP.Send permission, no license or wrong username', async () => {
    const report = await testSmtpServer(office('nolicense@contoso.test'), tokenSource(['t1', 't2']).deps, { timeoutMs: 5000 });
    const refused = failed(report);
    expect(refused.detail).toMatch(/: 535 5\.7\.3 /);
    expect(refused.explanation!.meaning).toMatch(/wrong credentials, or the account has no SMTP\.Send permission, no Exchange Online license, or the username is not the mailbox/);
    expect(refused.explanation!.fix).toContain('https://outlook.office.com/SMTP.Send');
  });
});

describe('the explanation table', () => {
  const at = { host: 'smtp.example.com', port: 587, security: 'starttls' } as const;

  it('prefers the enhanced status code over the bare reply code', () => {
    expect(explainSmtpFailure({ ...at, responseCode: 535, enhancedStatus: '5.7.139' }).fix).toMatch(/Set-CASMailbox/);
    expect(explainSmtpFailure({ ...at, responseCode: 535 }).meaning).toBe('Authentication failed.');
  });

  it('explains Gmail app-password and STARTTLS-first replies, and temporary auth failures', () => {
    expect(explainSmtpFailure({ ...at, responseCode: 534, enhancedStatus: '5.7.9' }).meaning).toMatch(/application-specific password/);
    expect(explainSmtpFailure({ ...at, security: 'none', responseCode: 530, enhancedStatus: '5.7.0' }).fix).toBe('Set security: starttls for this server.');
    expect(explainSmtpFailure({ ...at, responseCode: 454, enhancedStatus: '4.7.0' }).meaning).toMatch(/^Temporary authentication failure/);
  });

  it('decides the port/security pairing by code, and by OpenSSL text only when no code came', () => {
    const tlsOn587 = { host: 'smtp.office365.com', port: 587, security: 'tls' } as const;
    expect(explainSmtpFailure({ ...tlsOn587, code: 'ERR_SSL_WRONG_VERSION_NUMBER' }).fix).toMatch(/^Set security: starttls for this server \(port 587 is STARTTLS submission\)/);
    expect(explainSmtpFailure({ ...tlsOn587, tlsReason: 'packet length too long' }).fix).toMatch(/^Set security: starttls/);
    expect(explainSmtpFailure({ host: 'smtp.gmail.com', port: 465, security: 'starttls', code: 'GREETING_TIMEOUT' }).meaning).toMatch(/port 465 is "submissions"/);
  });

  it('names DNS and hostname-mismatch failures', () => {
    expect(explainSmtpFailure({ ...at, code: 'ENOTFOUND' }).meaning).toBe('The host name smtp.example.com does not resolve (DNS: no such host).');
    expect(explainSmtpFailure({ ...at, code: 'ERR_TLS_CERT_ALTNAME_INVALID' }).meaning).toMatch(/hostname mismatch/);
  });
});
