// The IMAP server test: connect (with TLS), capabilities, token, authenticate (an OAuth2 token refreshed once if
// refused), list the folders and read the mailbox's status, each step timed and, on failure, explained.
//
// imapflow does the talking, as it does for the watchers, so the test proves the client that will be used. Two
// seams give the per-step facts its one-shot connect() hides: a transport of our own (imapflow's public `transport`
// option) sees the TCP connection and the TLS handshake with Node's own error codes, and the authenticate() hook
// of a subclass runs between the last CAPABILITY and the login, where the token is fetched and the mechanism chosen.
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import tls from 'node:tls';
import { ImapFlow, type ImapFlowError, type ImapFlowOptions, type ImapTransport, type ListResponse } from 'imapflow';
import { ErrorCode, MailgateError, isMailgateError } from '../errors.js';
import { VERSION } from '../version.js';
import type { ResolvedServer, SecurityMode } from './model.js';
import type { SmtpExplanation } from './smtpExplanations.js';
import type { SmtpTestDeps } from './smtpTest.js';

export type ImapTestStepName = 'connect' | 'capabilities' | 'token' | 'auth' | 'folders' | 'mailbox';

/** The SMTP test's ServerTestStep, with the IMAP steps' names. */
export interface ImapTestStep {
  name: ImapTestStepName;
  ok: boolean;
  ms: number;
  /** What happened, from the server's replies; never a token or password. */
  detail: string;
  /** On failure: what it means and what to do. */
  explanation?: SmtpExplanation;
}

export interface ImapTestReport {
  server: string;
  /** true when the server can be used as configured (an auth attempt that a refreshed token then fixed does not count against it). */
  ok: boolean;
  steps: ImapTestStep[];
  totalMs: number;
}

/** TokenManager#getAccessToken fits (the same dependency as the SMTP test's). */
export type ImapTestDeps = SmtpTestDeps;

export interface ImapTestOptions {
  /** Deadline of each network wait: connect, greeting, every reply (default 20 s). */
  timeoutMs?: number;
  /** Called as each step completes, so a UI can show them live (a method: the server test's onStep fits). */
  onStep?(step: ImapTestStep): void;
  /** The folder whose status is read (default INBOX): the watcher's folder. */
  folder?: string;
}

/** Failure codes the IMAP test raises itself, besides Node's, OpenSSL's, imapflow's and MailgateError's. */
export const ImapTestCode = {
  /** security: starttls, but the server's capabilities do not list STARTTLS. */
  STARTTLS_NOT_OFFERED: 'STARTTLS_NOT_OFFERED',
  /** The server offers no mechanism this server's auth can use (an OAuth2 one for tokens, PLAIN/LOGIN for passwords). */
  MECHANISM_NOT_OFFERED: 'MECHANISM_NOT_OFFERED',
  /** LOGINDISABLED and no AUTH=PLAIN/LOGIN on this connection: the server refuses passwords in clear. */
  LOGIN_DISABLED: 'LOGIN_DISABLED',
  USERNAME_MISSING: 'USERNAME_MISSING',
  PASSWORD_MISSING: 'PASSWORD_MISSING',
  /** auth.type is none, and IMAP has no mailbox without a login (unless the server greets with PREAUTH). */
  AUTH_MISSING: 'AUTH_MISSING',
  /** The server answered the login with NO/BAD (imapflow's authenticationFailed). */
  AUTH_REFUSED: 'AUTH_REFUSED',
  /** The login was accepted but the session then refused (Exchange: "User is authenticated but not connected"). */
  SESSION_REFUSED: 'SESSION_REFUSED',
  /** The peer answered, but not with an IMAP greeting (an SMTP or POP3 port). */
  NOT_IMAP: 'NOT_IMAP',
  /** The folder does not exist (STATUS answered NO and LIST does not know it). */
  FOLDER_NOT_FOUND: 'FOLDER_NOT_FOUND',
  /** STATUS or LIST failed otherwise. */
  COMMAND_FAILED: 'COMMAND_FAILED',
} as const;
export type ImapTestCode = (typeof ImapTestCode)[keyof typeof ImapTestCode];

/** Everything known about one failure; every field is a fact from the wire or the configuration, no secret. */
export interface ImapFailureFacts {
  host: string;
  port: number;
  security: SecurityMode;
  /** Node's err.code (ECONNREFUSED, DEPTH_ZERO_SELF_SIGNED_CERT), imapflow's (GREETING_TIMEOUT), a MailgateError code, or an ImapTestCode. */
  code?: string;
  /** The response code of the tagged NO/BAD ("AUTHENTICATIONFAILED", "NONEXISTENT"). */
  responseCode?: string;
  /** `status` of the JSON a server sends as SASL error challenge: "400"/"401" (XOAUTH2: Google, Dovecot) or "invalid_token" (OAUTHBEARER, RFC 7628). */
  oauthStatus?: string;
  /** `scope` of that JSON, when the server names the scope it wants. */
  oauthScope?: string;
  /** The SASL mechanism tried (XOAUTH2, OAUTHBEARER, PLAIN, LOGIN). */
  mechanism?: string;
  /** A quick TLS handshake to the same port succeeded: the port speaks implicit TLS. */
  peerSpeaksTls?: boolean;
  /** The OpenSSL reason text, consulted only for handshake errors that arrive without a code. */
  tlsReason?: string;
  credential?: string;
  username?: string;
  /** The folder the mailbox step reads. */
  folder?: string;
  /** The folders the server listed, to name the existing ones when the folder is missing. */
  folders?: string[];
}

