// The IMAP server test: connect (with TLS), capabilities, token, authenticate (an OAuth2 token refreshed once if
// refused), list the folders and read the mailbox's status, each step timed and, on failure, explained.
//
// imapflow does the talking, as it does for the watchers, so the test proves the client that will be used. Two
// seams give the per-step facts its one-shot connect() hides: a transport of our own (imapflow's public `transport`
// option) sees the TCP connection and the TLS handshake with Node's own error codes, and the authenticate() hook
// of a subclass runs between the last CAPABILITY and the login, where the token is fetched and the mechanism chosen.
import net from 'node:net';
import tls from 'node:tls';
import { ImapFlow, type ImapFlowError, type ImapFlowOptions, type ImapTransport, type ListResponse } from 'imapflow';
import { ErrorCode, MailgateError, isMailgateError } from '../errors.js';
import { VERSION } from '../version.js';
import { serverFacts } from './connectionExplanations.js';
import { explainImapFailure, ImapTestCode, type ImapFailureFacts } from './imapExplanations.js';
import type { ResolvedServer } from './model.js';
import { briefly, speaksTls, TLS_PROBE_TIMEOUT_MS } from './sockets.js';
import { DEFAULT_TIMEOUT_MS, loginWithToken, StepFailure, StepRecorder, StopTest, type ServerTestDeps, type ServerTestOptions, type ServerTestReport, type ServerTestStep } from './testReport.js';
import { connectedTo, describeTls, plaintextNote, tlsOptions } from './tlsDetails.js';

export { explainImapFailure };

export type ImapTestStepName = 'connect' | 'capabilities' | 'token' | 'auth' | 'folders' | 'mailbox';
export type ImapTestStep = ServerTestStep<ImapTestStepName>;
export type ImapTestReport = ServerTestReport<ImapTestStepName>;
/** TokenManager#getAccessToken fits. */
export type ImapTestDeps = ServerTestDeps;

export interface ImapTestOptions extends ServerTestOptions<ImapTestStepName> {
  /** The folder whose status is read (default INBOX): the watcher's folder. */
  folder?: string;
}

const OAUTH_MECHANISMS = ['XOAUTH2', 'OAUTHBEARER'] as const;

class ImapStepFailure extends StepFailure<ImapFailureFacts> {}

