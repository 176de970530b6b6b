// Proves the test bed itself: tokens from the test authorization server (real PKCE code flow through its login
// page) open IMAP, POP3 and submission at a real Dovecot, bad tokens do not, and the Microsoft and Google
// layouts behave like the real services where the gateway depends on it.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEVICE_CODE_GRANT, type TestClient } from './authServer.js';
import { startMailServer } from './mailServer.js';
import { approveDeviceAtProvider, obtainTokens, postTokenRequest, requestTokens, signInAtProvider, type TokenResponse } from './providerLogin.js';
import { probeSaslLogin, type MailProtocol, type SaslMechanism } from './saslProbe.js';
import { useTestbed } from './useTestbed.js';

// Always async: the authorization server runs in this process, and a blocked event loop cannot answer
// Dovecot's introspection requests.
const run = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Dovecot writes its log through its own log process: on a machine busy with the whole suite a line can take seconds. */
async function eventually<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const bed = useTestbed();
let alice: TokenResponse;
let bob: TokenResponse;

beforeAll(async () => {
  [alice, bob] = await Promise.all([
    obtainTokens(bed.auth, { user: bed.auth.users.alice, layout: 'microsoft' }),
    obtainTokens(bed.auth, { user: bed.auth.users.bob, layout: 'microsoft' }),
  ]);
});

const portOf = (protocol: MailProtocol) => ({ imap: bed.mail.ports.imap, pop3: bed.mail.ports.pop3, smtp: bed.mail.ports.submission })[protocol];
const LOGIN_SERVICE = { imap: 'imap-login', pop3: 'pop3-login', smtp: 'submission-login' } as const;

describe('a token from the authorization server logs in to Dovecot', () => {
  const cases = (['XOAUTH2', 'OAUTHBEARER'] as SaslMechanism[]).flatMap((mechanism) =>
    (['imap', 'pop3', 'smtp'] as MailProtocol[]).map((protocol) => ({ mechanism, protocol })),
  );

  it.each(cases)('with $mechanism over $protocol', async ({ mechanism, protocol }) => {
    const result = await probeSaslLogin({ protocol, port: portOf(protocol), mechanism, user: 'alice@example.test', token: alice.access_token });

    expect(result.ok, result.transcript.join('\n')).toBe(true);
    // Dovecot's own record of the mechanism: the client did not silently fall back to another one
    const line = `${LOGIN_SERVICE[protocol]}: Info: Login: user=<alice@example.test>, method=${mechanism}`;
    await eventually(async () => (bed.mail.logs().includes(line) ? true : undefined), `"${line}" in the Dovecot log`);
  });

  it('over implicit TLS and STARTTLS, the certificate verified against the bed CA', async () => {
    const common = { user: 'alice@example.test', token: alice.access_token, mechanism: 'XOAUTH2' as const, ca: bed.mail.caPem };
    const results = await Promise.all([
      probeSaslLogin({ ...common, protocol: 'imap', port: bed.mail.ports.imaps, security: 'tls' }),
      probeSaslLogin({ ...common, protocol: 'pop3', port: bed.mail.ports.pop3s, security: 'tls' }),
      probeSaslLogin({ ...common, protocol: 'imap', port: bed.mail.ports.imap, security: 'starttls' }),
      probeSaslLogin({ ...common, protocol: 'smtp', port: bed.mail.ports.submission, security: 'starttls' }),
    ]);
    for (const r of results) expect(r.ok, r.transcript.join('\n')).toBe(true);
  });

  it('with curl --oauth2-bearer over IMAP, and over submission with STARTTLS and --cacert', async () => {
    const imap = await run('curl', ['-sS', '--url', `imap://127.0.0.1:${bed.mail.ports.imap}/INBOX`, '--user', 'alice@example.test',
      '--oauth2-bearer', alice.access_token, '-X', 'EXAMINE INBOX']);
    expect(imap.stdout).toMatch(/UIDVALIDITY/);

    const subject = `curl check ${randomBytes(4).toString('hex')}`;
    const ca = join(bed.mail.dir, 'etc', 'cert.pem');
    await run('bash', ['-c', `printf 'From: alice@example.test\\r\\nTo: bob@example.test\\r\\nSubject: ${subject}\\r\\n\\r\\nhello\\r\\n' | curl -sS --ssl-reqd --cacert "${ca}" --url smtp://127.0.0.1:${bed.mail.ports.submission} --user alice@example.test --oauth2-bearer "$TOKEN" --mail-from alice@example.test --mail-rcpt bob@example.test --upload-file -`], {
      env: { ...process.env, TOKEN: alice.access_token },
    });
    expect(bed.mail.sink.received.some((m) => m.raw.toString().includes(subject))).toBe(true);
  });
});

