// What the IMAP proxy says it can do before login: the upstream servers' capabilities (learned once per server, kept briefly) with the proxy's own login mechanisms.
import type { Logger } from '../../log.js';
import type { ResolvedServer } from '../../servers/model.js';
import type { Services } from '../../services.js';
import { accountServer } from './upstreamLogin.js';
import { UpstreamImap } from './upstreamSession.js';

/** How long a server's capability list is trusted; every upstream login refreshes it. */
const CAPABILITIES_TTL_MS = 10 * 60_000;
/** Which servers the proxy accounts use, re-read this often (accounts come and go). */
const SERVERS_TTL_MS = 30_000;
/** A server that could not be asked is not asked again for this long (each client would otherwise wait for it). */
const FAILED_TTL_MS = 60_000;
/** A client waits at most this long for a capability probe; the probe itself goes on and fills the cache. */
const PROBE_WAIT_MS = 3_000;

/**
 * Capabilities the proxy itself decides before login: login and TLS (its own), literals and SASL-IR (it parses
 * the commands), ID (it answers it). Everything else the upstream announces is passed on.
 */
const OWN = /^(AUTH=.*|LOGINDISABLED|STARTTLS|SASL-IR|LITERAL[+-]|ID|IMAP4rev1)$/i;

/** The client's situation that changes the list: STARTTLS still possible, a password allowed on this connection. */
export interface ClientState {
  canStartTls: boolean;
  mayLogin: boolean;
}

export class CapabilityCache {
  #byServer = new Map<string, { capabilities: string[]; at: number }>();
  #probes = new Map<string, Promise<string[] | undefined>>();
  #failed = new Map<string, number>();
  #servers: { servers: ResolvedServer[]; at: number } | undefined;

  constructor(
    private readonly services: Services,
    private readonly logger: Logger,
  ) {}

  /** A server's pre-login capabilities as just seen on a connection (after its TLS). */
  learned(server: ResolvedServer, capabilities: string[]): void {
    this.#byServer.set(keyOf(server), { capabilities, at: Date.now() });
    this.#failed.delete(keyOf(server));
  }

  /** The pre-login list for this client, without the leading `* CAPABILITY`. */
  async preLogin(client: ClientState): Promise<string> {
    const upstream = await this.#upstreamCapabilities();
    const passed = upstream.filter((c) => !OWN.test(c));
    const list = ['IMAP4rev1', ...passed, 'SASL-IR', 'LITERAL+', 'ID'];
    if (client.canStartTls) list.push('STARTTLS');
    // RFC 9051 §6.2.3: LOGINDISABLED while a password may not cross this connection; AUTH=PLAIN once it may.
    if (client.mayLogin) list.push('AUTH=PLAIN');
    else list.push('LOGINDISABLED');
    return list.join(' ');
  }

  /** The capabilities every IMAP server of the proxy accounts shares (usually there is one server). */
  async #upstreamCapabilities(): Promise<string[]> {
    const servers = await this.#imapServers();
    const lists: string[][] = [];
    await Promise.all(
      servers.map(async (server) => {
        const list = await this.#capabilitiesOf(server);
        if (list) lists.push(list);
      }),
    );
    if (lists.length === 0) return [];
    const [first, ...rest] = lists;
    const shared = rest.map((l) => new Set(l.map((c) => c.toUpperCase())));
    return first!.filter((c) => shared.every((s) => s.has(c.toUpperCase())));
  }

  async #capabilitiesOf(server: ResolvedServer): Promise<string[] | undefined> {
    const key = keyOf(server);
    const cached = this.#byServer.get(key);
    if (cached && Date.now() - cached.at < CAPABILITIES_TTL_MS) return cached.capabilities;
    if (Date.now() - (this.#failed.get(key) ?? 0) < FAILED_TTL_MS) return cached?.capabilities;
    let probe = this.#probes.get(key);
    if (!probe) {
      probe = this.#probe(server).finally(() => this.#probes.delete(key));
      this.#probes.set(key, probe);
    }
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), PROBE_WAIT_MS);
    });
    try {
      // A stale list is better than none while a slow server is asked again.
      return (await Promise.race([probe, waited])) ?? cached?.capabilities;
    } finally {
      clearTimeout(timer);
    }
  }

  async #probe(server: ResolvedServer): Promise<string[] | undefined> {
    let upstream: UpstreamImap | undefined;
    try {
      upstream = await UpstreamImap.open(server);
      const capabilities = await upstream.capabilityList();
      this.learned(server, capabilities);
      upstream.logout();
      return capabilities;
    } catch (err) {
      upstream?.close();
      this.#failed.set(keyOf(server), Date.now());
      this.logger.warn({ server: server.name, err: (err as Error).message }, 'cannot learn the IMAP server capabilities; answering CAPABILITY with the proxy own list');
      return undefined;
    }
  }

  async #imapServers(): Promise<ResolvedServer[]> {
    if (!this.#servers || Date.now() - this.#servers.at > SERVERS_TTL_MS) {
      const accounts = await this.services.proxyAccounts.list();
      const servers: ResolvedServer[] = [];
      for (const name of new Set(accounts.map((a) => a.server))) {
        const server = await accountServer(this.services, { name: '', server: name });
        if (server.ok) servers.push(server.server);
      }
      this.#servers = { servers, at: Date.now() };
    }
    return this.#servers.servers;
  }
}

function keyOf(server: ResolvedServer): string {
  return `${server.name}|${server.host}|${server.port}|${server.security}`;
}
