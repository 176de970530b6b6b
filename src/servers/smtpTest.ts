// The SMTP server test: connect, TLS, EHLO, authenticate (an OAuth2 token refreshed once if refused), optionally
// send, each step timed and, on failure, explained.
//
// It speaks the few SMTP commands itself over node:net/node:tls instead of using nodemailer's SMTPConnection, which
// runs TCP, greeting, EHLO and STARTTLS as one connect() (no per-step timing), rewraps STARTTLS handshake errors as
// new Error('Error initiating TLS - …') and so drops OpenSSL's err.code, and answers the XOAUTH2 error challenge
// without keeping its JSON status: exactly the facts a diagnosis is made of. Sending mail stays nodemailer's job.
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { ErrorCode, MailgateError, isMailgateError } from '../errors.js';
import { serverFacts } from './connectionExplanations.js';
import type { ResolvedServer } from './model.js';
import { explainSmtpFailure, SmtpTestCode, type SmtpFailureFacts } from './smtpExplanations.js';
import { speaksTls, TLS_PROBE_TIMEOUT_MS } from './sockets.js';
import {
  DEFAULT_TIMEOUT_MS,
  loginWithToken,
  StepRecorder,
  StopTest,
  type ServerTestDeps,
  type ServerTestOptions,
  type ServerTestReport,
} from './testReport.js';
import { connectTcp, handshake, replyFailure, showReply, SmtpStepFailure, SmtpWire, socketFailure, type SmtpReply } from './smtpWire.js';
import { connectedTo, describeTls, plaintextNote, tlsOptions } from './tlsDetails.js';

// The report types were born here: code that imports them from the SMTP test keeps working.
export type { ServerTestReport, ServerTestStep, ServerTestStepName } from './testReport.js';

export type SmtpTestStepName = 'connect' | 'tls' | 'ehlo' | 'token' | 'auth' | 'send';

/** TokenManager#getAccessToken fits. */
export type SmtpTestDeps = ServerTestDeps;

export interface SmtpTestOptions extends ServerTestOptions<SmtpTestStepName> {
  /** Send a short test message to this address after authenticating. */
  sendTo?: string;
  /** From address of the test message (default: the server's username). */
  from?: string;
}

// Strict enough to keep CR, LF and angle brackets out of MAIL FROM / RCPT TO and the headers.
const ADDRESS = /^[^\s<>()[\]\\,;:@"]+@[^\s<>()[\]\\,;:@"]+$/;

interface Capabilities {
  starttls: boolean;
  /** undefined: no AUTH extension at all. */
  auth: string[] | undefined;
  keywords: string[];
}

function capabilitiesOf(ehlo: SmtpReply): Capabilities {
  const extensions = ehlo.lines.slice(1);
  // "AUTH=…" is the pre-RFC 4954 spelling some servers still send next to "AUTH …"
  const auth = extensions.filter((l) => /^AUTH[ =]/i.test(l)).flatMap((l) => l.slice(5).trim().toUpperCase().split(/\s+/).filter(Boolean));
  const hasAuth = extensions.some((l) => /^AUTH([ =]|$)/i.test(l));
  return {
    starttls: extensions.some((l) => /^STARTTLS$/i.test(l.trim())),
    auth: hasAuth ? [...new Set(auth)] : undefined,
    keywords: extensions.map((l) => l.trim()).filter((l) => l !== '' && !/^AUTH[ =]/i.test(l)),
  };
}

function describeCapabilities(caps: Capabilities): string {
  const offers = [caps.auth ? `AUTH ${caps.auth.join(' ')}` : 'no AUTH', ...caps.keywords];
  return `server offers ${offers.join(', ')}`;
}

/** RFC 5322 date-time in UTC ("Tue, 02 Jan 2024 10:00:00 +0000"). */
const rfc5322Date = (d: Date) => d.toUTCString().replace(/GMT$/, '+0000');