describe('Dovecot refuses', () => {
  it('a forged token', async () => {
    const result = await probeSaslLogin({ protocol: 'imap', port: bed.mail.ports.imap, mechanism: 'XOAUTH2', user: 'alice@example.test', token: randomBytes(32).toString('base64url') });
    expect(result.ok).toBe(false);
    expect(result.reply).toMatch(/AUTHENTICATIONFAILED/);
    expect(JSON.parse(result.saslError ?? '{}')).toMatchObject({ status: expect.any(String) });
  });

  it("bob's token presented as alice", async () => {
    const result = await probeSaslLogin({ protocol: 'smtp', port: bed.mail.ports.submission, mechanism: 'OAUTHBEARER', user: 'alice@example.test', token: bob.access_token });
    expect(result.ok).toBe(false);
    expect(result.reply).toMatch(/^535/);
    await eventually(async () => (bed.mail.logs().includes("Username 'alice@example.test' did not match 'bob@example.test'") ? true : undefined), 'the mismatch in the log');
  });

  it('a refresh token presented as a bearer token', async () => {
    const result = await probeSaslLogin({ protocol: 'pop3', port: bed.mail.ports.pop3, mechanism: 'XOAUTH2', user: 'alice@example.test', token: alice.refresh_token! });
    expect(result.ok).toBe(false);
    expect(result.reply).toMatch(/^-ERR/);
  });

  it('an access token once it has expired', async () => {
    const shortLived = bed.auth.addClient({ clientId: 'short-lived', clientSecret: 'short-secret', redirectUris: ['http://127.0.0.1:9/cb'], accessTokenTtl: 2 });
    const tokens = await obtainTokens(bed.auth, { user: bed.auth.users.alice, layout: 'microsoft', client: shortLived });
    const issuedAt = Date.now();
    expect(tokens.expires_in).toBe(2);
    const login = () => probeSaslLogin({ protocol: 'imap', port: bed.mail.ports.imap, mechanism: 'XOAUTH2', user: 'alice@example.test', token: tokens.access_token });

    expect((await login()).ok).toBe(true);
    await sleep(Math.max(0, issuedAt + 3100 - Date.now())); // exp has whole-second precision: 2 s TTL ends within 3 s
    expect((await login()).ok).toBe(false);
  });
});

describe('mail submitted with a token', () => {
  it("lands in bob's Maildir and is read back over IMAP and POP3", async () => {
    const subject = `bed proof ${randomBytes(4).toString('hex')}`;
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: bed.mail.ports.submission,
      secure: false,
      tls: { ca: bed.mail.caPem },
      auth: { type: 'OAuth2', user: 'alice@example.test', accessToken: alice.access_token },
    });
    const info = await transport.sendMail({ from: 'alice@example.test', to: 'bob@example.test', subject, text: 'sent through the bed' });
    transport.close();
    expect(info.accepted).toEqual(['bob@example.test']);

    const newDir = join(bed.mail.maildir('bob@example.test'), 'new');
    await eventually(async () => {
      for (const file of await readdir(newDir).catch(() => [])) {
        if ((await readFile(join(newDir, file), 'utf8')).includes(`Subject: ${subject}`)) return true;
      }
      return undefined;
    }, 'the message file in Maildir/new');

    const imap = new ImapFlow({ host: '127.0.0.1', port: bed.mail.ports.imap, secure: false, doSTARTTLS: false, logger: false, auth: { user: 'bob@example.test', accessToken: bob.access_token } });
    await imap.connect();
    try {
      await imap.mailboxOpen('INBOX');
      const uids = await imap.search({ subject }, { uid: true });
      expect(uids).toHaveLength(1);
      const message = await imap.fetchOne(String((uids as number[])[0]), { envelope: true }, { uid: true });
      expect(message && message.envelope?.subject).toBe(subject);
    } finally {
      await imap.logout();
    }

    const pop3 = `pop3://127.0.0.1:${bed.mail.ports.pop3}/`;
    const popAuth = ['--user', 'bob@example.test', '--oauth2-bearer', bob.access_token];
    const list = await run('curl', ['-sS', '--url', pop3, ...popAuth]);
    const last = list.stdout.trim().split('\n').at(-1)!.split(' ')[0]!;
    const retrieved = await run('curl', ['-sS', '--url', pop3 + last, ...popAuth]);
    expect(retrieved.stdout).toContain(`Subject: ${subject}`);
  });

  it('gets a 5xx at submission for a recipient the sink is told to reject', async () => {
    bed.mail.sink.rejectRecipients.add('nobody@example.test');
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: bed.mail.ports.submission,
      secure: false,
      tls: { ca: bed.mail.caPem },
      auth: { type: 'OAuth2', user: 'alice@example.test', accessToken: alice.access_token },
    });
    try {
      await expect(transport.sendMail({ from: 'alice@example.test', to: 'nobody@example.test', subject: 'x', text: 'x' })).rejects.toMatchObject({
        responseCode: 550,
        rejected: ['nobody@example.test'],
      });
    } finally {
      transport.close();
      bed.mail.sink.rejectRecipients.delete('nobody@example.test');
    }
  });

  it('is delivered straight into a mailbox by deliver() (inbound mail)', async () => {
    const reply = await bed.mail.deliver('From: outside@example.test\r\nSubject: inbound\r\n\r\nhi\r\n', 'alice@example.test');
    expect(reply).toMatch(/^250 .*Saved/);
  });
});

