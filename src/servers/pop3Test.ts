// The POP3 server test: connect, TLS (implicit or STLS), CAPA, token, login (an OAuth2 token refreshed once if
// refused) and a look at the mailbox (STAT, UIDL), each step timed and, on failure, explained. Reads no message and
// deletes nothing: it ends with QUIT after no DELE.
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import tls from 'node:tls';
import { ErrorCode, MailgateError, isMailgateError } from '../errors.js';
import { Pop3Client, type Pop3Capabilities } from '../inbound/pop3/client.js';
import { isPop3Error, Pop3ErrorCode } from '../inbound/pop3/errors.js';
import { explainPop3Failure, Pop3TestCode, type Pop3Explanation, type Pop3FailureFacts } from '../inbound/pop3/explanations.js';
import type { ResolvedServer } from './model.js';
import type { SmtpTestDeps } from './smtpTest.js';

export type Pop3TestStepName = 'connect' | 'tls' | 'capabilities' | 'token' | 'auth' | 'mailbox';

/** The shape of smtpTest's ServerTestStep, with POP3's step names. */
export interface Pop3TestStep {
  name: Pop3TestStepName;
  ok: boolean;
  ms: number;
  /** What happened, from the server's replies; never a token or password. */
  detail: string;
  /** On failure: what it means and what to do. */
  explanation?: Pop3Explanation;
}

export interface Pop3TestReport {
  server: string;
  /** true when the server can be used as configured (an auth refusal that a refreshed token then fixed does not count). */
  ok: boolean;
  steps: Pop3TestStep[];
  totalMs: number;
}

/** TokenManager#getAccessToken fits, as for the SMTP test. */
export type Pop3TestDeps = SmtpTestDeps;

export interface Pop3TestOptions {
  /** Deadline of each network wait: connect, handshake, every response (default 20 s). */
  timeoutMs?: number;
  /** Called as each step completes, so a UI can show them live. */
  onStep?: (step: Pop3TestStep) => void;
}

const DEFAULT_TIMEOUT_MS = 20_000;
/** The implicit-TLS probe after a missing greeting only needs a ServerHello. */
const TLS_PROBE_TIMEOUT_MS = 5_000;

/** A failed step, with the facts the explanation is chosen by. */
class StepFailure extends Error {
  constructor(
    message: string,
    readonly facts: Partial<Pop3FailureFacts> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StepFailure';
  }
}

function failureOf(err: unknown): StepFailure {
  if (err instanceof StepFailure) return err;
  if (isPop3Error(err)) {
    return new StepFailure(
      err.message,
      {
        // Node's and OpenSSL's code is the more specific fact (ECONNREFUSED rather than POP3_CONNECT_FAILED)
        code: err.socketCode ?? err.code,
        ...(err.during ? { during: err.during } : {}),
        ...(err.responseCode ? { responseCode: err.responseCode } : {}),
        ...(err.serverText ? { serverText: err.serverText } : {}),
        ...(err.xoauth2?.status ? { xoauth2Status: err.xoauth2.status } : {}),
        ...(err.xoauth2?.scope ? { xoauth2Scope: err.xoauth2.scope } : {}),
        ...(err.tlsReason ? { tlsReason: err.tlsReason } : {}),
      },
      { cause: err },
    );
  }
  if (isMailgateError(err)) return new StepFailure(err.message, { code: err.code }, { cause: err });
  return new StepFailure(`unexpected failure: ${err instanceof Error ? err.message : String(err)}`, {}, { cause: err });
}

/** Whether the port completes a TLS handshake: tells "expects implicit TLS" from "silent server". Sends no credentials. */
function speaksTls(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host, port, rejectUnauthorized: false, ...(net.isIP(host) ? {} : { servername: host }) });
    const done = (result: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('secureConnect', () => done(true));
    socket.on('error', () => done(false));
  });
}

function describeTls(socket: tls.TLSSocket, server: ResolvedServer): string {
  const cert = socket.getPeerCertificate(true);
  const name = (dict: tls.Certificate | undefined) => [dict?.CN, dict?.O].flat().find((v) => typeof v === 'string' && v !== '') ?? 'an unnamed subject';
  const selfSigned = cert.issuerCertificate === undefined || cert.issuerCertificate.fingerprint256 === cert.fingerprint256;
  const parts = [
    `${socket.getProtocol() ?? 'TLS'} ${socket.getCipher().name}`,
    `certificate for ${name(cert.subject)}${cert.subjectaltname ? ` (${cert.subjectaltname})` : ''} issued by ${name(cert.issuer)}${selfSigned ? ' (self-signed)' : ''}, valid until ${cert.valid_to}`,
  ];
  if (socket.authorized) parts.push(server.tlsCa ? "verified (trusting the server's tlsCa besides the system CAs)" : 'verified');
  else {
    parts.push(
      `WARNING: certificate NOT verified (tlsRejectUnauthorized: false${socket.authorizationError ? `; verification fails with ${String(socket.authorizationError)}` : ''}): anyone on the path could impersonate the server and read the credentials`,
    );
  }
  return parts.join(', ');
}