function testMessage(server: ResolvedServer, from: string, to: string): { raw: string; messageId: string } {
  const messageId = `<${randomUUID()}@${from.split('@')[1]}>`;
  const now = new Date();
  const raw = [
    `From: ${from}`,
    `To: ${to}`,
    'Subject: Mailgate test message',
    `Date: ${rfc5322Date(now)}`,
    `Message-ID: ${messageId}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii',
    'Content-Transfer-Encoding: 7bit',
    // RFC 3834: keeps vacation responders from answering a test
    'Auto-Submitted: auto-generated',
    '',
    `This message was sent by Mailgate to test the SMTP server "${server.name}" (${server.host}:${server.port}) at ${now.toISOString()}.`,
    'It can be deleted.',
  ];
  // RFC 5321 §4.5.2: a line starting with "." gets a second one
  return { raw: raw.map((l) => (l.startsWith('.') ? `.${l}` : l)).join('\r\n'), messageId };
}

/** A refused AUTH: the reply, and for XOAUTH2 the decoded JSON status of the error challenge. */
class AuthRefused extends SmtpStepFailure {}

async function authenticate(wire: SmtpWire, mechanism: 'XOAUTH2' | 'PLAIN' | 'LOGIN', user: string, secret: string): Promise<SmtpReply> {
  const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
  const refused = (reply: SmtpReply, facts: Partial<SmtpFailureFacts> = {}, extra = '') =>
    new AuthRefused(`${mechanism} as ${user}: ${showReply(reply)}${extra}`, {
      responseCode: reply.code,
      ...(reply.enhanced ? { enhancedStatus: reply.enhanced } : {}),
      mechanism,
      ...facts,
    });
  if (mechanism === 'XOAUTH2') {
    // https://developers.google.com/gmail/imap/xoauth2-protocol ; the token is sent once and never kept
    let reply = await wire.command(`AUTH XOAUTH2 ${b64(`user=${user}\x01auth=Bearer ${secret}\x01\x01`)}`);
    if (reply.code === 334) {
      // The error challenge: base64 JSON like {"status":"401","schemes":"bearer","scope":"…"}. The client must
      // answer with an empty line before the server sends its final reply (RFC 7628 §3.2.3).
      const json = Buffer.from(reply.lines.join(''), 'base64').toString('utf8').replace(/[^\x20-\x7e]/g, '');
      wire.send('');
      reply = await wire.read();
      let status: { status?: unknown; scope?: unknown } = {};
      try {
        status = JSON.parse(json) as typeof status;
      } catch {
        // not JSON: shown as sent, explained by the final reply alone
      }
      if (reply.code === 235) return reply;
      throw refused(
        reply,
        {
          ...(typeof status.status === 'string' ? { xoauth2Status: status.status } : {}),
          ...(typeof status.scope === 'string' ? { xoauth2Scope: status.scope } : {}),
        },
        ` (XOAUTH2 status ${json})`,
      );
    }
    if (reply.code !== 235) throw refused(reply);
    return reply;
  }
  if (mechanism === 'PLAIN') {
    const response = b64(`\0${user}\0${secret}`);
    let reply = await wire.command(`AUTH PLAIN ${response}`);
    // a server that does not take an initial response asks for it with an empty 334 (RFC 4954 §4)
    if (reply.code === 334) reply = await wire.command(response);
    if (reply.code !== 235) throw refused(reply);
    return reply;
  }
  let reply = await wire.command('AUTH LOGIN');
  if (reply.code === 334) reply = await wire.command(b64(user));
  if (reply.code === 334) reply = await wire.command(b64(secret));
  if (reply.code !== 235) throw refused(reply);
  return reply;
}

/**
 * Tests an SMTP server as configured: the steps a message would take, each timed and explained on failure.
 * Network and server failures are reported as failed steps, never thrown; only a server that is not SMTP, or an
 * invalid `sendTo`/`from`, throws (INPUT_INVALID).
 */
export async function testSmtpServer(server: ResolvedServer, deps: SmtpTestDeps, options: SmtpTestOptions = {}): Promise<ServerTestReport<SmtpTestStepName>> {
  if (server.protocol !== 'smtp') {
    throw new MailgateError(ErrorCode.INPUT_INVALID, `server ${server.name} is ${server.protocol}, not smtp: only SMTP servers can be tested this way`);
  }
  for (const [field, value] of [['sendTo', options.sendTo], ['from', options.from]] as const) {
    if (value !== undefined && !ADDRESS.test(value)) {
      throw new MailgateError(ErrorCode.INPUT_INVALID, `${field}: expected an email address like name@example.com`, { details: { field } });
    }
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const baseFacts: SmtpFailureFacts = serverFacts(server);
  const steps = new StepRecorder<SmtpTestStepName, SmtpStepFailure>({
    onStep: options.onStep,
    failureOf: (err) =>
      err instanceof SmtpStepFailure ? err : isMailgateError(err) ? new SmtpStepFailure(err.message, { code: err.code }, { cause: err }) : socketFailure(err, 'unexpected failure'),
    explain: (failure) => explainSmtpFailure({ ...baseFacts, ...failure.facts }),
  });

  let wire: SmtpWire | undefined;
  let ok = false;
  try {
    const socket = await steps.must('connect', async () => {
      const s = await connectTcp(server.host, server.port, timeoutMs);
      let detail = connectedTo(server, s.remoteAddress);
      if (server.security === 'none') detail += `, ${plaintextNote(s.remoteAddress)}`;
      return { detail, value: s };
    });
    wire = new SmtpWire(socket, timeoutMs);
    const active = wire;

    const hello = async (label: string, greet: boolean) => {
      let greeting = '';
      if (greet) {
        const reply = await active.read(SmtpTestCode.GREETING_TIMEOUT).catch(async (err: unknown) => {
          if (err instanceof SmtpStepFailure && err.facts.code === SmtpTestCode.GREETING_TIMEOUT && server.security !== 'tls') {
            const tlsPort = await speaksTls(server.host, server.port, Math.min(timeoutMs, TLS_PROBE_TIMEOUT_MS));
            if (tlsPort) throw new SmtpStepFailure(`${err.message}; a TLS handshake on the same port succeeded`, { ...err.facts, peerSpeaksTls: true });
          }
          throw err;
        });
        if (reply.code !== 220) throw replyFailure('greeting', reply);
        greeting = `greeting ${showReply(reply)}; `;
      }
      const local = active.socket.localAddress;
      // RFC 5321 §4.1.4: without a resolvable FQDN, the client identifies itself by an address literal
      const name = local === undefined ? 'localhost' : net.isIPv6(local) ? `[IPv6:${local}]` : `[${local}]`;
      const reply = await active.command(`EHLO ${name}`);
      if (reply.code !== 250) throw replyFailure(`EHLO ${label}`.trim(), reply);
      const caps = capabilitiesOf(reply);
      let detail = `${greeting}EHLO ${label}${label ? ' ' : ''}${reply.code} ${reply.lines[0] ?? ''}; ${describeCapabilities(caps)}`.replace(/ {2,}/g, ' ');
      if (server.security === 'none' && caps.starttls) detail += '; STARTTLS is offered: security: starttls would protect the credentials';
      return { detail, value: caps };
    };

    let caps: Capabilities;
    if (server.security === 'tls') {
      await steps.must('tls', async () => {
        const s = await active.upgrade(tlsOptions(server));
        return { detail: describeTls(s, server), value: s };
      });
      caps = await steps.must('ehlo', () => hello('', true));
    } else if (server.security === 'starttls') {
      const plain = await steps.must('ehlo', () => hello('', true));
      await steps.must('tls', async () => {
        if (!plain.starttls) throw new SmtpStepFailure('the server does not offer STARTTLS', { code: SmtpTestCode.STARTTLS_NOT_OFFERED });
        const reply = await active.command('STARTTLS');
        if (reply.code !== 220) throw replyFailure('STARTTLS', reply);
        const s = await active.upgrade(tlsOptions(server));
        return { detail: `STARTTLS ${showReply(reply)}; ${describeTls(s, server)}`, value: s };
      });
      // RFC 3207 §4.2: what the server offered before TLS no longer counts; AUTH often appears only now
      caps = await steps.must('ehlo', () => hello('after STARTTLS', false));
    } else {
      caps = await steps.must('ehlo', () => hello('', true));
    }

    if (server.auth.type !== 'none') {
      const user = server.username;
      const auth = server.auth;
      const mechanism: 'XOAUTH2' | 'PLAIN' | 'LOGIN' =
        auth.type === 'oauth2' ? 'XOAUTH2' : caps.auth?.includes('PLAIN') || !caps.auth?.includes('LOGIN') ? 'PLAIN' : 'LOGIN';
      // What can be known before a token is fetched fails the auth step at once.
      const precondition = (): SmtpStepFailure | undefined => {
        if (!user) return new SmtpStepFailure('no username configured', { code: SmtpTestCode.USERNAME_MISSING });
        if (auth.type === 'password' && !auth.password) return new SmtpStepFailure('no password stored', { code: SmtpTestCode.PASSWORD_MISSING });
        if (caps.auth === undefined) return new SmtpStepFailure('the server offers no AUTH on this connection', { code: SmtpTestCode.AUTH_NOT_OFFERED });
        if (!caps.auth.includes(mechanism)) {
          return new SmtpStepFailure(`the server offers AUTH ${caps.auth.join(' ')}, not ${auth.type === 'oauth2' ? 'XOAUTH2' : 'PLAIN or LOGIN'}`, { code: SmtpTestCode.MECHANISM_NOT_OFFERED, mechanism });
        }
        return undefined;
      };
      const problem = precondition();
      if (problem) {
        await steps.must('auth', () => Promise.reject(problem));
      } else if (auth.type === 'password') {
        await steps.must('auth', async () => {
          const reply = await authenticate(active, mechanism, user!, auth.password);
          return { detail: `${mechanism} as ${user}: ${showReply(reply)}`, value: reply };
        });
      } else {
        await loginWithToken(steps, deps, auth.credential, {
          async login(token, label) {
            const reply = await authenticate(active, 'XOAUTH2', user!, token.reveal());
            return { detail: `XOAUTH2 as ${user}${label}: ${showReply(reply)}`, value: reply };
          },
          refused: (failure) => failure instanceof AuthRefused,
        });
      }
    }

    if (options.sendTo !== undefined) {
      const to = options.sendTo;
      await steps.must('send', async () => {
        const from = options.from ?? server.username;
        if (!from || !ADDRESS.test(from)) {
          throw new SmtpStepFailure(from ? `no usable From address: username "${from}" is not an email address` : 'no From address', { code: SmtpTestCode.FROM_MISSING });
        }
        const { raw, messageId } = testMessage(server, from, to);
        const mail = await active.command(`MAIL FROM:<${from}>`);
        if (mail.code !== 250) throw replyFailure(`MAIL FROM:<${from}>`, mail);
        const rcpt = await active.command(`RCPT TO:<${to}>`);
        if (rcpt.code !== 250 && rcpt.code !== 251) throw replyFailure(`RCPT TO:<${to}>`, rcpt);
        const data = await active.command('DATA');
        if (data.code !== 354) throw replyFailure('DATA', data);
        const done = await active.command(`${raw}\r\n.`);
        if (done.code !== 250) throw replyFailure('message', done);
        return { detail: `from ${from} to ${to}: ${showReply(done)}, Message-ID ${messageId}`, value: done };
      });
    }
    ok = true;
  } catch (err) {
    if (!(err instanceof StopTest)) throw err;
  } finally {
    await wire?.close();
  }
  return steps.report(server.name, ok);
}