describe('the Microsoft layout', () => {
  const ms = () => bed.auth.microsoft;

  it('grants the URL-shaped scopes and puts who signed in into the ID token', () => {
    expect(alice.scope?.split(' ')).toEqual(expect.arrayContaining([ms().scopes.imap, ms().scopes.pop3, ms().scopes.smtp]));
    const idToken = JSON.parse(Buffer.from(alice.id_token!.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    expect(idToken).toMatchObject({ email: 'alice@example.test', preferred_username: 'alice@example.test' });
  });

  it('rotates the refresh token, and the old one then gets invalid_grant with error_codes', async () => {
    const first = await obtainTokens(bed.auth, { user: bed.auth.users.alice, layout: 'microsoft' });
    const refreshed = await requestTokens(ms().tokenUrl, bed.auth.testClient, { grant_type: 'refresh_token', refresh_token: first.refresh_token! });
    expect(refreshed.refresh_token).toEqual(expect.any(String));
    expect(refreshed.refresh_token).not.toBe(first.refresh_token);
    expect((await probeSaslLogin({ protocol: 'imap', port: bed.mail.ports.imap, mechanism: 'XOAUTH2', user: 'alice@example.test', token: refreshed.access_token })).ok).toBe(true);

    const reused = await postTokenRequest(ms().tokenUrl, bed.auth.testClient, { grant_type: 'refresh_token', refresh_token: first.refresh_token! });
    expect(reused.status).toBe(400);
    expect(reused.body).toMatchObject({ error: 'invalid_grant', error_codes: [expect.any(Number)] });
    expect(reused.body.error_description).toMatch(/^AADSTS\d+: /);
  });

  it('answers refresh with invalid_grant and AADSTS700082 after the user revoked the grant', async () => {
    const tokens = await obtainTokens(bed.auth, { user: bed.auth.users.bob, layout: 'microsoft' });
    expect(bed.auth.revokeGrants('bob@example.test', { clientId: bed.auth.testClient.clientId })).toBeGreaterThan(0);
    const reply = await postTokenRequest(ms().tokenUrl, bed.auth.testClient, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! });
    expect(reply).toMatchObject({ status: 400, body: { error: 'invalid_grant', error_codes: [700082] } });
  });

  it('issues an app-only token for client_credentials with the .default scope', async () => {
    const reply = await requestTokens(ms().tokenUrl, bed.auth.testClient, { grant_type: 'client_credentials', scope: ms().scopes.appOnly });
    expect(reply).toMatchObject({ token_type: 'Bearer', scope: ms().scopes.appOnly });
    expect(reply.refresh_token).toBeUndefined();
  });

  it('refuses the old client secret after rotation (AADSTS7000215) and an expired one (AADSTS7000222)', async () => {
    const client: TestClient = bed.auth.addClient({ clientId: 'rotating', clientSecret: 'old-secret' });
    bed.auth.setClientSecret('rotating', 'new-secret');
    const params = { grant_type: 'client_credentials', scope: ms().scopes.appOnly };
    const old = await postTokenRequest(ms().tokenUrl, client, params);
    expect(old).toMatchObject({ status: 401, body: { error: 'invalid_client', error_codes: [7000215] } });
    expect((await postTokenRequest(ms().tokenUrl, { ...client, clientSecret: 'new-secret' }, params)).status).toBe(200);

    bed.auth.expireClientSecret('rotating');
    const expired = await postTokenRequest(ms().tokenUrl, { ...client, clientSecret: 'new-secret' }, params);
    expect(expired).toMatchObject({ status: 401, body: { error: 'invalid_client', error_codes: [7000222] } });
  });

  it('runs the device code flow', async () => {
    const start = await fetch(ms().deviceAuthorizationUrl, {
      method: 'POST',
      body: new URLSearchParams({ client_id: bed.auth.testClient.clientId, client_secret: bed.auth.testClient.clientSecret, scope: `openid offline_access ${ms().scopes.imap}` }),
    });
    const device = (await start.json()) as { device_code: string; verification_uri_complete: string };
    expect(start.status).toBe(200);
    await approveDeviceAtProvider(device.verification_uri_complete, { login: 'alice@example.test', password: 'alice-pw' });
    const tokens = await requestTokens(ms().tokenUrl, bed.auth.testClient, { grant_type: DEVICE_CODE_GRANT, device_code: device.device_code });
    expect(tokens.refresh_token).toEqual(expect.any(String));
    expect((await probeSaslLogin({ protocol: 'imap', port: bed.mail.ports.imap, mechanism: 'OAUTHBEARER', user: 'alice@example.test', token: tokens.access_token })).ok).toBe(true);
  });
});

describe('the Google layout', () => {
  it('refreshes without a new refresh token, and refuses refresh with invalid_grant once revoked', async () => {
    const google = bed.auth.google;
    const tokens = await obtainTokens(bed.auth, { user: bed.auth.users.alice, layout: 'google' });
    expect(tokens.scope).toBe('https://mail.google.com/');
    const refresh = { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! };

    const refreshed = await requestTokens(google.tokenUrl, bed.auth.testClient, refresh);
    expect(refreshed.access_token).not.toBe(tokens.access_token);
    expect(refreshed).not.toHaveProperty('refresh_token');
    // no rotation: the same refresh token keeps working
    expect((await postTokenRequest(google.tokenUrl, bed.auth.testClient, refresh)).status).toBe(200);

    const revoked = await fetch(google.revocationUrl, { method: 'POST', body: new URLSearchParams({ token: tokens.refresh_token! }) });
    expect(revoked.status).toBe(200);
    expect(await postTokenRequest(google.tokenUrl, bed.auth.testClient, refresh)).toMatchObject({
      status: 400,
      body: { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' },
    });
  });
});

describe('the authorization server', () => {
  it('refuses a wrong password on its login page', async () => {
    const url = new URL(bed.auth.authorizationUrl);
    url.search = new URLSearchParams({ client_id: bed.auth.testClient.clientId, response_type: 'code', redirect_uri: bed.auth.testClient.redirectUri,
      scope: 'openid', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' }).toString();
    await expect(signInAtProvider(url, { login: 'alice@example.test', password: 'wrong' })).rejects.toMatchObject({ code: 'TESTBED_LOGIN_FLOW_FAILED' });
  });

  it('can be suspended (down, logins cannot be checked) and resumed with its state intact', async () => {
    const token = (await obtainTokens(bed.auth, { user: bed.auth.users.alice, layout: 'microsoft' })).access_token;
    const login = () => probeSaslLogin({ protocol: 'imap', port: bed.mail.ports.imap, mechanism: 'XOAUTH2', user: 'alice@example.test', token });

    await bed.auth.suspend();
    try {
      await expect(fetch(bed.auth.discoveryUrl)).rejects.toThrow();
      expect((await login()).ok).toBe(false);
    } finally {
      await bed.auth.resume();
    }
    expect((await fetch(bed.auth.discoveryUrl)).status).toBe(200);
    expect((await login()).ok).toBe(true);
  });
});

describe('a mail server offering only XOAUTH2', () => {
  let xoauth2Only: Awaited<ReturnType<typeof startMailServer>>;
  beforeAll(async () => {
    xoauth2Only = await startMailServer({ ...bed.auth.introspection, mechanisms: ['xoauth2'] });
  });
  afterAll(async () => {
    await xoauth2Only?.stop();
  });

  it('makes imapflow log in with XOAUTH2, and still takes the password user with LOGIN', async () => {
    const withToken = new ImapFlow({ host: '127.0.0.1', port: xoauth2Only.ports.imap, secure: false, doSTARTTLS: false, logger: false, auth: { user: 'alice@example.test', accessToken: alice.access_token } });
    await withToken.connect();
    await withToken.logout();
    await eventually(async () => (xoauth2Only.logs().includes('Login: user=<alice@example.test>, method=XOAUTH2') ? true : undefined), 'an XOAUTH2 login in the log');

    const { email, password } = xoauth2Only.passwordUser;
    const withPassword = new ImapFlow({ host: '127.0.0.1', port: xoauth2Only.ports.imap, secure: false, doSTARTTLS: false, logger: false, auth: { user: email, pass: password } });
    await withPassword.connect();
    await withPassword.logout();
    await expect(
      new ImapFlow({ host: '127.0.0.1', port: xoauth2Only.ports.imap, secure: false, doSTARTTLS: false, logger: false, auth: { user: 'alice@example.test', pass: 'alice-pw' } }).connect(),
    ).rejects.toMatchObject({ authenticationFailed: true });
  });
});
