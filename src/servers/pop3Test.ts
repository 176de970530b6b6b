// The POP3 server test: connect, TLS (implicit or STLS), CAPA, token, login (an OAuth2 token refreshed once if
// refused) and a look at the mailbox (STAT, UIDL), each step timed and, on failure, explained. Reads no message and
// deletes nothing: it ends with QUIT after no DELE.
import { ErrorCode, MailgateError, isMailgateError } from '../errors.js';
import { Pop3Client } from '../inbound/pop3/client.js';
import type { Pop3Capabilities } from '../inbound/pop3/capabilities.js';
import { isPop3Error, Pop3ErrorCode } from '../inbound/pop3/errors.js';
import { explainPop3Failure, Pop3TestCode, type Pop3FailureFacts } from '../inbound/pop3/explanations.js';
import { serverFacts } from './connectionExplanations.js';
import type { ResolvedServer } from './model.js';
import { briefly, speaksTls, TLS_PROBE_TIMEOUT_MS } from './sockets.js';
import { DEFAULT_TIMEOUT_MS, loginWithToken, StepFailure, StepRecorder, StopTest, type ServerTestDeps, type ServerTestOptions, type ServerTestReport, type ServerTestStep } from './testReport.js';
import { connectedTo, describeTls, plaintextNote } from './tlsDetails.js';

export type Pop3TestStepName = 'connect' | 'tls' | 'capabilities' | 'token' | 'auth' | 'mailbox';
export type Pop3TestStep = ServerTestStep<Pop3TestStepName>;
export type Pop3TestReport = ServerTestReport<Pop3TestStepName>;
/** TokenManager#getAccessToken fits. */
export type Pop3TestDeps = ServerTestDeps;
export type Pop3TestOptions = ServerTestOptions<Pop3TestStepName>;

class Pop3StepFailure extends StepFailure<Pop3FailureFacts> {}

