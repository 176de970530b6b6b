// The report of a server test (SMTP, IMAP, POP3): named steps, each timed and, on failure, explained; and the
// recorder the three tests build it with.
import { performance } from 'node:perf_hooks';

/** Every protocol's steps; each test uses its own subset, in its own order. */
export type ServerTestStepName = 'connect' | 'tls' | 'ehlo' | 'capabilities' | 'token' | 'auth' | 'folders' | 'mailbox' | 'send';

/** What a failure means and what fixes it. */
export interface Explanation {
  meaning: string;
  fix: string;
}

export interface ServerTestStep<Name extends ServerTestStepName = ServerTestStepName> {
  name: Name;
  ok: boolean;
  ms: number;
  /** What happened, from the server's replies; never a token or password. */
  detail: string;
  /** On failure: what it means and what to do. */
  explanation?: Explanation;
}

export interface ServerTestReport<Name extends ServerTestStepName = ServerTestStepName> {
  server: string;
  /** true when the server can be used as configured (an auth attempt that a refreshed token then fixed does not count against it). */
  ok: boolean;
  steps: ServerTestStep<Name>[];
  totalMs: number;
}

export interface ServerTestDeps {
  /** TokenManager#getAccessToken fits. */
  getAccessToken(credential: string, options?: { forceRefresh?: boolean }): Promise<{ accessToken: { reveal(): string }; expiresAt?: string | undefined }>;
}

export interface ServerTestOptions<Name extends ServerTestStepName = ServerTestStepName> {
  /** Deadline of each network wait: connect, handshake, every reply (default 20 s). */
  timeoutMs?: number;
  /** Called as each step completes, so a UI can show them live. */
  onStep?: (step: ServerTestStep<Name>) => void;
}

export const DEFAULT_TIMEOUT_MS = 20_000;

/** A failed step, with the facts the explanation is chosen by. */
export class StepFailure<Facts extends object> extends Error {
  constructor(
    message: string,
    readonly facts: Partial<Facts> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StepFailure';
  }
}

/** Ends the test at a failed step; the step is recorded already. An Error: it is thrown through imapflow's connect() too. */
export class StopTest extends Error {
  constructor() {
    super('server test stopped at a failed step');
    this.name = 'StopTest';
  }
}

type StepBody<T> = () => Promise<{ detail: string; value: T }>;

/** Records the steps of one test run, times them, explains the failed ones and tells the observer. */
export class StepRecorder<Name extends ServerTestStepName, Failure extends Error> {
  readonly steps: ServerTestStep<Name>[] = [];
  readonly #started = performance.now();
  /** When the last step ended: the start of a step that has no call of its own (those inside imapflow's connect()). */
  #mark = this.#started;

  constructor(
    private readonly how: {
      onStep?: ((step: ServerTestStep<Name>) => void) | undefined;
      /** Whatever a step threw, as the failure its explanation is chosen by. */
      failureOf(err: unknown): Failure;
      explain(failure: Failure): Explanation;
    },
  ) {}

  /** Records a step that went well, timed from t0 (default: the end of the previous step). */
  passed(name: Name, detail: string, t0 = this.#mark): void {
    const now = performance.now();
    this.#record({ name, ok: true, ms: Math.round(now - t0), detail }, now);
  }

  /** Records a failed step with its explanation, timed from t0 (default: the end of the previous step). */
  failed(name: Name, failure: Failure, t0 = this.#mark): void {
    const now = performance.now();
    this.#record({ name, ok: false, ms: Math.round(now - t0), detail: failure.message, explanation: this.how.explain(failure) }, now);
  }

  /** Runs one step; records it; on failure returns the failure instead of throwing. */
  async attempt<T>(name: Name, run: StepBody<T>): Promise<{ ok: true; value: T } | { ok: false; failure: Failure }> {
    const t0 = performance.now();
    try {
      const { detail, value } = await run();
      this.passed(name, detail, t0);
      return { ok: true, value };
    } catch (err) {
      const failure = this.how.failureOf(err);
      this.failed(name, failure, t0);
      return { ok: false, failure };
    }
  }

  /** Runs one step that the rest depends on: a failure ends the test (StopTest). */
  async must<T>(name: Name, run: StepBody<T>): Promise<T> {
    const result = await this.attempt(name, run);
    if (!result.ok) throw new StopTest();
    return result.value;
  }

  report(server: string, ok: boolean): ServerTestReport<Name> {
    return { server, ok, steps: this.steps, totalMs: Math.round(performance.now() - this.#started) };
  }

  #record(step: ServerTestStep<Name>, now: number): void {
    this.steps.push(step);
    this.#mark = now;
    try {
      this.how.onStep?.(step);
    } catch {
      // an observer that throws (a closed stream) must not abort the test or leak the socket
    }
  }
}

/**
 * The OAuth2 login: the token step, then the auth step with that token; if the server refused the token, one forced
 * refresh and a second try. A token can be refused while Mailgate still thinks it valid (revoked, or issued before a
 * scope change): the refresh tells that apart from a configuration the provider refuses. Ends the test (StopTest) at
 * a failed step.
 */
export async function loginWithToken<Failure extends Error>(
  steps: { must<T>(name: 'token', run: StepBody<T>): Promise<T>; attempt<T>(name: 'auth', run: StepBody<T>): Promise<{ ok: true; value: T } | { ok: false; failure: Failure }> },
  deps: ServerTestDeps,
  credential: string,
  how: {
    /** The auth step's body for one token; label tells the retry in its detail. */
    login(token: { reveal(): string }, label: string): Promise<{ detail: string; value: unknown }>;
    /** Whether the failure is the server refusing the token, the one failure a fresh token may fix. */
    refused(failure: Failure): boolean;
  },
): Promise<void> {
  const tryWith = async (forceRefresh: boolean, label: string) => {
    const token = await steps.must('token', () => fetchAccessToken(deps, credential, forceRefresh));
    return steps.attempt('auth', () => how.login(token, label));
  };
  const first = await tryWith(false, '');
  if (first.ok) return;
  if (!how.refused(first.failure)) throw new StopTest();
  const second = await tryWith(true, ' (refreshed token, second attempt)');
  if (!second.ok) throw new StopTest();
}

/** The token step: the credential's access token (forced fresh for the retry), described without the token. */
export async function fetchAccessToken(deps: ServerTestDeps, credential: string, forceRefresh: boolean): Promise<{ detail: string; value: { reveal(): string } }> {
  const token = await deps.getAccessToken(credential, forceRefresh ? { forceRefresh: true } : {});
  return {
    detail: `${forceRefresh ? 'refreshed access token' : 'access token'} of credential ${credential}${token.expiresAt ? `, expires ${token.expiresAt}` : ''}`,
    value: token.accessToken,
  };
}
