// Connections per listener and per client address: a flood from one device or one address cannot take every slot.
import net from 'node:net';

export type AcquireResult = { ok: true; release: () => void } | { ok: false; reason: 'listener' | 'client' };

export class ConnectionLimits {
  #total = 0;
  readonly #perClient = new Map<string, number>();

  constructor(
    private readonly maxConnections: number,
    private readonly maxPerClient: number,
  ) {}

  acquire(client: string): AcquireResult {
    if (this.#total >= this.maxConnections) return { ok: false, reason: 'listener' };
    const current = this.#perClient.get(client) ?? 0;
    if (current >= this.maxPerClient) return { ok: false, reason: 'client' };
    this.#total += 1;
    this.#perClient.set(client, current + 1);
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.#total -= 1;
        const left = (this.#perClient.get(client) ?? 1) - 1;
        if (left <= 0) this.#perClient.delete(client);
        else this.#perClient.set(client, left);
      },
    };
  }

  get open(): number {
    return this.#total;
  }
}

/** `::ffff:192.0.2.1` → `192.0.2.1`: IPv4 clients of a dual-stack socket, as people write them. */
export function clientAddress(address: string | undefined): string {
  if (!address) return 'unknown';
  return address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
}

export function isLoopback(address: string): boolean {
  return address === '::1' || (net.isIPv4(address) && address.startsWith('127.'));
}

/** Networks (`192.168.10.0/24`, `10.1.2.3`, `fd00::/8`) as one matcher. */
export function networkMatcher(cidrs: readonly string[]): (address: string) => boolean {
  const list = new net.BlockList();
  for (const cidr of cidrs) {
    const [base, bits] = cidr.split('/');
    const type = net.isIPv6(base!) ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(base!, type);
    else list.addSubnet(base!, Number(bits), type);
  }
  return (address) => {
    const type = net.isIPv6(address) ? 'ipv6' : net.isIPv4(address) ? 'ipv4' : undefined;
    return type !== undefined && list.check(address, type);
  };
}