const DEFAULT_TIMEOUT_MS = 20_000;
/** The implicit-TLS probe after a missing greeting only needs a ServerHello. */
const TLS_PROBE_TIMEOUT_MS = 5_000;
const OAUTH_MECHANISMS = ['XOAUTH2', 'OAUTHBEARER'] as const;

/** A failed step, with the facts the explanation is chosen by. */
class StepFailure extends Error {
  constructor(
    message: string,
    readonly facts: Partial<ImapFailureFacts> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StepFailure';
  }
}

/** Ends the test at a failed step; the step is recorded already. Thrown through imapflow's connect() as well. */
class Stop extends Error {
  constructor() {
    super('server test stopped at a failed step');
    this.name = 'Stop';
  }
}

/** imapflow's, Node's and OpenSSL's error facts: codes first, OpenSSL's reason for handshake errors without one. */
function failureOf(err: unknown, where: string): StepFailure {
  if (err instanceof StepFailure) return err;
  if (isMailgateError(err)) return new StepFailure(err.message, { code: err.code }, { cause: err });
  const e = err as ImapFlowError & { reason?: unknown };
  const facts: Partial<ImapFailureFacts> = {};
  if (typeof e?.code === 'string') facts.code = e.code;
  if (typeof e?.serverResponseCode === 'string') facts.responseCode = e.serverResponseCode;
  if (typeof e?.reason === 'string') facts.tlsReason = e.reason;
  else if (facts.code === undefined && e?.tlsFailed && typeof e.message === 'string') facts.tlsReason = e.message;
  // OpenSSL's message is "<thread>:error:<hex>:SSL routines:<function>:<reason>:…": its reason reads better
  const text = typeof e?.reason === 'string' ? e.reason : (e?.message ?? String(err));
  const response = typeof e?.response === 'string' && e.response !== '' ? `: ${e.response}` : '';
  return new StepFailure(`${where}: ${text}${response}${facts.code ? ` (${facts.code})` : ''}`, facts, { cause: err });
}

function tlsOptions(server: ResolvedServer): tls.ConnectionOptions {
  return {
    host: server.host,
    port: server.port,
    ...(net.isIP(server.host) ? {} : { servername: server.host }),
    // `ca` replaces the system CAs: the server's own CA is trusted in addition to them, not instead
    ...(server.tlsCa ? { ca: [...tls.rootCertificates, server.tlsCa] } : {}),
    rejectUnauthorized: server.tlsRejectUnauthorized,
  };
}

// The same certificate summary as the SMTP test's tls step.
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

const isLoopback = (address: string | undefined) => address !== undefined && (address === '::1' || /^(::ffff:)?127\./.test(address));

interface TransportEvents {
  /** TCP is up (plaintext connections). */
  connected(socket: net.Socket): void;
  /** TLS is up: implicit TLS from the first byte, or after STARTTLS. */
  secured(socket: tls.TLSSocket, how: 'implicit' | 'starttls'): void;
  /** The first line the server sent, for telling "not IMAP" from "silent" (imapflow ignores what is not IMAP). */
  firstLine(line: string): void;
}

/**
 * Reports the first line read from the socket. Attached after onConnect(), once imapflow has piped the socket: a
 * 'data' listener attached earlier would start the flow before the pipe and take the greeting away from imapflow.
 */
function watchFirstLine(socket: net.Socket, events: TransportEvents): void {
  let seen = '';
  const onData = (chunk: Buffer) => {
    seen += chunk.toString('latin1');
    const eol = seen.indexOf('\n');
    if (eol < 0 && seen.length < 200) return;
    socket.off('data', onData);
    events.firstLine((eol < 0 ? seen : seen.slice(0, eol)).replace(/\r$/, '').slice(0, 80).replace(/[^\x20-\x7e]/g, '.'));
  };
  socket.on('data', onData);
}

/** node:net and node:tls as imapflow would use them, reporting when each layer is up. */
function transportFor(server: ResolvedServer, events: TransportEvents): ImapTransport {
  const options = tlsOptions(server);
  return {
    connect({ secure }, onConnect) {
      if (secure) {
        const socket: tls.TLSSocket = tls.connect(options, () => {
          events.secured(socket, 'implicit');
          onConnect();
          watchFirstLine(socket, events);
        });
        return socket;
      }
      const socket = net.connect({ host: server.host, port: server.port }, () => {
        events.connected(socket);
        onConnect();
        watchFirstLine(socket, events);
      });
      return socket;
    },
    upgrade(socket, _options, onSecure) {
      const secure: tls.TLSSocket = tls.connect({ ...options, socket: socket as net.Socket }, () => {
        events.secured(secure, 'starttls');
        onSecure();
      });
      return secure;
    },
  };
}

/** Runs in imapflow's session setup after the last CAPABILITY (after STARTTLS), before the login. */
type LoginHook = (client: ImapTestClient, login: () => Promise<void>) => Promise<void>;

/**
 * ImapFlow with a hook around its (internal) authenticate(): connect() runs greeting, CAPABILITY, STARTTLS, ID
 * and the login as one call, and the token must be fetched, and the mechanism chosen, between the last two.
 * imapflow 2.10 has no option to choose the OAuth2 mechanism (auth.loginMethod picks among password mechanisms
 * only) and prefers OAUTHBEARER; the hook hides AUTH=OAUTHBEARER when AUTH=XOAUTH2 is offered, since XOAUTH2 is
 * what Microsoft and Google document and what their error JSON comes with.
 */
