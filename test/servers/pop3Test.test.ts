// Proves the POP3 server test against Dovecot's pop3 on the bed: real tokens checked by introspection, STLS and
// implicit TLS, the refresh-once retry, and the explanations of port/security mistakes; plus the explanation table
// for what Dovecot cannot say (Microsoft 365's and Gmail's refusals).
import { beforeAll, describe, expect, it } from 'vitest';
import { explainPop3Failure } from '../../src/inbound/pop3/explanations.js';
import type { ResolvedServer } from '../../src/servers/model.js';
import { testPop3Server, type Pop3TestDeps, type Pop3TestReport } from '../../src/servers/pop3Test.js';
import { testServer } from '../../src/servers/serverTest.js';
import type { Services } from '../../src/services.js';
import { getFreePort } from '../testbed/ports.js';
import { obtainTokens } from '../testbed/providerLogin.js';
import { useTestbed } from '../testbed/useTestbed.js';

const bed = useTestbed();
let bobToken: string;

const tokenSource = (tokens: string[]) => {
  const calls: { credential: string; forceRefresh: boolean }[] = [];
  const deps: Pop3TestDeps = {
    async getAccessToken(credential, options) {
      calls.push({ credential, forceRefresh: options?.forceRefresh === true });
      const token = tokens[Math.min(calls.length - 1, tokens.length - 1)]!;
      return { accessToken: { reveal: () => token }, expiresAt: undefined };
    },
  };
  return { deps, calls };
};
const noTokens: Pop3TestDeps = { getAccessToken: () => Promise.reject(new Error('this server needs no token')) };

const pop3 = (overrides: Partial<ResolvedServer> = {}): ResolvedServer => ({
  name: 'bed-pop3',
  protocol: 'pop3',
  host: '127.0.0.1',
  port: bed.mail.ports.pop3,
  security: 'starttls',
  username: bed.auth.users.bob.email,
  auth: { type: 'oauth2', credential: 'bob' },
  tlsCa: bed.mail.caPem,
  tlsRejectUnauthorized: true,
  ...overrides,
});

const names = (report: Pop3TestReport) => report.steps.map((s) => `${s.name}:${s.ok ? 'ok' : 'FAIL'}`);
const failed = (report: Pop3TestReport) => report.steps.find((s) => !s.ok)!;
const ALL_OK = ['connect:ok', 'tls:ok', 'capabilities:ok', 'token:ok', 'auth:ok', 'mailbox:ok'];

beforeAll(async () => {
  bobToken = (await obtainTokens(bed.auth, { user: bed.auth.users.bob, layout: 'microsoft' })).access_token;
  for (const n of [1, 2]) {
    await bed.mail.deliver(`From: a@example.test\r\nTo: bob@example.test\r\nSubject: m${n}\r\nMessage-ID: <m${n}@example.test>\r\n\r\nbody ${n}\r\n`, bed.auth.users.bob.email);
  }
});

describe('a working server', () => {
  it('passes every step over STLS and reports the message count, size and UIDL, never the token', async () => {
    const seen: string[] = [];
    const report = await testPop3Server(pop3(), tokenSource([bobToken]).deps, { timeoutMs: 10_000, onStep: (s) => seen.push(s.name) });
    expect(names(report)).toEqual(ALL_OK);
    expect(report.ok).toBe(true);
    expect(seen).toEqual(report.steps.map((s) => s.name));
    expect(report.steps[0]!.detail).toMatch(/^connected to 127\.0\.0\.1:\d+; greeting \+OK /);
    expect(report.steps[1]!.detail).toMatch(/^STLS; TLSv1\.[23] .*verified/);
    expect(report.steps[2]!.detail).toMatch(/SASL XOAUTH2 .*UIDL/);
    expect(report.steps[4]!.detail).toBe('XOAUTH2 as bob@example.test: +OK');
    expect(report.steps[5]!.detail).toMatch(/^2 messages, \d+ octets; UIDL supported$/);
    expect(JSON.stringify(report)).not.toContain(bobToken);
  });

  it('passes over implicit TLS, the greeting read inside TLS', async () => {
    const report = await testPop3Server(pop3({ port: bed.mail.ports.pop3s, security: 'tls' }), tokenSource([bobToken]).deps, { timeoutMs: 10_000 });
    expect(names(report)).toEqual(ALL_OK);
    expect(report.steps[1]!.detail).toMatch(/certificate for .* \(self-signed\).*verified.*; greeting \+OK /);
  });

  it('logs carol in with USER/PASS through testServer, and never shows the password', async () => {
    const carol = bed.mail.passwordUser;
    // the password path never asks for a token: the token manager is not needed
    const services = { tokens: noTokens } as unknown as Pick<Services, 'tokens'>;
    const report = await testServer(pop3({ username: carol.email, auth: { type: 'password', password: carol.password } }), services, { timeoutMs: 10_000 });
    expect(report.steps.map((s) => `${s.name}:${s.ok ? 'ok' : 'FAIL'}`)).toEqual(['connect:ok', 'tls:ok', 'capabilities:ok', 'auth:ok', 'mailbox:ok']);
    expect(report.steps[3]!.detail).toBe('USER/PASS as carol@example.test: +OK');
    expect(JSON.stringify(report)).not.toContain(carol.password);
  });
});

