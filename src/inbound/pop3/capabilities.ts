// What a POP3 server says it can do: its CAPA lines (RFC 2449) read into the fields the client and the proxy decide by.

export interface Pop3Capabilities {
  /** false when the server answered CAPA with -ERR (an RFC 1939-only server): the other fields are then unknown. */
  supported: boolean;
  /** Every capability line as sent, e.g. "SASL PLAIN XOAUTH2", "UIDL", "IMPLEMENTATION Dovecot". */
  lines: string[];
  stls: boolean;
  user: boolean;
  uidl: boolean;
  top: boolean;
  /** Mechanisms from the SASL capability (RFC 5034 §3), upper case; empty when none are offered. */
  sasl: string[];
  /** RFC 2449 §6.5: the server may say when a login is allowed again (LOGIN-DELAY seconds). */
  loginDelay: number | undefined;
  /** RFC 2449 §6.7: days the server keeps retrieved mail ("NEVER", "0" = deleted on retrieval). */
  expire: string | undefined;
}

export function parseCapabilities(lines: string[]): Pop3Capabilities {
  const find = (name: string) => lines.find((l) => l.toUpperCase() === name || l.toUpperCase().startsWith(`${name} `));
  const args = (name: string) => find(name)?.slice(name.length).trim();
  const delay = args('LOGIN-DELAY');
  return {
    supported: true,
    lines,
    stls: find('STLS') !== undefined,
    user: find('USER') !== undefined,
    uidl: find('UIDL') !== undefined,
    top: find('TOP') !== undefined,
    sasl: (args('SASL') ?? '').toUpperCase().split(/\s+/).filter(Boolean),
    loginDelay: delay && /^\d+/.test(delay) ? Number.parseInt(delay, 10) : undefined,
    expire: args('EXPIRE')?.split(/\s+/)[0],
  };
}

/** What is known of a server that answered CAPA with -ERR: nothing. */
export const UNKNOWN_CAPABILITIES: Pop3Capabilities = {
  supported: false,
  lines: [],
  stls: false,
  user: false,
  uidl: false,
  top: false,
  sasl: [],
  loginDelay: undefined,
  expire: undefined,
};
