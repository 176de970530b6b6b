// The outbox's way to SMTP: one pooled nodemailer transport per server, run in a thread of its own (smtpThread.ts) so sending and the HTTP API each get a core.
import { Worker } from 'node:worker_threads';
import type { ResolvedServer } from '../servers/model.js';
import type { TokenManager } from '../tokens/tokenManager.js';
import type { FromSmtpThread, ThreadMail, ToSmtpThread } from './smtpPools.js';

/** What a send returns: the server's final reply and the recipients it refused (the others took the message). */
export interface SentInfo {
  response: string;
  rejected: string[];
}

/** How long `closeAll` lets the pools say QUIT before the thread is stopped. */
const CLOSE_WAIT_MS = 2000;
/** Token errors handed to nodemailer are kept this many at most until their send fails with them. */
const KEPT_PROVISION_ERRORS = 256;

interface Pending {
  resolve: (info: SentInfo) => void;
  reject: (err: Error) => void;
}

export class SmtpTransports {
  #thread: Worker | undefined;
  readonly #pending = new Map<number, Pending>();
  readonly #closing = new Map<number, () => void>();
  #nextId = 1;
  /** The settings the current thread has for each server (as JSON, and the object they came in): a change rebuilds that server's pool. */
  readonly #configured = new Map<string, { server: ResolvedServer; key: string }>();
  /** The token manager's own errors, by the id the thread got with them: a send failing with one fails with the original. */
  readonly #provisionErrors = new Map<number, Error>();

  constructor(
    private readonly tokens: TokenManager,
    private readonly connectionsPerServer: number,
  ) {}

  /** Sends one message through `server`'s pool (built, or rebuilt when the server's settings changed). */
  send(server: ResolvedServer, mail: ThreadMail): Promise<SentInfo> {
    const thread = this.#threadRunning();
    const id = this.#nextId++;
    let settings: Extract<ToSmtpThread, { type: 'send' }>['server'];
    const known = this.#configured.get(server.name);
    // The outbox hands the same object for a second at a time: compare the settings only when the object is new.
    if (known?.server !== server) {
      const key = JSON.stringify(server);
      if (known?.key !== key) {
        // A server's `connections` limit (Microsoft 365: 3 per mailbox) caps this instance's pool.
        settings = { settings: server, maxConnections: Math.min(this.connectionsPerServer, server.limits?.connections ?? Infinity) };
      }
      this.#configured.set(server.name, { server, key });
    }
    return new Promise<SentInfo>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      if (this.#pending.size === 1) thread.ref();
      this.#post({ type: 'send', id, name: server.name, ...(settings ? { server: settings } : {}), mail });
    });
  }

  /** Closes the pool of one server (its settings changed or it was removed). */
  forget(name: string): void {
    if (!this.#configured.delete(name)) return;
    this.#post({ type: 'forget', name });
  }

  /** Closes every pool (QUIT on each connection) and stops the thread; the next send starts a new one. */
  async closeAll(): Promise<void> {
    const thread = this.#thread;
    if (!thread) return;
    const id = this.#nextId++;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.#closing.set(id, resolve);
      timer = setTimeout(resolve, CLOSE_WAIT_MS);
      this.#post({ type: 'close', id });
    });
    clearTimeout(timer);
    this.#closing.delete(id);
    if (this.#thread === thread) this.#forgetThread(new Error('the SMTP connections were closed (Mailgate is stopping)'));
    await thread.terminate();
  }

  #threadRunning(): Worker {
    if (this.#thread) return this.#thread;
    const entry = threadEntry();
    const thread = new Worker(entry.code, { eval: entry.eval });
    thread.unref();
    thread.on('message', (message: FromSmtpThread) => this.#received(message));
    thread.on('error', (err) => {
      if (this.#thread === thread) this.#forgetThread(err);
    });
    thread.on('exit', (code) => {
      if (this.#thread === thread) this.#forgetThread(new Error(`the SMTP thread stopped (exit code ${code})`));
    });
    this.#thread = thread;
    return thread;
  }

  /** The thread is gone: its sends fail as a lost connection would (retried later), and the next send starts a new thread. */
  #forgetThread(cause: Error): void {
    this.#thread = undefined;
    this.#configured.clear();
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const { reject } of pending) reject(Object.assign(new Error(`sending was interrupted: ${cause.message}`), { code: 'ECONNECTION' }));
    for (const resolve of this.#closing.values()) resolve();
  }

  #post(message: ToSmtpThread): void {
    this.#thread?.postMessage(message);
  }

  #received(message: FromSmtpThread): void {
    switch (message.type) {
      case 'sent':
      case 'failed': {
        const pending = this.#pending.get(message.id);
        this.#pending.delete(message.id);
        if (this.#pending.size === 0) this.#thread?.unref();
        if (!pending) return;
        if (message.type === 'sent') pending.resolve({ response: message.response, rejected: message.rejected });
        else pending.reject(this.#errorOf(message.error));
        return;
      }
      case 'needToken':
        this.#provideToken(message.id, message.credential, message.renew);
        return;
      case 'closed':
        this.#closing.get(message.id)?.();
        return;
    }
  }

  #provideToken(id: number, credential: string, renew: boolean): void {
    this.tokens.getAccessToken(credential, { forceRefresh: renew }).then(
      (token) => this.#post({ type: 'token', id, accessToken: token.accessToken.reveal(), expires: token.expiresAt ? Date.parse(token.expiresAt) : undefined }),
      (err: unknown) => {
        const error = err instanceof Error ? err : new Error(String(err));
        this.#provisionErrors.set(id, error);
        if (this.#provisionErrors.size > KEPT_PROVISION_ERRORS) this.#provisionErrors.delete(this.#provisionErrors.keys().next().value!);
        this.#post({ type: 'token', id, error: error.message, provisionId: id });
      },
    );
  }

  /** A send error as nodemailer raised it in the thread (its code, reply and refused recipients), or the token error behind it. */
  #errorOf(fields: Extract<FromSmtpThread, { type: 'failed' }>['error']): Error {
    if (fields.provisionId !== undefined) {
      const original = this.#provisionErrors.get(fields.provisionId);
      if (original) return original;
    }
    const { message, provisionId: _provisionId, ...rest } = fields;
    return Object.assign(new Error(message), rest);
  }
}

/**
 * The thread's module. Built (`dist/`), it is the compiled smtpThread.js beside this file. Run from the TypeScript
 * sources (tests, `tsx`), it is smtpThread.ts, which a thread can load only after registering tsx's loader in it (Node 20
 * neither inherits the parent's loader into a thread nor applies `--import` hooks to a thread's entry file).
 */
function threadEntry(): { code: string | URL; eval: boolean } {
  if (!import.meta.url.endsWith('.ts')) return { code: new URL('./smtpThread.js', import.meta.url), eval: false };
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./smtpThread.ts', import.meta.url).href;
  return { code: `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(entry)}); });`, eval: true };
}