describe('a refused token', () => {
  it('shows the decoded XOAUTH2 status, refreshes once, and succeeds with the refreshed token', async () => {
    const { deps, calls } = tokenSource(['forged-token-not-issued-by-anyone', bobToken]);
    const report = await testPop3Server(pop3(), deps, { timeoutMs: 10_000 });
    expect(names(report)).toEqual(['connect:ok', 'tls:ok', 'capabilities:ok', 'token:ok', 'auth:FAIL', 'token:ok', 'auth:ok', 'mailbox:ok']);
    expect(report.ok).toBe(true);
    expect(calls).toEqual([
      { credential: 'bob', forceRefresh: false },
      { credential: 'bob', forceRefresh: true },
    ]);
    const refused = report.steps[4]!;
    expect(refused.detail).toMatch(/^XOAUTH2 as bob@example\.test: AUTH XOAUTH2: -ERR \[AUTH\] .*\(XOAUTH2 status \{"status":"401"/);
    expect(refused.explanation!.meaning).toMatch(/rejected the access token: invalid or expired token, or wrong scope/);
    expect(refused.explanation!.fix).toContain('mailgate credential authorize bob');
    expect(report.steps[6]!.detail).toBe('XOAUTH2 as bob@example.test (refreshed token, second attempt): +OK');
    expect(JSON.stringify(report)).not.toContain('forged-token');
    expect(JSON.stringify(report)).not.toContain(bobToken);
  });

  it('fails after one refresh when the fresh token is refused too', async () => {
    const { deps, calls } = tokenSource(['forged-1', 'forged-2']);
    const report = await testPop3Server(pop3(), deps, { timeoutMs: 10_000 });
    expect(names(report).slice(3)).toEqual(['token:ok', 'auth:FAIL', 'token:ok', 'auth:FAIL']);
    expect(report.ok).toBe(false);
    expect(calls).toHaveLength(2);
  });
});

describe('explains the configuration mistakes', () => {
  it('security tls against the plain POP3 port: the tls step fails with "expects STLS"', async () => {
    const report = await testPop3Server(pop3({ security: 'tls' }), tokenSource([bobToken]).deps, { timeoutMs: 5000 });
    expect(names(report)).toEqual(['connect:ok', 'tls:FAIL']);
    expect(failed(report).detail).toMatch(/ERR_SSL_WRONG_VERSION_NUMBER|ERR_SSL_PACKET_LENGTH_TOO_LONG/);
    expect(failed(report).explanation!.meaning).toMatch(/speaks plain POP3 first .*it expects STLS, not implicit TLS/);
    expect(failed(report).explanation!.fix).toMatch(/^Set security: starttls/);
  });

  it('security starttls against the implicit-TLS port: no greeting, a TLS handshake works, so "expects implicit TLS"', async () => {
    const report = await testPop3Server(pop3({ port: bed.mail.ports.pop3s }), tokenSource([bobToken]).deps, { timeoutMs: 1000 });
    expect(names(report)).toEqual(['connect:FAIL']);
    expect(failed(report).detail).toMatch(/no POP3 greeting within 1000 ms; a TLS handshake on the same port succeeded/);
    expect(failed(report).explanation!.meaning).toMatch(/expects implicit TLS/);
    expect(failed(report).explanation!.fix).toMatch(/^Set security: tls/);
  });

  it('a self-signed certificate without tlsCa: the tls step says to add the CA as tlsCa', async () => {
    const report = await testPop3Server(pop3({ tlsCa: undefined }), tokenSource([bobToken]).deps, { timeoutMs: 5000 });
    expect(names(report)).toEqual(['connect:ok', 'tls:FAIL']);
    expect(failed(report).detail).toContain('DEPTH_ZERO_SELF_SIGNED_CERT');
    expect(failed(report).explanation!.fix).toMatch(/as tlsCa/);
  });

  it('nothing listening: the connect step fails with ECONNREFUSED explained', async () => {
    const port = await getFreePort();
    const report = await testPop3Server(pop3({ port }), tokenSource([bobToken]).deps, { timeoutMs: 5000 });
    expect(names(report)).toEqual(['connect:FAIL']);
    expect(report.ok).toBe(false);
    expect(failed(report).detail).toContain('ECONNREFUSED');
    expect(failed(report).explanation!.meaning).toBe(`Nothing listens on 127.0.0.1:${port} (connection refused).`);
  });

  it('an IMAP port is not POP3', async () => {
    const report = await testPop3Server(pop3({ port: bed.mail.ports.imap, security: 'none' }), noTokens, { timeoutMs: 5000 });
    expect(names(report)).toEqual(['connect:FAIL']);
    expect(failed(report).detail).toMatch(/not a POP3 greeting: "\* OK/);
    expect(failed(report).explanation!.meaning).toMatch(/does not speak POP3/);
  });
});

describe('the explanation table', () => {
  const office = { host: 'outlook.office365.com', port: 995, security: 'tls', username: 'alarms@contoso.com', credential: 'm365' } as const;
  const gmail = { host: 'pop.gmail.com', port: 995, security: 'tls' } as const;

  it("explains Microsoft 365's code-less refusal with Set-CASMailbox -PopEnabled $true and the POP scope", () => {
    const e = explainPop3Failure({ ...office, code: 'POP3_AUTH_FAILED', mechanism: 'XOAUTH2', serverText: 'Authentication failure: unknown user name or bad password.' });
    expect(e.meaning).toMatch(/POP disabled for the mailbox/);
    expect(e.fix).toContain('Set-CASMailbox -Identity alarms@contoso.com -PopEnabled $true');
    expect(e.fix).toContain('https://outlook.office.com/POP.AccessAsUser.All');
    expect(e.fix).toContain('mailgate credential authorize m365');
  });

  it("explains Gmail's POP-disabled refusal with the Gmail setting", () => {
    const e = explainPop3Failure({ ...gmail, code: 'POP3_AUTH_FAILED', responseCode: 'SYS/PERM', serverText: 'Your account is not enabled for POP access. Please visit your Gmail settings page and enable your account for POP access.' });
    expect(e.fix).toMatch(/Forwarding and POP\/IMAP → POP download: Enable POP/);
  });

  it('explains the RFC 3206 codes: a locked mailbox and a temporary failure', () => {
    expect(explainPop3Failure({ ...gmail, code: 'POP3_AUTH_FAILED', responseCode: 'IN-USE' }).meaning).toMatch(/locked by another POP3 session/);
    expect(explainPop3Failure({ ...gmail, code: 'POP3_AUTH_FAILED', responseCode: 'SYS/TEMP' }).fix).toMatch(/^Retry later/);
  });

  it('decides the 110/995 pairing by code, and by OpenSSL text only when no code came', () => {
    expect(explainPop3Failure({ host: 'mail.example.com', port: 110, security: 'tls', code: 'ERR_SSL_WRONG_VERSION_NUMBER' }).fix).toMatch(/^Set security: starttls for this server \(port 110 is POP3 with STLS\)/);
    expect(explainPop3Failure({ host: 'mail.example.com', port: 110, security: 'tls', tlsReason: 'packet length too long' }).fix).toMatch(/^Set security: starttls/);
    expect(explainPop3Failure({ host: 'mail.example.com', port: 995, security: 'starttls', code: 'POP3_TIMEOUT', during: 'greeting' }).meaning).toMatch(/port 995 is "pop3s"/);
  });
});