/** imapflow's, Node's and OpenSSL's error facts: codes first, OpenSSL's reason for handshake errors without one. */
function failureOf(err: unknown, where: string): ImapStepFailure {
  if (err instanceof ImapStepFailure) return err;
  if (isMailgateError(err)) return new ImapStepFailure(err.message, { code: err.code }, { cause: err });
  const e = err as ImapFlowError & { reason?: unknown };
  const facts: Partial<ImapFailureFacts> = {};
  if (typeof e?.code === 'string') facts.code = e.code;
  if (typeof e?.serverResponseCode === 'string') facts.responseCode = e.serverResponseCode;
  if (typeof e?.reason === 'string') facts.tlsReason = e.reason;
  else if (facts.code === undefined && e?.tlsFailed && typeof e.message === 'string') facts.tlsReason = e.message;
  // OpenSSL's message is "<thread>:error:<hex>:SSL routines:<function>:<reason>:…": its reason reads better
  const text = typeof e?.reason === 'string' ? e.reason : (e?.message ?? String(err));
  const response = typeof e?.response === 'string' && e.response !== '' ? `: ${e.response}` : '';
  return new ImapStepFailure(`${where}: ${text}${response}${facts.code ? ` (${facts.code})` : ''}`, facts, { cause: err });
}

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
  const baseFacts: ImapFailureFacts = { ...serverFacts(server), folder };
  const steps = new StepRecorder<ImapTestStepName, ImapStepFailure>({
    onStep: options.onStep,
    failureOf: (err) => failureOf(err, 'unexpected failure'),
    explain: (failure) => explainImapFailure({ ...baseFacts, ...failure.facts }),
  });

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
      connectDetail = connectedTo(server, socket.remoteAddress);
      if (server.security === 'none') {
        connected = true;
        // the steps inside imapflow's connect() begin where the previous one ended
        steps.passed('connect', `${connectDetail}, ${plaintextNote(socket.remoteAddress)}`);
      }
    },
    secured(socket, how) {
      connected = true;
      const at = how === 'implicit' ? connectedTo(server, socket.remoteAddress) : `${connectDetail}; STARTTLS`;
      steps.passed('connect', `${at}; ${describeTls(socket, server)}`);
    },
  };

  const login: LoginHook = async (client, base) => {
    capabilitiesShown = true;
    steps.passed('capabilities', describeCapabilities(client));
    const auth = server.auth;
    const user = server.username;
    const caps = client.capabilities;
    const precondition = (): ImapStepFailure | undefined => {
      if (auth.type === 'none') return new ImapStepFailure('auth type none: IMAP needs a login (the server did not greet with PREAUTH)', { code: ImapTestCode.AUTH_MISSING });
      if (!user) return new ImapStepFailure('no username configured', { code: ImapTestCode.USERNAME_MISSING });
      if (auth.type === 'password') {
        if (!auth.password) return new ImapStepFailure('no password stored', { code: ImapTestCode.PASSWORD_MISSING });
        if (caps.has('LOGINDISABLED') && !caps.has('AUTH=PLAIN') && !caps.has('AUTH=LOGIN')) {
          return new ImapStepFailure('the server announces LOGINDISABLED and offers no AUTH=PLAIN or AUTH=LOGIN on this connection', { code: ImapTestCode.LOGIN_DISABLED });
        }
      } else if (!OAUTH_MECHANISMS.some((m) => caps.has(`AUTH=${m}`))) {
        return new ImapStepFailure('the server offers neither AUTH=XOAUTH2 nor AUTH=OAUTHBEARER', { code: ImapTestCode.MECHANISM_NOT_OFFERED, mechanism: 'XOAUTH2' });
      }
      return undefined;
    };
    const problem = precondition();
    if (problem) {
      steps.failed('auth', problem);
      throw new StopTest();
    }

    /** The auth step's body: one login; a refusal by the server is an AUTH_REFUSED failure, with the decoded SASL JSON when there was one. */
    const loginOnce = async (mechanism: string, label: string) => {
      try {
        await base();
      } catch (err) {
        const e = err as ImapFlowError;
        if (!e?.authenticationFailed) throw failureOf(err, `${mechanism} as ${user}${label}`);
        const { facts, shown } = oauthFacts(err);
        // imapflow's text of the tagged reply starts with its tag ("4 NO [AUTHENTICATIONFAILED] …"): the tag says nothing
        const response = typeof e.response === 'string' && e.response !== '' ? e.response.replace(/^\S+ (?=(NO|BAD) )/, '') : e.message;
        throw new ImapStepFailure(`${mechanism} as ${user}${label}: ${response}${shown ? ` (${mechanism} status ${shown})` : ''}`, {
          code: ImapTestCode.AUTH_REFUSED,
          ...(e.serverResponseCode ? { responseCode: e.serverResponseCode } : {}),
          serverText: response.slice(0, 300),
          mechanism,
          ...facts,
        });
      }
      return { detail: `${mechanism} as ${user}${label}: accepted`, value: undefined };
    };

    if (auth.type === 'password') {
      // imapflow's choice: AUTHENTICATE PLAIN, else AUTHENTICATE LOGIN, else the LOGIN command
      const mechanism = caps.has('AUTH=PLAIN') ? 'PLAIN' : caps.has('AUTH=LOGIN') ? 'LOGIN' : 'LOGIN command';
      client.options.auth = { user: user!, pass: auth.password };
      const result = await steps.attempt('auth', () => loginOnce(mechanism, ''));
      if (!result.ok) throw new StopTest();
    } else if (auth.type === 'oauth2') {
      const mechanism = caps.has('AUTH=XOAUTH2') ? 'XOAUTH2' : 'OAUTHBEARER';
      if (mechanism === 'XOAUTH2') caps.delete('AUTH=OAUTHBEARER');
      // Same connection for the retry: IMAP allows another AUTHENTICATE after a NO (RFC 9051 §6.2.2).
      await loginWithToken(steps, deps, auth.credential, {
        login(token, label) {
          // revealed into imapflow's options only for the login; imapflow marks it sensitive on the wire and in its logs
          client.options.auth = { user: user!, accessToken: token.reveal() };
          return loginOnce(mechanism, label);
        },
        refused: (failure) => failure.facts.code === ImapTestCode.AUTH_REFUSED,
      });
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
      if (err instanceof StopTest) throw err;
      throw await connectFailure(err);
    }
    const folders = await steps.must('folders', async () => {
      const list = await client.list();
      return { detail: describeFolders(list), value: list };
    });
    await steps.must('mailbox', async () => {
      let status;
      try {
        status = await client.status(folder, { messages: true, unseen: true, uidValidity: true, uidNext: true });
      } catch (err) {
        if ((err as ImapFlowError)?.code === 'NotFound') {
          const response = (err as { response?: { responseText?: unknown } }).response?.responseText;
          throw new ImapStepFailure(`folder "${folder}" does not exist${typeof response === 'string' ? ` (STATUS: ${response})` : ''}`, {
            code: ImapTestCode.FOLDER_NOT_FOUND,
            folders: folders.map((f) => f.path),
          });
        }
        throw failureOf(err, `STATUS ${folder}`);
      }
      if (!status) throw new ImapStepFailure(`STATUS ${folder} failed`, { code: ImapTestCode.COMMAND_FAILED });
      const count = (n: number | undefined, what: string) => (n === undefined ? `${what} not reported` : `${n} ${what}`);
      return {
        detail: `${status.path}: ${count(status.messages, 'messages')}, ${count(status.unseen, 'unseen')}, UIDVALIDITY ${String(status.uidValidity ?? 'not reported')}, UIDNEXT ${status.uidNext ?? 'not reported'}`,
        value: status,
      };
    });
    ok = true;
  } catch (err) {
    if (!(err instanceof StopTest)) throw err;
  } finally {
    if (client.usable) {
      await briefly(client.logout());
    }
    client.close();
    client.options.auth = undefined;
  }
  return steps.report(server.name, ok);

  /** Records the step that connect() failed in (imapflow rejects with the failure of whichever phase it was in). */
  async function connectFailure(err: unknown): Promise<StopTest> {
    let failure = failureOf(err, connected ? 'IMAP session failed' : 'connection failed');
    // the socket's inactivity timer can fire as early as the greeting timer: both mean the greeting never came
    if (client.greeting === undefined && client.capabilities.size === 0 && (failure.facts.code === 'GREETING_TIMEOUT' || failure.facts.code === 'ETIMEOUT')) {
      failure =
        firstLine !== undefined && !firstLine.startsWith('* ')
          ? new ImapStepFailure(`not an IMAP greeting: "${firstLine}"`, { code: ImapTestCode.NOT_IMAP })
          : new ImapStepFailure(`no IMAP greeting within ${timeoutMs} ms`, { ...failure.facts, code: 'GREETING_TIMEOUT' });
    }
    const code = failure.facts.code;
    if (code === 'GREETING_TIMEOUT' && server.security !== 'tls') {
      const tlsPort = await speaksTls(server.host, server.port, Math.min(timeoutMs, TLS_PROBE_TIMEOUT_MS));
      if (tlsPort) failure = new ImapStepFailure(`${failure.message}; a TLS handshake on the same port succeeded`, { ...failure.facts, peerSpeaksTls: true });
    }
    if (server.security === 'starttls' && (err as ImapFlowError)?.tlsFailed && code === undefined && !client.capabilities.has('STARTTLS')) {
      failure = new ImapStepFailure(`the server does not offer STARTTLS (capabilities: ${[...client.capabilities.keys()].join(' ') || 'none'})`, { code: ImapTestCode.STARTTLS_NOT_OFFERED });
    }
    if (!connected) steps.failed('connect', failure);
    else if (!capabilitiesShown) steps.failed('capabilities', failure);
    else if (loggedIn && (err as ImapFlowError)?.authenticationFailed) {
      // imapflow's NAMESPACE after the login: Exchange accepts an app-only token, then refuses the session
      steps.failed('auth', new ImapStepFailure(`login accepted, then the session was refused: ${failure.message}`, { ...failure.facts, code: ImapTestCode.SESSION_REFUSED }));
    } else steps.failed(loggedIn ? 'folders' : 'auth', failure);
    return new StopTest();
  }
}