class ImapTestClient extends ImapFlow {
  constructor(
    options: ImapFlowOptions,
    private readonly hook: LoginHook,
  ) {
    super(options);
  }

  // Not declared in imapflow's types: startSession() calls this.authenticate(), so the override takes its place.
  async authenticate(): Promise<boolean> {
    const base = (ImapFlow.prototype as unknown as { authenticate(this: ImapFlow): Promise<boolean> }).authenticate;
    // a PREAUTH greeting authenticated the connection already; imapflow skips the login, and so does the test
    if (this.state !== this.states.NOT_AUTHENTICATED) return base.call(this);
    let result = false;
    await this.hook(this, async () => {
      result = await base.call(this);
    });
    return result;
  }
}

function describeCapabilities(client: ImapFlow): string {
  const all = [...client.capabilities.keys()];
  const auth = all.filter((c) => c.startsWith('AUTH=')).map((c) => c.slice(5));
  const rest = all.filter((c) => !c.startsWith('AUTH='));
  const greeting = client.greeting ? `greeting "${client.greeting}"; ` : '';
  const login = client.capabilities.has('LOGINDISABLED') ? ' (LOGINDISABLED: no passwords in clear)' : '';
  return `${greeting}server offers ${auth.length > 0 ? `AUTH ${auth.join(' ')}` : 'no AUTH mechanisms'}${login}; ${rest.join(' ')}`;
}

/** The decoded SASL error challenge imapflow keeps as err.oauthError: {"status":"401","schemes":"bearer","scope":"…"}. */
function oauthFacts(err: unknown): { facts: Partial<ImapFailureFacts>; shown: string } {
  const json: unknown = (err as ImapFlowError | undefined)?.oauthError;
  if (!json || typeof json !== 'object') return { facts: {}, shown: '' };
  const { status, scope } = json as { status?: unknown; scope?: unknown };
  return {
    facts: { ...(typeof status === 'string' ? { oauthStatus: status } : {}), ...(typeof scope === 'string' ? { oauthScope: scope } : {}) },
    shown: JSON.stringify(json).replace(/[^\x20-\x7e]/g, ''),
  };
}

function describeFolders(folders: ListResponse[]): string {
  const special = folders.filter((f) => f.specialUse).map((f) => `${f.specialUse} ${f.path}`);
  return `${folders.length} folder${folders.length === 1 ? '' : 's'}${special.length > 0 ? `; special-use: ${special.join(', ')}` : '; no special-use folders'}`;
}

/**
 * Tests an IMAP server as configured: the steps a watcher takes, each timed and explained on failure. Network and
 * server failures are reported as failed steps, never thrown; only a server that is not IMAP throws (INPUT_INVALID).
 */
