// What the POP3 proxy lists for CAPA before login: its own login methods plus the upstream servers' TOP/UIDL/PIPELINING…, learned once per server and kept briefly.
import type { Pop3Capabilities } from '../../inbound/pop3/capabilities.js';
import type { Logger } from '../../log.js';
import type { ResolvedServer } from '../../servers/model.js';
import type { Services } from '../../services.js';
import { UpstreamPop3 } from './upstreamSession.js';

/** A server's capabilities change with its software or configuration, rarely: five minutes of staleness is harmless. */
const LEARNED_TTL_MS = 5 * 60_000;
/** An unreachable server is asked again soon, but not once per client CAPA. */
const FAILED_TTL_MS = 30_000;

/**
 * Capabilities passed through from the upstream, when every POP3 server behind this listener offers them (before
 * login the proxy cannot know which server the client's account uses). RFC 2449 §6: TOP, UIDL, PIPELINING,
 * EXPIRE, LOGIN-DELAY. RESP-CODES and AUTH-RESP-CODE are the proxy's own: its replies carry the codes.
 */
const PASSED = ['TOP', 'UIDL', 'PIPELINING', 'EXPIRE', 'LOGIN-DELAY'] as const;
/** Listed when no server could be asked: what RFC 1939 servers in practice all do. */
const FALLBACK = ['TOP', 'UIDL'];

interface Learned {
  lines: readonly string[];
  until: number;
}

export class UpstreamCapabilities {
  readonly #learned = new Map<string, Learned>();
  readonly #inflight = new Map<string, Promise<readonly string[]>>();

  constructor(
    private readonly services: Services,
    private readonly logger: Logger,
  ) {}

  /** The CAPA body for a client before login (RFC 2449 §5), without the terminating ".". */
  async forClient(client: { canStartTls: boolean; mayLogin: boolean }): Promise<string[]> {
    const upstream = await this.#shared();
    const lines = [...upstream, 'RESP-CODES', 'AUTH-RESP-CODE'];
    if (client.canStartTls) lines.push('STLS');
    lines.push('USER');
    // Like Dovecot: plaintext SASL mechanisms are listed only where a password may be sent.
    if (client.mayLogin) lines.push('SASL PLAIN');
    lines.push('IMPLEMENTATION Mailgate');
    return lines;
  }

  /** The passed-through capabilities all POP3 servers of proxy accounts have in common. */
  async #shared(): Promise<readonly string[]> {
    const servers = await this.#servers();
    if (servers.length === 0) return FALLBACK;
    const each = await Promise.all(servers.map((server) => this.#learn(server)));
    // whole lines: servers that keep mail for different EXPIRE periods have no EXPIRE in common
    const same = (a: string, b: string) => a.replace(/\s+/g, ' ').toUpperCase() === b.replace(/\s+/g, ' ').toUpperCase();
    return each.reduce((common, lines) => common.filter((line) => lines.some((l) => same(l, line))));
  }

  /** The POP3 servers with OAuth2 that proxy accounts are bound to. */
  async #servers(): Promise<ResolvedServer[]> {
    const names = [...new Set((await this.services.proxyAccounts.list()).map((account) => account.server))];
    const rows = await Promise.all(names.map((name) => this.services.serverRepo.find(name)));
    return rows.filter((row) => row !== undefined && row.protocol === 'pop3').map((row) => this.services.serverRepo.resolve(row!));
  }

  /** One probe per server at a time; concurrent CAPAs share it. */
  #learn(server: ResolvedServer): Promise<readonly string[]> {
    const key = `${server.name}\0${server.host}\0${server.port}\0${server.security}`;
    const known = this.#learned.get(key);
    if (known && known.until > Date.now()) return Promise.resolve(known.lines);
    let probe = this.#inflight.get(key);
    if (!probe) {
      probe = this.#probe(server).then(
        (lines) => {
          this.#learned.set(key, { lines, until: Date.now() + LEARNED_TTL_MS });
          return lines;
        },
        (err: unknown) => {
          this.logger.warn({ server: server.name, err: (err as Error).message }, 'cannot learn the POP3 server capabilities: listing the basic ones');
          this.#learned.set(key, { lines: FALLBACK, until: Date.now() + FAILED_TTL_MS });
          return FALLBACK;
        },
      );
      probe.finally(() => this.#inflight.delete(key)).catch(() => undefined);
      this.#inflight.set(key, probe);
    }
    return probe;
  }

  async #probe(server: ResolvedServer): Promise<readonly string[]> {
    const upstream = await UpstreamPop3.open(server);
    try {
      return passedThrough(await upstream.capabilities());
    } finally {
      upstream.quit();
    }
  }
}

/** The server's capability lines the proxy may repeat (with their arguments: `EXPIRE 30`, `LOGIN-DELAY 900`). */
export function passedThrough(capabilities: Pop3Capabilities): readonly string[] {
  if (!capabilities.supported) return FALLBACK;
  return capabilities.lines.filter((line) => (PASSED as readonly string[]).includes(line.split(/\s+/)[0]!.toUpperCase()));
}
