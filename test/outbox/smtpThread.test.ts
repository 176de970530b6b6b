// The outbox's SMTP thread (SmtpTransports): sends cross to the thread and back with the server's reply, errors keep what classifySendError reads, a token error stays the token manager's own, and a thread stopped mid-send loses nothing.
import { afterEach, describe, expect, it } from 'vitest';
import { SMTPServer } from 'smtp-server';
import { ErrorCode, MailgateError, isMailgateError } from '../../src/errors.js';
import { classifySendError } from '../../src/outbox/smtpErrors.js';
import { SmtpTransports } from '../../src/outbox/transports.js';
import { Secret } from '../../src/secrets/secret.js';
import type { ResolvedServer } from '../../src/servers/model.js';
import type { TokenManager } from '../../src/tokens/tokenManager.js';
import { getFreePort } from '../testbed/ports.js';
import { startLimitSink, type LimitSink } from '../support/limitSink.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The token manager's one method the transports use. These tests are about the thread, not about tokens (test/outbox/send.test.ts sends with real ones). */
function tokenSource(get: (credential: string, forceRefresh: boolean) => Promise<string>): TokenManager {
  return {
    getAccessToken: async (credential: string, options: { forceRefresh?: boolean } = {}) => ({ accessToken: new Secret(await get(credential, options.forceRefresh ?? false)), expiresAt: new Date(Date.now() + 3_600_000).toISOString() }),
  } as unknown as TokenManager;
}

function server(port: number, auth: ResolvedServer['auth'] = { type: 'none' }): ResolvedServer {
  return { name: 'sink', protocol: 'smtp', host: '127.0.0.1', port, security: 'none', username: 'alerts@example.com', auth, tlsCa: undefined, tlsRejectUnauthorized: true };
}

async function sink(): Promise<LimitSink> {
  const started = await startLimitSink();
  cleanups.push(() => started.stop());
  return started;
}

function transports(tokens = tokenSource(async () => 'unused')): SmtpTransports {
  const created = new SmtpTransports(tokens, 3);
  cleanups.push(() => created.closeAll());
  return created;
}

const mail = (subject: string) => ({ from: 'alerts@example.com', to: ['ops@example.com', 'dev@example.com'], subject, text: 'hello' });

describe('SMTP thread', () => {
  it('sends in its own thread and answers with the final reply, for built and for raw messages', async () => {
    const peer = await sink();
    const smtp = transports();
    const built = await smtp.send(server(peer.port), mail('built'));
    expect(built.response).toMatch(/^250 /);
    expect(built.rejected).toEqual([]);
    const raw = Buffer.from('From: alerts@example.com\r\nTo: ops@example.com\r\nSubject: raw\r\nMessage-ID: <raw@example.com>\r\n\r\nbody\r\n');
    await smtp.send(server(peer.port), { envelope: { from: 'alerts@example.com', to: ['ops@example.com'] }, raw });
    expect(peer.arrivals.map((a) => [a.subject, a.recipients])).toEqual([['built', 2], ['raw', 1]]);
    expect(peer.arrivals[1]!.messageId).toBe('<raw@example.com>');
  });

  it('brings a refusal back with the code, reply and recipients that classifySendError reads', async () => {
    const peer = await sink();
    peer.throttle('alerts@example.com', { code: 550, message: '5.4.5 Daily user sending limit exceeded' });
    const err = await transports().send(server(peer.port), mail('refused')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).toMatchObject({ code: 'EMESSAGE', responseCode: 550 });
    const failure = classifySendError(err);
    expect(failure).toMatchObject({ kind: 'throttled', limit: 'messagesPerDay', responseCode: 550 });
    expect(failure.response).toContain('5.4.5');
  });

  it('asks the main thread for the XOAUTH2 token at login, and a token error reaches the outbox as the token manager raised it', async () => {
    const logins: string[] = [];
    const port = await getFreePort();
    const xoauth = new SMTPServer({
      authMethods: ['XOAUTH2'],
      disabledCommands: ['STARTTLS'],
      allowInsecureAuth: true,
      logger: false,
      onAuth(auth, _session, callback) {
        logins.push(`${auth.username}:${auth.accessToken}`);
        callback(null, { user: auth.username });
      },
      onData(stream, _session, callback) {
        stream.resume();
        stream.on('end', () => callback());
      },
    });
    await new Promise<void>((resolve) => xoauth.listen(port, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => xoauth.close(() => resolve(undefined))));
    let dead = false;
    const smtp = transports(
      tokenSource(async (credential) => {
        if (dead) throw new MailgateError(ErrorCode.CREDENTIAL_NEEDS_REAUTHORIZATION, `credential ${credential} must be connected again`);
        return `token-of-${credential}`;
      }),
    );
    const oauth = { ...server(port, { type: 'oauth2', credential: 'm365' }) };
    await smtp.send(oauth, mail('with a token'));
    expect(logins).toEqual(['alerts@example.com:token-of-m365']);
    // A new pool (settings changed) logs in again, and this time the token manager refuses.
    dead = true;
    const err = await smtp.send({ ...oauth, tlsRejectUnauthorized: false }, mail('no token')).catch((e: unknown) => e);
    expect(isMailgateError(err, ErrorCode.CREDENTIAL_NEEDS_REAUTHORIZATION)).toBe(true);
    expect(classifySendError(err).kind).toBe('server');
  });

  it('fails a send interrupted by closing as a lost connection (retried, not failed), and the next send starts a new thread', async () => {
    const peer = await sink();
    const port = await getFreePort();
    let hold: (() => void) | undefined;
    const slow = new SMTPServer({
      authOptional: true,
      // Its held session's client is gone; closing need not wait the default 30 s for it.
      closeTimeout: 100,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData(stream, _session, callback) {
        stream.resume();
        stream.on('end', () => (hold = () => callback()));
      },
    });
    await new Promise<void>((resolve) => slow.listen(port, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => slow.close(() => resolve(undefined))));
    const smtp = transports();
    const sending = smtp.send(server(port), mail('held')).catch((e: unknown) => e);
    while (!hold) await new Promise((resolve) => setTimeout(resolve, 10));
    await smtp.closeAll();
    const err = await sending;
    expect(err).toMatchObject({ code: 'ECONNECTION' });
    expect(classifySendError(err).kind).toBe('transient');
    hold();
    expect((await smtp.send(server(peer.port), mail('after'))).response).toMatch(/^250 /);
  });
});