function failureOf(err: unknown): Pop3StepFailure {
  if (err instanceof Pop3StepFailure) return err;
  if (isPop3Error(err)) {
    return new Pop3StepFailure(
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
  if (isMailgateError(err)) return new Pop3StepFailure(err.message, { code: err.code }, { cause: err });
  return new Pop3StepFailure(`unexpected failure: ${err instanceof Error ? err.message : String(err)}`, {}, { cause: err });
}

function describeCapabilities(caps: Pop3Capabilities): string {
  if (!caps.supported) return 'CAPA not supported (an RFC 1939-only server): mechanisms and UIDL unknown until tried';
  const shown = caps.lines.filter((l) => !/^SASL(\s|$)/i.test(l));
  return `server offers ${[caps.sasl.length > 0 ? `SASL ${caps.sasl.join(' ')}` : 'no SASL', ...shown].join(', ')}`;
}

/**
 * Tests a POP3 server as configured: the steps a watcher takes, each timed and explained on failure. Network and
 * server failures are reported as failed steps, never thrown; only a server that is not POP3 throws (INPUT_INVALID).
 */
export async function testPop3Server(server: ResolvedServer, deps: Pop3TestDeps, options: Pop3TestOptions = {}): Promise<Pop3TestReport> {
  if (server.protocol !== 'pop3') {
    throw new MailgateError(ErrorCode.INPUT_INVALID, `server ${server.name} is ${server.protocol}, not pop3: only POP3 servers can be tested this way`);
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const baseFacts: Pop3FailureFacts = serverFacts(server);
  const steps = new StepRecorder<Pop3TestStepName, Pop3StepFailure>({
    onStep: options.onStep,
    failureOf,
    explain: (failure) => explainPop3Failure({ ...baseFacts, ...failure.facts }),
  });

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
            throw new Pop3StepFailure(`${err.message}; a TLS handshake on the same port succeeded`, { ...failureOf(err).facts, peerSpeaksTls: true }, { cause: err });
          }
        }
        throw err;
      }
    };

    const active = await steps.must('connect', async () => {
      client = await Pop3Client.openTcp(connectOptions);
      const remote = client.socket.remoteAddress;
      let detail = connectedTo(server, remote);
      // with implicit TLS the greeting comes inside TLS: the tls step reads it
      if (server.security !== 'tls') detail += `; greeting +OK ${await greet(client)}`;
      if (server.security === 'none') detail += `; ${plaintextNote(remote)}`;
      return { detail, value: client };
    });

    if (server.security === 'tls') {
      await steps.must('tls', async () => {
        const socket = await active.startImplicitTls();
        const greeting = await greet(active);
        return { detail: `${describeTls(socket, server)}; greeting +OK ${greeting}`, value: socket };
      });
    } else if (server.security === 'starttls') {
      await steps.must('tls', async () => {
        const before = await active.capabilities();
        // RFC 2595 §4: STLS is announced in CAPA; a server without CAPA may still know it, so only a listing without it stops here
        if (before.supported && !before.stls) throw new Pop3StepFailure('the server does not offer STLS (not in CAPA)', { code: Pop3TestCode.STLS_NOT_OFFERED });
        const socket = await active.startTls();
        return { detail: `STLS; ${describeTls(socket, server)}`, value: socket };
      });
    }

    const caps = await steps.must('capabilities', async () => {
      const found = await active.capabilities();
      let detail = describeCapabilities(found);
      if (server.security === 'none' && found.stls) detail += '; STLS is offered: security: starttls would protect the credentials';
      return { detail, value: found };
    });

    const user = server.username;
    const auth = server.auth;
    const mechanism = auth.type === 'oauth2' ? 'XOAUTH2' : auth.type === 'password' ? (caps.supported && !caps.user && caps.sasl.includes('PLAIN') ? 'PLAIN' : 'USER/PASS') : undefined;
    const precondition = (): Pop3StepFailure | undefined => {
      if (auth.type === 'none') return new Pop3StepFailure('no auth configured: POP3 always logs in', { code: Pop3TestCode.AUTH_REQUIRED });
      if (!user) return new Pop3StepFailure('no username configured', { code: Pop3TestCode.USERNAME_MISSING });
      if (auth.type === 'password' && !auth.password) return new Pop3StepFailure('no password stored', { code: Pop3TestCode.PASSWORD_MISSING });
      if (auth.type === 'oauth2' && caps.supported && !caps.sasl.includes('XOAUTH2')) {
        return new Pop3StepFailure(`the server offers ${caps.sasl.length > 0 ? `SASL ${caps.sasl.join(' ')}` : 'no SASL mechanisms'}, not XOAUTH2`, { code: Pop3TestCode.MECHANISM_NOT_OFFERED, mechanism: 'XOAUTH2' });
      }
      return undefined;
    };
    const problem = precondition();
    if (problem) {
      await steps.must('auth', () => Promise.reject(problem));
    } else if (auth.type === 'password') {
      await steps.must('auth', async () => {
        await active.authPassword(user!, auth.password).catch((err: unknown) => {
          const failure = failureOf(err);
          throw new Pop3StepFailure(`${mechanism} as ${user}: ${failure.message}`, { ...failure.facts, mechanism }, { cause: err });
        });
        return { detail: `${mechanism} as ${user}: +OK`, value: undefined };
      });
    } else if (auth.type === 'oauth2') {
      // After a refused AUTH the session is still in the AUTHORIZATION state (RFC 5034 §4): the retry needs no new connection.
      await loginWithToken(steps, deps, auth.credential, {
        async login(token, label) {
          await active.authXOAuth2(user!, token.reveal()).catch((err: unknown) => {
            const failure = failureOf(err);
            throw new Pop3StepFailure(`XOAUTH2 as ${user}${label}: ${failure.message}`, { ...failure.facts, mechanism: 'XOAUTH2' }, { cause: err });
          });
          return { detail: `XOAUTH2 as ${user}${label}: +OK`, value: undefined };
        },
        refused: (failure) => failure.facts.code === Pop3ErrorCode.POP3_AUTH_FAILED,
      });
    }

    await steps.must('mailbox', async () => {
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
    if (!(err instanceof StopTest)) throw err;
  } finally {
    if (client) {
      // QUIT only after a clean run (no DELE was sent, so nothing changes); otherwise just drop the connection
      if (ok) await briefly(client.quit());
      client.close();
    }
  }
  return steps.report(server.name, ok);
}