export async function testImapServer(server: ResolvedServer, deps: ImapTestDeps, options: ImapTestOptions = {}): Promise<ImapTestReport> {
  if (server.protocol !== 'imap') {
    throw new MailgateError(ErrorCode.INPUT_INVALID, `server ${server.name} is ${server.protocol}, not imap: only IMAP servers can be tested this way`);
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const folder = options.folder ?? 'INBOX';
  const credential = server.auth.type === 'oauth2' ? server.auth.credential : undefined;
  const baseFacts: ImapFailureFacts = {
    host: server.host,
    port: server.port,
    security: server.security,
    folder,
    ...(server.username ? { username: server.username } : {}),
    ...(credential ? { credential } : {}),
  };
  const started = performance.now();
  const steps: ImapTestStep[] = [];
  let mark = started;

  const record = (step: ImapTestStep) => {
    steps.push(step);
    try {
      options.onStep?.(step);
    } catch {
      // an observer that throws (a closed stream) must not abort the test or leak the socket
    }
  };
  /** Records a step that began at the end of the previous one (the steps inside imapflow's connect()). */
  const recordSince = (name: ImapTestStepName, detail: string) => {
    const now = performance.now();
    record({ name, ok: true, ms: Math.round(now - mark), detail });
    mark = now;
  };
  const recordFailure = (name: ImapTestStepName, failure: StepFailure, t0 = mark) => {
    record({ name, ok: false, ms: Math.round(performance.now() - t0), detail: failure.message, explanation: explainImapFailure({ ...baseFacts, ...failure.facts }) });
    mark = performance.now();
  };
  const attempt = async <T>(name: ImapTestStepName, run: () => Promise<{ detail: string; value: T }>): Promise<{ ok: true; value: T } | { ok: false; failure: StepFailure }> => {
    const t0 = performance.now();
    try {
      const { detail, value } = await run();
      record({ name, ok: true, ms: Math.round(performance.now() - t0), detail });
      mark = performance.now();
      return { ok: true, value };
    } catch (err) {
      const failure = failureOf(err, 'unexpected failure');
      recordFailure(name, failure, t0);
      return { ok: false, failure };
    }
  };
  const must = async <T>(name: ImapTestStepName, run: () => Promise<{ detail: string; value: T }>): Promise<T> => {
    const result = await attempt(name, run);
    if (!result.ok) throw new Stop();
    return result.value;
  };

  let connectDetail = '';
  let connected = false;
  let capabilitiesShown = false;
  let loggedIn = false;
  let firstLine: string | undefined;
  const events: TransportEvents = {
    firstLine(line) {
      firstLine = line;
    },
    connected(socket) {
      connectDetail = `connected to ${server.host}:${server.port}${socket.remoteAddress && socket.remoteAddress !== server.host ? ` (${socket.remoteAddress})` : ''}`;
      if (server.security === 'none') {
        const plain = isLoopback(socket.remoteAddress)
          ? 'security: none (plaintext, acceptable on loopback only)'
          : 'security: none: credentials and mail would travel in clear; use starttls or tls';
        connected = true;
        recordSince('connect', `${connectDetail}, ${plain}`);
      }
    },
    secured(socket, how) {
      connected = true;
      const at = how === 'implicit' ? `connected to ${server.host}:${server.port}${socket.remoteAddress && socket.remoteAddress !== server.host ? ` (${socket.remoteAddress})` : ''}` : `${connectDetail}; STARTTLS`;
      recordSince('connect', `${at}; ${describeTls(socket, server)}`);
    },
  };

  const login: LoginHook = async (client, base) => {
    capabilitiesShown = true;
    recordSince('capabilities', describeCapabilities(client));
    const auth = server.auth;
    const user = server.username;
    const caps = client.capabilities;
    const precondition = (): StepFailure | undefined => {
      if (auth.type === 'none') return new StepFailure('auth type none: IMAP needs a login (the server did not greet with PREAUTH)', { code: ImapTestCode.AUTH_MISSING });
      if (!user) return new StepFailure('no username configured', { code: ImapTestCode.USERNAME_MISSING });
      if (auth.type === 'password') {
        if (!auth.password) return new StepFailure('no password stored', { code: ImapTestCode.PASSWORD_MISSING });
        if (caps.has('LOGINDISABLED') && !caps.has('AUTH=PLAIN') && !caps.has('AUTH=LOGIN')) {
          return new StepFailure('the server announces LOGINDISABLED and offers no AUTH=PLAIN or AUTH=LOGIN on this connection', { code: ImapTestCode.LOGIN_DISABLED });
        }
      } else if (!OAUTH_MECHANISMS.some((m) => caps.has(`AUTH=${m}`))) {
        return new StepFailure('the server offers neither AUTH=XOAUTH2 nor AUTH=OAUTHBEARER', { code: ImapTestCode.MECHANISM_NOT_OFFERED, mechanism: 'XOAUTH2' });
      }
      return undefined;
    };
    const problem = precondition();
    if (problem) {
      recordFailure('auth', problem);
      throw new Stop();
    }

    /** One login; a refusal by the server is an AUTH_REFUSED failure, with the decoded SASL JSON when there was one. */
    const tryLogin = async (mechanism: string, label: string) =>
      attempt('auth', async () => {
        try {
          await base();
        } catch (err) {
          const e = err as ImapFlowError;
          if (!e?.authenticationFailed) throw failureOf(err, `${mechanism} as ${user}${label}`);
          const { facts, shown } = oauthFacts(err);
          // imapflow's text of the tagged reply starts with its tag ("4 NO [AUTHENTICATIONFAILED] …"): the tag says nothing
          const response = typeof e.response === 'string' && e.response !== '' ? e.response.replace(/^\S+ (?=(NO|BAD) )/, '') : e.message;
          throw new StepFailure(`${mechanism} as ${user}${label}: ${response}${shown ? ` (${mechanism} status ${shown})` : ''}`, {
            code: ImapTestCode.AUTH_REFUSED,
            ...(e.serverResponseCode ? { responseCode: e.serverResponseCode } : {}),
            mechanism,
            ...facts,
          });
        }
        return { detail: `${mechanism} as ${user}${label}: accepted`, value: undefined };
      });

    if (auth.type === 'password') {
      // imapflow's choice: AUTHENTICATE PLAIN, else AUTHENTICATE LOGIN, else the LOGIN command
      const mechanism = caps.has('AUTH=PLAIN') ? 'PLAIN' : caps.has('AUTH=LOGIN') ? 'LOGIN' : 'LOGIN command';
      client.options.auth = { user: user!, pass: auth.password };
      const result = await tryLogin(mechanism, '');
      if (!result.ok) throw new Stop();
    } else if (auth.type === 'oauth2') {
      const mechanism = caps.has('AUTH=XOAUTH2') ? 'XOAUTH2' : 'OAUTHBEARER';
      if (mechanism === 'XOAUTH2') caps.delete('AUTH=OAUTHBEARER');
      const useToken = async (forceRefresh: boolean) => {
        const token = await must('token', async () => {
          const t = await deps.getAccessToken(auth.credential, forceRefresh ? { forceRefresh: true } : {});
          return { detail: `${forceRefresh ? 'refreshed access token' : 'access token'} of credential ${auth.credential}${t.expiresAt ? `, expires ${t.expiresAt}` : ''}`, value: t.accessToken };
        });
        // revealed into imapflow's options only for the login; imapflow marks it sensitive on the wire and in its logs
        client.options.auth = { user: user!, accessToken: token.reveal() };
      };
      await useToken(false);
      const first = await tryLogin(mechanism, '');
      if (!first.ok) {
        // A token can be refused while Mailgate still thinks it valid (revoked, or issued before a scope change):
        // one forced refresh tells that apart from a configuration the server refuses. Same connection: IMAP
        // allows another AUTHENTICATE after a NO (RFC 9051 §6.2.2).
        if (first.failure.facts.code !== ImapTestCode.AUTH_REFUSED) throw new Stop();
        await useToken(true);
        const second = await tryLogin(mechanism, ' (refreshed token, second attempt)');
        if (!second.ok) throw new Stop();
      }
      client.options.auth = { user: user! };
    }
    loggedIn = true;
  };

  const client = new ImapTestClient(
    {
      host: server.host,
      port: server.port,
      secure: server.security === 'tls',
      // required, not opportunistic: a stripped STARTTLS must fail the test, not send credentials in clear
      doSTARTTLS: server.security === 'starttls' ? true : server.security === 'none' ? false : undefined,
      transport: transportFor(server, events),
      auth: { user: server.username ?? '' },
      clientInfo: { name: 'Mailgate', version: VERSION },
      logger: false,
      disableAutoIdle: true,
      connectionTimeout: timeoutMs,
      greetingTimeout: timeoutMs,
      socketTimeout: timeoutMs,
    },
    login,
  );
  // imapflow emits connection errors as events too; unheard, an 'error' event would be thrown
  client.on('error', () => undefined);

  let ok = false;
  try {
    try {
      await client.connect();
    } catch (err) {
      if (err instanceof Stop) throw err;
      throw await connectFailure(err);
    }
    const folders = await must('folders', async () => {
      const list = await client.list();
      return { detail: describeFolders(list), value: list };
    });
    await must('mailbox', async () => {
      let status;
      try {
        status = await client.status(folder, { messages: true, unseen: true, uidValidity: true, uidNext: true });
      } catch (err) {
        if ((err as ImapFlowError)?.code === 'NotFound') {
          const response = (err as { response?: { responseText?: unknown } }).response?.responseText;
          throw new StepFailure(`folder "${folder}" does not exist${typeof response === 'string' ? ` (STATUS: ${response})` : ''}`, {
            code: ImapTestCode.FOLDER_NOT_FOUND,
            folders: folders.map((f) => f.path),
          });
        }
        throw failureOf(err, `STATUS ${folder}`);
      }
      if (!status) throw new StepFailure(`STATUS ${folder} failed`, { code: ImapTestCode.COMMAND_FAILED });
      const count = (n: number | undefined, what: string) => (n === undefined ? `${what} not reported` : `${n} ${what}`);
      return {
        detail: `${status.path}: ${count(status.messages, 'messages')}, ${count(status.unseen, 'unseen')}, UIDVALIDITY ${String(status.uidValidity ?? 'not reported')}, UIDNEXT ${status.uidNext ?? 'not reported'}`,
        value: status,
      };
    });
    ok = true;
  } catch (err) {
    if (!(err instanceof Stop)) throw err;
  } finally {
    if (client.usable) {
      await Promise.race([client.logout().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
    }
    client.close();
    client.options.auth = undefined;
  }
  return { server: server.name, ok, steps, totalMs: Math.round(performance.now() - started) };

  /** Records the step that connect() failed in (imapflow rejects with the failure of whichever phase it was in). */
  async function connectFailure(err: unknown): Promise<Stop> {
    let failure = failureOf(err, connected ? 'IMAP session failed' : 'connection failed');
    // the socket's inactivity timer can fire as early as the greeting timer: both mean the greeting never came
    if (client.greeting === undefined && client.capabilities.size === 0 && (failure.facts.code === 'GREETING_TIMEOUT' || failure.facts.code === 'ETIMEOUT')) {
      failure =
        firstLine !== undefined && !firstLine.startsWith('* ')
          ? new StepFailure(`not an IMAP greeting: "${firstLine}"`, { code: ImapTestCode.NOT_IMAP })
          : new StepFailure(`no IMAP greeting within ${timeoutMs} ms`, { ...failure.facts, code: 'GREETING_TIMEOUT' });
    }
    const code = failure.facts.code;
    if (code === 'GREETING_TIMEOUT' && server.security !== 'tls') {
      const tlsPort = await speaksTls(server.host, server.port, Math.min(timeoutMs, TLS_PROBE_TIMEOUT_MS));
      if (tlsPort) failure = new StepFailure(`${failure.message}; a TLS handshake on the same port succeeded`, { ...failure.facts, peerSpeaksTls: true });
    }
    if (server.security === 'starttls' && (err as ImapFlowError)?.tlsFailed && code === undefined && !client.capabilities.has('STARTTLS')) {
      failure = new StepFailure(`the server does not offer STARTTLS (capabilities: ${[...client.capabilities.keys()].join(' ') || 'none'})`, { code: ImapTestCode.STARTTLS_NOT_OFFERED });
    }
    if (!connected) recordFailure('connect', failure);
    else if (!capabilitiesShown) recordFailure('capabilities', failure);
    else if (loggedIn && (err as ImapFlowError)?.authenticationFailed) {
      // imapflow's NAMESPACE after the login: Exchange accepts an app-only token, then refuses the session
      recordFailure('auth', new StepFailure(`login accepted, then the session was refused: ${failure.message}`, { ...failure.facts, code: ImapTestCode.SESSION_REFUSED }));
    } else recordFailure(loggedIn ? 'folders' : 'auth', failure);
    return new Stop();
  }
}

// ---- What a failure means and what fixes it: keyed on codes, never on English text where a code exists. ----

type Rule = (f: ImapFailureFacts) => SmtpExplanation;

const where = (f: ImapFailureFacts) => `${f.host}:${f.port}`;
const mailbox = (f: ImapFailureFacts) => f.username ?? '<mailbox>';
const reauthorize = (f: ImapFailureFacts) => `mailgate credential authorize ${f.credential ?? 'NAME'}`;

/** The provider, by the documented IMAP hosts (outlook.office365.com, imap.gmail.com), for provider-specific fixes. */
function providerOf(host: string): 'microsoft' | 'google' | undefined {
  if (/(^|\.)(office365\.com|outlook\.com|office\.com)$/i.test(host)) return 'microsoft';
  if (/(^|\.)(gmail\.com|googlemail\.com)$/i.test(host)) return 'google';
  return undefined;
}

/** Ports of other mail protocols, named when someone points an IMAP server at them. */
const OTHER_PROTOCOL_PORTS: Record<number, string> = { 25: 'SMTP', 465: 'SMTP submission over TLS', 587: 'SMTP submission', 110: 'POP3', 995: 'POP3S' };

const SCOPE = { microsoft: 'https://outlook.office.com/IMAP.AccessAsUser.All', google: 'https://mail.google.com/' } as const;
const scopes = (f: ImapFailureFacts) => {
  const p = providerOf(f.host);
  return p ? SCOPE[p] : `${SCOPE.microsoft} (Microsoft 365) or ${SCOPE.google} (Gmail)`;
};

/** What disables IMAP for a mailbox, per provider (RFC-less, from the providers' admin documentation). */
function imapDisabledFix(f: ImapFailureFacts): string {
  const microsoft = `Microsoft 365: enable IMAP for the mailbox (Set-CASMailbox -Identity ${mailbox(f)} -ImapEnabled $true); for app-only (client credentials) credentials Exchange also needs the app's service principal and a mailbox permission (New-ServicePrincipal, Add-MailboxPermission -AccessRights FullAccess: see the README, Microsoft 365 app-only)`;
  const google = 'Gmail: users can no longer turn IMAP off (since 2025), but a Workspace admin can still block IMAP or the OAuth app: check the Admin console (Apps > Google Workspace > Gmail > End user access, and Security > API controls)';
  const p = providerOf(f.host);
  return p === 'microsoft' ? microsoft : p === 'google' ? google : `${microsoft}. ${google}`;
}

const expectsStarttls: Rule = (f) => ({
  meaning: `${where(f)} speaks plain IMAP first (the TLS handshake read an IMAP greeting instead of a TLS record): it expects STARTTLS, not implicit TLS.`,
  fix: `Set security: starttls for this server${f.port === 143 ? ' (port 143 is IMAP with STARTTLS)' : ''}, or use the implicit-TLS port (993) with security: tls.`,
});

const expectsImplicitTls: Rule = (f) => ({
  meaning: `${where(f)} sent no IMAP greeting${f.peerSpeaksTls ? ' but answered a TLS handshake' : ''}: it expects implicit TLS${f.port === 993 ? ' (port 993 is IMAPS, TLS from the first byte)' : ''}.`,
  fix: 'Set security: tls for this server, or use port 143 with security: starttls.',
});

const untrustedCertificate =
  (what: string): Rule =>
  (f) => ({
    meaning: `The certificate of ${where(f)} ${what}, so Mailgate cannot tell the server from an impostor.`,
    fix: "Add the server's CA certificate (PEM) as tlsCa on the server; for a self-signed certificate, the certificate itself. tlsRejectUnauthorized: false also connects, but only for tests.",
  });

const tlsGeneric: Rule = (f) => ({
  meaning: `The TLS handshake with ${where(f)} failed.`,
  fix: 'Check that security matches the port (993: tls, 143: starttls) and that the server supports TLS 1.2 or later.',
});

const closed: Rule = (f) => ({
  meaning: `${where(f)} closed the connection${f.security === 'none' && f.port === 993 ? ' (port 993 expects TLS from the first byte)' : ''}.`,
  fix: f.security !== 'tls' && f.port === 993 ? 'Set security: tls for port 993.' : 'The server may limit connections or drop clients after a refusal; check the previous step and retry.',
});

function authRefused(f: ImapFailureFacts): SmtpExplanation {
  const status = f.oauthStatus ? ` (status ${f.oauthStatus}${f.oauthScope ? `, wants scope ${f.oauthScope}` : ''})` : '';
  if (f.mechanism !== 'XOAUTH2' && f.mechanism !== 'OAUTHBEARER') {
    const p = providerOf(f.host);
    return {
      meaning: 'The server refused the username and password.',
      fix:
        p === 'microsoft'
          ? 'Microsoft 365 no longer accepts passwords for IMAP (basic authentication is off): use auth: { type: oauth2, credential }.'
          : p === 'google'
            ? 'Gmail accepts an app password (with 2-step verification) or, better, OAuth2 (auth: { type: oauth2, credential }).'
            : 'Check the username and password.',
    };
  }
  if (f.oauthStatus === '403' || f.oauthStatus === 'insufficient_scope') {
    return {
      meaning: `The token is valid but not allowed to open this mailbox over IMAP${status}.`,
      fix: `Add the IMAP scope (${f.oauthScope ?? scopes(f)}) to the credential and run ${reauthorize(f)}.`,
    };
  }
  const microsoft = providerOf(f.host) === 'microsoft'
    ? ' Microsoft 365 answers just "AUTHENTICATE failed." to all of these, and also to app-only tokens whose app has no Exchange service principal or no permission on the mailbox.'
    : '';
  return {
    meaning: `The server refused the access token${status}: the token is invalid or expired, or lacks the IMAP scope (${scopes(f)}), or belongs to another account than ${mailbox(f)}, or IMAP is disabled for the mailbox.${microsoft}`,
    fix: `Check that username is the account that signed in and that the credential's scopes include ${scopes(f)}. ${imapDisabledFix(f)}. If a refreshed token is refused too, run ${reauthorize(f)}.`,
  };
}

/** Node's socket, DNS and certificate codes, imapflow's codes, our own, and the MailgateError codes getAccessToken raises. */
const CODE_RULES: Record<string, Rule> = {
  ECONNREFUSED: (f) => ({ meaning: `Nothing listens on ${where(f)} (connection refused).`, fix: 'Check host and port (IMAP: 993 with security: tls, or 143 with starttls); a firewall may reject the port, or the service is down.' }),
  ECONNRESET: (f) => (f.security === 'tls' && f.port === 143 ? expectsStarttls(f) : { meaning: `${where(f)} reset the connection.`, fix: 'A firewall or the server dropped the connection; check the port and security setting.' }),
  ETIMEDOUT: (f) => ({ meaning: `No answer from ${where(f)}: the connection attempt timed out.`, fix: 'A firewall may silently drop the traffic, or the host is down; check host, port and egress rules.' }),
  CONNECT_TIMEOUT: (f) => CODE_RULES.ETIMEDOUT!(f),
  ENOTFOUND: (f) => ({ meaning: `The host name ${f.host} does not resolve (DNS: no such host).`, fix: 'Check the spelling of host.' }),
  EAI_AGAIN: (f) => ({ meaning: `DNS lookup of ${f.host} failed temporarily.`, fix: 'Check the DNS resolver of the machine Mailgate runs on, then retry.' }),
  EHOSTUNREACH: (f) => ({ meaning: `No route to ${f.host}.`, fix: 'Check the network and firewall between Mailgate and the server.' }),
  ENETUNREACH: (f) => ({ meaning: `The network of ${f.host} is unreachable (often IPv6 without IPv6 connectivity).`, fix: 'Check the network; use the IPv4 address if IPv6 is not routed.' }),
  DEPTH_ZERO_SELF_SIGNED_CERT: untrustedCertificate('is self-signed'),
  SELF_SIGNED_CERT_IN_CHAIN: untrustedCertificate('chains to a self-signed root that is not trusted (a private CA, or a TLS-inspecting proxy)'),
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: untrustedCertificate('is signed by an unknown issuer (private CA, or the server omits an intermediate certificate)'),
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: untrustedCertificate('is signed by an issuer not in the trusted CAs'),
  CERT_HAS_EXPIRED: (f) => ({ meaning: `The certificate of ${where(f)} has expired.`, fix: "The server's admin must renew the certificate; until then tlsRejectUnauthorized: false connects (insecure)." }),
  CERT_NOT_YET_VALID: (f) => ({ meaning: `The certificate of ${where(f)} is not valid yet.`, fix: "Check the clock of the machine Mailgate runs on, and the certificate's start date." }),
  ERR_TLS_CERT_ALTNAME_INVALID: (f) => ({
    meaning: `The certificate of ${where(f)} is not issued for the name ${f.host} (hostname mismatch).`,
    fix: "Use the host name the certificate names (the provider's documented IMAP host, e.g. outlook.office365.com or imap.gmail.com), not an IP address or alias.",
  }),
  ERR_SSL_WRONG_VERSION_NUMBER: (f) => (f.security === 'tls' ? expectsStarttls(f) : tlsGeneric(f)),
  ERR_SSL_PACKET_LENGTH_TOO_LONG: (f) => (f.security === 'tls' ? expectsStarttls(f) : tlsGeneric(f)),
  ERR_SSL_UNSUPPORTED_PROTOCOL: (f) => ({ meaning: `${where(f)} offers only TLS versions too old to be safe (before TLS 1.2).`, fix: "The server's admin must enable TLS 1.2 or 1.3." }),
  GREETING_TIMEOUT: (f) =>
    f.security !== 'tls' && (f.peerSpeaksTls || f.port === 993)
      ? expectsImplicitTls(f)
      : { meaning: `${where(f)} accepted the connection but sent no IMAP greeting.`, fix: 'Check that the port is an IMAP port (993 or 143); the server may be overloaded.' },
  UPGRADE_TIMEOUT: (f) => ({ meaning: `The STARTTLS handshake with ${where(f)} did not finish.`, fix: 'Check that the port speaks STARTTLS (143) and the security setting matches it.' }),
  ETIMEOUT: (f) => ({ meaning: `${where(f)} stopped answering.`, fix: 'Retry; if it persists, the server or a middlebox is dropping the session.' }),
  NoConnection: closed,
  EConnectionClosed: closed,
  ClosedAfterConnectText: closed,
  ClosedAfterConnectTLS: closed,
  [ImapTestCode.STARTTLS_NOT_OFFERED]: (f) => ({
    meaning: `${where(f)} does not offer STARTTLS, so the login cannot be protected on this connection.`,
    fix: f.port === 993 ? 'Port 993 expects implicit TLS: set security: tls.' : 'Use implicit TLS (port 993, security: tls); security: none only for a trusted server on loopback.',
  }),
  [ImapTestCode.MECHANISM_NOT_OFFERED]: (f) => ({
    meaning: `${where(f)} offers no OAuth2 login (neither XOAUTH2 nor OAUTHBEARER).`,
    fix: "Use the provider's OAuth2-capable IMAP host (outlook.office365.com, imap.gmail.com), or password auth if the server supports only that.",
  }),
  [ImapTestCode.LOGIN_DISABLED]: (f) => ({
    meaning: `${where(f)} refuses passwords on an unencrypted connection (LOGINDISABLED).`,
    fix: f.security === 'none' ? 'Set security: starttls (port 143) or tls (port 993).' : 'Check the security setting; the server should allow a login after TLS.',
  }),
  [ImapTestCode.USERNAME_MISSING]: () => ({ meaning: 'The server has no username, and the IMAP login needs the mailbox to log in as.', fix: 'Set username to the mailbox address (for OAuth2: the account that signed in).' }),
  [ImapTestCode.PASSWORD_MISSING]: () => ({ meaning: 'The server uses password auth but has no password stored.', fix: 'Set auth.password on the server.' }),
  [ImapTestCode.AUTH_MISSING]: () => ({ meaning: 'The server has auth type none, but an IMAP mailbox needs a login.', fix: 'Set auth to { type: oauth2, credential } or { type: password }.' }),
  [ImapTestCode.AUTH_REFUSED]: authRefused,
  [ImapTestCode.SESSION_REFUSED]: (f) => ({
    meaning: `The server accepted the login but would not open ${mailbox(f)} (Exchange: "User is authenticated but not connected"): the token's account or app has no access to this mailbox.`,
    fix: `Check that username is the mailbox the token may open. For app-only (client credentials) credentials: New-ServicePrincipal for the app and Add-MailboxPermission -Identity ${mailbox(f)} -User <service principal ID> -AccessRights FullAccess (see the README).`,
  }),
  [ImapTestCode.FOLDER_NOT_FOUND]: (f) => ({
    meaning: `The folder "${f.folder ?? 'INBOX'}" does not exist in ${mailbox(f)}.`,
    fix: `Use an existing folder${f.folders && f.folders.length > 0 ? ` (${f.folders.slice(0, 12).join(', ')}${f.folders.length > 12 ? ', …' : ''})` : ''}; names are case-sensitive (only INBOX is not), Gmail's system folders are under "[Gmail]/" and Microsoft 365 may show the default folders in the mailbox's language.`,
  }),
  [ImapTestCode.NOT_IMAP]: (f) => ({
    meaning: `${where(f)} does not speak IMAP${OTHER_PROTOCOL_PORTS[f.port] ? ` (port ${f.port} is ${OTHER_PROTOCOL_PORTS[f.port]})` : ''}.`,
    fix: 'Use the IMAP port: 993 with security: tls or 143 with security: starttls.',
  }),
  [ImapTestCode.COMMAND_FAILED]: () => ({ meaning: 'The server refused the command.', fix: 'Read the server reply in the step detail.' }),
  CREDENTIAL_NOT_CONNECTED: (f) => ({ meaning: `The credential ${f.credential ?? ''} has no tokens yet.`, fix: `Connect it: ${reauthorize(f)} (or Connect in the web UI).` }),
  CREDENTIAL_NEEDS_REAUTHORIZATION: (f) => ({ meaning: 'The refresh token is dead (expired, revoked, password changed or MFA required).', fix: `Sign in again: ${reauthorize(f)}.` }),
  CREDENTIAL_CLIENT_SECRET_INVALID: () => ({ meaning: 'The provider refused the OAuth client itself (wrong or expired client secret, unknown client ID).', fix: 'Create a new client secret in the provider portal and update the credential.' }),
  CREDENTIAL_DISABLED: () => ({ meaning: 'The credential is disabled.', fix: 'Enable the credential, or point the server at another one.' }),
  TOKEN_REFRESH_FAILED: () => ({ meaning: 'The token endpoint could not be reached or failed temporarily.', fix: 'Retry later; Mailgate keeps retrying with backoff.' }),
  TOKEN_REQUEST_REFUSED: () => ({ meaning: 'The provider refused the token request (invalid scope or a policy).', fix: "Check the credential's scopes and the app registration." }),
  NOT_FOUND: (f) => ({ meaning: `The credential ${f.credential ?? ''} does not exist.`, fix: 'Create it, or point the server at an existing credential.' }),
};

/** The explanation of a failure, from the most specific fact to the most general; always an answer. */
export function explainImapFailure(facts: ImapFailureFacts): SmtpExplanation {
  const rule = facts.code !== undefined ? CODE_RULES[facts.code] : undefined;
  if (rule) return rule(facts);
  // OpenSSL reasons, only for handshake errors without a code (raised before OpenSSL's error queue was filled)
  if (facts.tlsReason && /wrong version number|packet length too long|record layer failure/i.test(facts.tlsReason)) {
    return facts.security === 'tls' ? expectsStarttls(facts) : tlsGeneric(facts);
  }
  if (facts.code?.startsWith('ERR_SSL_') || facts.code?.startsWith('ERR_TLS_')) return tlsGeneric(facts);
  if (facts.code?.startsWith('ParserError')) {
    return CODE_RULES[ImapTestCode.NOT_IMAP]!(facts);
  }
  return { meaning: `The test failed${facts.code ? ` (${facts.code})` : ''}.`, fix: 'Read the step detail; Mailgate has no explanation for this failure yet.' };
}
