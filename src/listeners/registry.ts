// The relay and proxy listeners of this process: address, TLS, state and live sessions, for `mailgate status`, /readyz, /metrics and the web UI.
import type { Store } from '../store/store.js';

export type ListenerKind = 'smtp-relay' | 'imap-proxy' | 'pop3-proxy';
export type ListenerState = 'starting' | 'listening' | 'failed' | 'stopped';

export interface ListenerStatus {
  /** The config key it comes from, e.g. `relay.listeners[0]`, `proxy.imap`. */
  id: string;
  kind: ListenerKind;
  /** `host:port` as configured (the real port once listening, when 0 was asked for). */
  listen: string;
  tls: 'starttls' | 'implicit' | 'none';
  state: ListenerState;
  /** Why it is not listening (`failed`), worded for the operator. */
  error: string | null;
  certificate: { fingerprint256: string; selfSigned: boolean; file: string } | null;
  /** Connections open now, and how many of them have logged in. */
  sessions: number;
  authenticated: number;
  since: string;
}

/** What a listener reports through; one per listener. */
export interface ListenerHandle {
  readonly id: string;
  setState(state: ListenerState, details?: { error?: string; listen?: string; certificate?: ListenerStatus['certificate'] }): void;
  sessionOpened(): void;
  sessionClosed(wasAuthenticated: boolean): void;
  authenticated(): void;
}

const META_KEY = 'listeners';

/** The snapshot `serve` keeps in the store, so `mailgate status` (another process) can say what listens. */
export interface ListenerSnapshot {
  pid: number;
  at: string;
  listeners: ListenerStatus[];
}

export class ListenerRegistry {
  readonly #listeners = new Map<string, ListenerStatus>();
  #persisting: Promise<void> = Promise.resolve();

  constructor(private readonly store: Store) {}

  register(initial: Pick<ListenerStatus, 'id' | 'kind' | 'listen' | 'tls'>): ListenerHandle {
    const status: ListenerStatus = { ...initial, state: 'starting', error: null, certificate: null, sessions: 0, authenticated: 0, since: new Date().toISOString() };
    this.#listeners.set(initial.id, status);
    return {
      id: initial.id,
      setState: (state, details = {}) => {
        status.state = state;
        status.since = new Date().toISOString();
        status.error = details.error ?? null;
        if (details.listen) status.listen = details.listen;
        if (details.certificate !== undefined) status.certificate = details.certificate;
        if (state === 'stopped') {
          status.sessions = 0;
          status.authenticated = 0;
        }
        this.#persist();
      },
      sessionOpened: () => void (status.sessions += 1),
      sessionClosed: (wasAuthenticated) => {
        status.sessions = Math.max(0, status.sessions - 1);
        if (wasAuthenticated) status.authenticated = Math.max(0, status.authenticated - 1);
      },
      authenticated: () => void (status.authenticated += 1),
    };
  }

  list(): ListenerStatus[] {
    return [...this.#listeners.values()].map((s) => ({ ...s }));
  }

  /** Listeners that should listen and do not: /readyz answers 503 while there is one. */
  failed(): ListenerStatus[] {
    return this.list().filter((s) => s.state === 'failed');
  }

  /** Waits for the last snapshot write (shutdown, tests). */
  flush(): Promise<void> {
    return this.#persisting;
  }

  /** The last snapshot a `serve` wrote; `undefined` when none ever ran with listeners. */
  static async readSnapshot(store: Store): Promise<ListenerSnapshot | undefined> {
    const text = await store.getMeta(META_KEY);
    return text ? (JSON.parse(text) as ListenerSnapshot) : undefined;
  }

  #persist(): void {
    const snapshot: ListenerSnapshot = { pid: process.pid, at: new Date().toISOString(), listeners: this.list() };
    this.#persisting = this.#persisting.then(() => this.store.setMeta(META_KEY, JSON.stringify(snapshot))).catch(() => undefined);
  }
}
