// The POP3 proxy's pre-login vocabulary: command lines parsed and bounded, SASL PLAIN decoded, and every reply the proxy gives alone.
/**
 * RFC 2449 §4 limits a command line to 255 octets (CRLF included); real clients stay far below it, but a long
 * password or a base64 PLAIN response (RFC 5034 §4 lets the continuation be longer) may not. 8 KB is generous and
 * still bounded; the framework's reader refuses anything past 64 KB without buffering it.
 */
export const MAX_COMMAND_LINE = 8 * 1024;

/** Unknown or malformed commands before login, then the connection is closed (Dovecot's pre-login does the same). */
export const MAX_BAD_COMMANDS = 10;

/** Wrong passwords on one connection before it is closed; the login guard delays and locks across connections. */
export const MAX_FAILED_LOGINS = 3;

export type Pop3Command =
  | { verb: 'CAPA' | 'STLS' | 'QUIT' }
  | { verb: 'USER'; name: string }
  | { verb: 'PASS'; password: string }
  | { verb: 'AUTH'; mechanism: string | undefined; initialResponse: string | undefined }
  | { verb: 'APOP' }
  /** A TRANSACTION-state command (RFC 1939 §5) sent before login. */
  | { verb: 'NOT_YET'; name: string }
  | { verb: 'UNKNOWN' }
  /** Said wrongly: the reply names what is missing. */
  | { verb: 'MALFORMED'; reply: string };

const TRANSACTION_COMMANDS = new Set(['STAT', 'LIST', 'RETR', 'DELE', 'RSET', 'TOP', 'UIDL', 'LAST', 'NOOP']);

/**
 * Control bytes (other than tab) never belong in a POP3 command; neither does text that is not UTF-8 (RFC 6856
 * allows UTF-8 arguments). Such a line is binary garbage, answered with -ERR and a close.
 */
export function isBinary(line: Buffer): boolean {
  for (const byte of line) {
    if ((byte < 0x20 && byte !== 0x09) || byte === 0x7f) return true;
  }
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(line);
    return false;
  } catch {
    return true;
  }
}

/**
 * One command line (CRLF already removed). Keywords are case-insensitive (RFC 1939 §3); PASS keeps everything
 * after its first space, spaces included (RFC 1939 §7 lets a server read the password that way).
 */
export function parseCommand(line: string): Pop3Command {
  const space = line.indexOf(' ');
  const keyword = (space < 0 ? line : line.slice(0, space)).toUpperCase();
  const rest = space < 0 ? '' : line.slice(space + 1);
  switch (keyword) {
    case 'CAPA':
    case 'STLS':
    case 'QUIT':
      return rest.trim() === '' ? { verb: keyword } : { verb: 'MALFORMED', reply: `-ERR ${keyword} takes no arguments` };
    case 'USER': {
      const name = rest.trim();
      return name === '' ? { verb: 'MALFORMED', reply: '-ERR USER needs a name: USER <account>' } : { verb: 'USER', name };
    }
    case 'PASS':
      return rest === '' ? { verb: 'MALFORMED', reply: '-ERR PASS needs the password: PASS <password>' } : { verb: 'PASS', password: rest };
    case 'AUTH': {
      const [mechanism, initialResponse, extra] = rest.trim().split(/\s+/).filter(Boolean);
      if (extra !== undefined) return { verb: 'MALFORMED', reply: '-ERR AUTH takes a mechanism and at most an initial response' };
      return { verb: 'AUTH', mechanism: mechanism?.toUpperCase(), initialResponse };
    }
    case 'APOP':
      return { verb: 'APOP' };
    default:
      return TRANSACTION_COMMANDS.has(keyword) ? { verb: 'NOT_YET', name: keyword } : { verb: 'UNKNOWN' };
  }
}

/**
 * SASL PLAIN (RFC 4616): base64 of `authzid NUL authcid NUL passwd`. An authorization identity other than the
 * login itself would ask to act as someone else, which a proxy account cannot grant.
 */
export function decodePlain(base64: string): { ok: true; user: string; password: string } | { ok: false; reply: string } {
  // RFC 5034 §4: "=" is an empty initial response
  const bytes = base64 === '=' ? Buffer.alloc(0) : decodeBase64Strict(base64);
  if (bytes === undefined) return { ok: false, reply: '-ERR Invalid base64 in the AUTH PLAIN response' };
  const parts = bytes.toString('utf8').split('\0');
  if (parts.length !== 3 || parts[1] === '') return { ok: false, reply: '-ERR [AUTH] AUTH PLAIN expects authzid NUL user NUL password (RFC 4616)' };
  const [authzid, user, password] = parts as [string, string, string];
  if (authzid !== '' && authzid !== user) return { ok: false, reply: '-ERR [AUTH] Logging in as another user (a PLAIN authorization identity) is not supported' };
  return { ok: true, user, password };
}

/** Base64 as RFC 4648 §4 writes it (padding required, no spaces); undefined for anything else. */
export function decodeBase64Strict(text: string): Buffer | undefined {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  return Buffer.from(text, 'base64');
}

/** The replies the proxy gives before login, in one place so tests and clients see the same words. */
export const Reply = {
  greeting: '+OK Mailgate POP3 proxy ready',
  bye: '+OK Bye',
  stlsGo: '+OK Begin TLS negotiation now',
  stlsAlready: '-ERR TLS is already active',
  stlsUnavailable: '-ERR STLS is not available on this listener',
  userAccepted: '+OK Send the password with PASS',
  passWithoutUser: '-ERR No username given: send USER first',
  saslContinue: '+ ',
  authCancelled: '-ERR [AUTH] Authentication cancelled',
  authMechanism: '-ERR Unsupported authentication mechanism: this proxy offers PLAIN (or USER/PASS)',
  apop: '-ERR APOP is not supported: use USER/PASS or AUTH PLAIN',
  unknown: '-ERR Unknown command',
  tooManyBad: '-ERR Too many invalid commands: closing the connection',
  tooManyFailures: '-ERR [AUTH] Too many failed logins on this connection: closing it',
  lineTooLong: '-ERR Line too long: closing the connection',
  binary: '-ERR Binary data is not a POP3 command: closing the connection',
  invalid: '-ERR [AUTH] Invalid credentials',
  notYet: (command: string) => `-ERR ${command} needs a login first (USER/PASS or AUTH PLAIN)`,
  tlsFirst: '-ERR [AUTH] Plaintext authentication is not allowed before TLS: use STLS first',
  noTls: '-ERR [AUTH] Plaintext authentication is not allowed from this address on this listener without TLS: connect to a TLS listener (or an admin sets allowInsecureAuth)',
  locked: (retryAfterMs: number) => `-ERR [SYS/TEMP] Too many failed logins: temporarily locked, try again in ${waitText(retryAfterMs)}`,
} as const;

/** "45 seconds", "15 minutes": a lockout's remaining time as a person reads it (rounded up). */
export function waitText(ms: number): string {
  const seconds = Math.max(1, Math.ceil(ms / 1000));
  if (seconds < 120) return seconds === 1 ? '1 second' : `${seconds} seconds`;
  return `${Math.ceil(seconds / 60)} minutes`;
}