function describeCapabilities(caps: Pop3Capabilities): string {
  if (!caps.supported) return 'CAPA not supported (an RFC 1939-only server): mechanisms and UIDL unknown until tried';
  const shown = caps.lines.filter((l) => !/^SASL(\s|$)/i.test(l));
  return `server offers ${[caps.sasl.length > 0 ? `SASL ${caps.sasl.join(' ')}` : 'no SASL', ...shown].join(', ')}`;
}

const isLoopback = (address: string | undefined) => address !== undefined && (address === '::1' || /^(::ffff:)?127\./.test(address));

/** Ends the test at a failed step; the step is recorded already. */
const STOP = Symbol('stop');

/**
 * Tests a POP3 server as configured: the steps a watcher takes, each timed and explained on failure. Network and
 * server failures are reported as failed steps, never thrown; only a server that is not POP3 throws (INPUT_INVALID).
 */
export async function testPop3Server(server: ResolvedServer, deps: Pop3TestDeps, options: Pop3TestOptions = {}): Promise<Pop3TestReport> {
  if (server.protocol !== 'pop3') {
    throw new MailgateError(ErrorCode.INPUT_INVALID, `server ${server.name} is ${server.protocol}, not pop3: only POP3 servers can be tested this way`);
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const credential = server.auth.type === 'oauth2' ? server.auth.credential : undefined;
  const baseFacts: Pop3FailureFacts = {
    host: server.host,
    port: server.port,
    security: server.security,
    ...(server.username ? { username: server.username } : {}),
    ...(credential ? { credential } : {}),
  };
  const started = performance.now();
  const steps: Pop3TestStep[] = [];

  const record = (step: Pop3TestStep) => {
    steps.push(step);
    try {
      options.onStep?.(step);
    } catch {
      // an observer that throws (a closed stream) must not abort the test or leak the socket
    }
  };

  /** Runs one step; records it; on failure returns the failure instead of throwing. */
  const attempt = async <T>(name: Pop3TestStepName, run: () => Promise<{ detail: string; value: T }>): Promise<{ ok: true; value: T } | { ok: false; failure: StepFailure }> => {
    const t0 = performance.now();
    try {
      const { detail, value } = await run();
      record({ name, ok: true, ms: Math.round(performance.now() - t0), detail });
      return { ok: true, value };
    } catch (err) {
      const failure = failureOf(err);
      record({ name, ok: false, ms: Math.round(performance.now() - t0), detail: failure.message, explanation: explainPop3Failure({ ...baseFacts, ...failure.facts }) });
      return { ok: false, failure };
    }
  };
  const must = async <T>(name: Pop3TestStepName, run: () => Promise<{ detail: string; value: T }>): Promise<T> => {
    const result = await attempt(name, run);
    if (!result.ok) throw STOP;
    return result.value;
  };

  let client: Pop3Client | undefined;
  let ok = false;
  try {
    const connectOptions = { host: server.host, port: server.port, security: server.security, tlsCa: server.tlsCa, tlsRejectUnauthorized: server.tlsRejectUnauthorized, timeoutMs };
    const greet = async (active: Pop3Client) => {
      try {
        return await active.readGreeting();
      } catch (err) {
        if (isPop3Error(err, Pop3ErrorCode.POP3_TIMEOUT) && err.during === 'greeting' && server.security !== 'tls') {
          if (await speaksTls(server.host, server.port, Math.min(timeoutMs, TLS_PROBE_TIMEOUT_MS))) {
            throw new StepFailure(`${err.message}; a TLS handshake on the same port succeeded`, { ...failureOf(err).facts, peerSpeaksTls: true }, { cause: err });
          }
        }
        throw err;
      }
    };

    const active = await must('connect', async () => {
      client = await Pop3Client.openTcp(connectOptions);
      const remote = client.socket.remoteAddress;
      let detail = `connected to ${server.host}:${server.port}${remote && remote !== server.host ? ` (${remote})` : ''}`;
      // with implicit TLS the greeting comes inside TLS: the tls step reads it
      if (server.security !== 'tls') detail += `; greeting +OK ${await greet(client)}`;
      if (server.security === 'none') {
        detail += isLoopback(remote) ? '; security: none (plaintext, acceptable on loopback only)' : '; security: none: credentials and mail would travel in clear; use starttls or tls';
      }
      return { detail, value: client };
    });

    if (server.security === 'tls') {
      await must('tls', async () => {
        const socket = await active.startImplicitTls();
        const greeting = await greet(active);
        return { detail: `${describeTls(socket, server)}; greeting +OK ${greeting}`, value: socket };
      });
    } else if (server.security === 'starttls') {
      await must('tls', async () => {
        const before = await active.capabilities();
        // RFC 2595 §4: STLS is announced in CAPA; a server without CAPA may still know it, so only a listing without it stops here
        if (before.supported && !before.stls) throw new StepFailure('the server does not offer STLS (not in CAPA)', { code: Pop3TestCode.STLS_NOT_OFFERED });
        const socket = await active.startTls();
        return { detail: `STLS; ${describeTls(socket, server)}`, value: socket };
      });
    }

    const caps = await must('capabilities', async () => {
      const found = await active.capabilities();
      let detail = describeCapabilities(found);
      if (server.security === 'none' && found.stls) detail += '; STLS is offered: security: starttls would protect the credentials';
      return { detail, value: found };
    });

    const user = server.username;
    const auth = server.auth;
    const mechanism = auth.type === 'oauth2' ? 'XOAUTH2' : auth.type === 'password' ? (caps.supported && !caps.user && caps.sasl.includes('PLAIN') ? 'PLAIN' : 'USER/PASS') : undefined;
    const precondition = (): StepFailure | undefined => {
      if (auth.type === 'none') return new StepFailure('no auth configured: POP3 always logs in', { code: Pop3TestCode.AUTH_REQUIRED });
      if (!user) return new StepFailure('no username configured', { code: Pop3TestCode.USERNAME_MISSING });
      if (auth.type === 'password' && !auth.password) return new StepFailure('no password stored', { code: Pop3TestCode.PASSWORD_MISSING });
      if (auth.type === 'oauth2' && caps.supported && !caps.sasl.includes('XOAUTH2')) {
        return new StepFailure(`the server offers ${caps.sasl.length > 0 ? `SASL ${caps.sasl.join(' ')}` : 'no SASL mechanisms'}, not XOAUTH2`, { code: Pop3TestCode.MECHANISM_NOT_OFFERED, mechanism: 'XOAUTH2' });
      }
      return undefined;
    };
    const problem = precondition();
    if (problem) {
      await must('auth', () => Promise.reject(problem));
    } else if (auth.type === 'password') {
      await must('auth', async () => {
        await active.authPassword(user!, auth.password).catch((err: unknown) => {
          const failure = failureOf(err);
          throw new StepFailure(`${mechanism} as ${user}: ${failure.message}`, { ...failure.facts, mechanism }, { cause: err });
        });
        return { detail: `${mechanism} as ${user}: +OK`, value: undefined };
      });
    } else if (auth.type === 'oauth2') {
      const fetchToken = (forceRefresh: boolean) =>
        must('token', async () => {
          const token = await deps.getAccessToken(auth.credential, forceRefresh ? { forceRefresh: true } : {});
          return {
            detail: `${forceRefresh ? 'refreshed access token' : 'access token'} of credential ${auth.credential}${token.expiresAt ? `, expires ${token.expiresAt}` : ''}`,
            value: token.accessToken,
          };
        });
      const tryAuth = (token: { reveal(): string }, label: string) =>
        attempt('auth', async () => {
          await active.authXOAuth2(user!, token.reveal()).catch((err: unknown) => {
            const failure = failureOf(err);
            throw new StepFailure(`XOAUTH2 as ${user}${label}: ${failure.message}`, { ...failure.facts, mechanism: 'XOAUTH2' }, { cause: err });
          });
          return { detail: `XOAUTH2 as ${user}${label}: +OK`, value: undefined };
        });
      const first = await tryAuth(await fetchToken(false), '');
      if (!first.ok) {
        // A token can be refused while Mailgate still thinks it valid (revoked, or issued before a scope change): one
        // forced refresh tells that apart from a configuration the provider refuses. After a refused AUTH the
        // session is still in the AUTHORIZATION state (RFC 5034 §4), so the retry needs no new connection.
        if (first.failure.facts.code !== Pop3ErrorCode.POP3_AUTH_FAILED) throw STOP;
        const second = await tryAuth(await fetchToken(true), ' (refreshed token, second attempt)');
        if (!second.ok) throw STOP;
      }
    }

    await must('mailbox', async () => {
      const { count, size } = await active.stat();
      const parts = [`${count} message${count === 1 ? '' : 's'}, ${size} octets`];
      // RFC 2449 §5: what CAPA lists after login is what counts in the TRANSACTION state
      const after = await active.capabilities();
      let uidl: boolean | undefined = after.supported ? after.uidl : undefined;
      if (count > 0) {
        uidl = await active.uidlOf(1).then(
          () => true,
          (err: unknown) => {
            if (isPop3Error(err, Pop3ErrorCode.POP3_ERR_RESPONSE)) return false;
            throw err;
          },
        );
      }
      parts.push(
        uidl === true
          ? 'UIDL supported'
          : uidl === false
            ? 'UIDL NOT supported: messages cannot be told apart across sessions, so a watcher on this server must delete each message after delivery'
            : 'UIDL unknown (empty mailbox, no CAPA)',
      );
      if (after.expire !== undefined) parts.push(`the server keeps retrieved mail ${after.expire === 'NEVER' ? 'forever' : `${after.expire} day(s)`} (EXPIRE)`);
      if (after.loginDelay !== undefined) parts.push(`logins at most every ${after.loginDelay} s (LOGIN-DELAY)`);
      return { detail: parts.join('; '), value: undefined };
    });
    ok = true;
  } catch (err) {
    if (err !== STOP) throw err;
  } finally {
    if (client) {
      // QUIT only after a clean run (no DELE was sent, so nothing changes); otherwise just drop the connection
      if (ok) await Promise.race([client.quit().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
      client.close();
    }
  }
  return { server: server.name, ok, steps, totalMs: Math.round(performance.now() - started) };
}
