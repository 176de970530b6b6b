// The POP3 client's error codes and its error class, carrying the facts from the wire: the server's -ERR text, its
// RFC 3206 response code, the decoded XOAUTH2 status, and Node's socket/TLS error code. Never a token or password.

export const Pop3ErrorCode = {
  /** The server answered a command with -ERR (the command and the server's text are on the error). */
  POP3_ERR_RESPONSE: 'POP3_ERR_RESPONSE',
  /**
   * The server refused the login (AUTH, USER/PASS). `responseCode` tells credentials (`AUTH`) from "try later"
   * (`SYS/TEMP`, `IN-USE`, `LOGIN-DELAY`, RFC 3206 / RFC 2449 §8.1.2).
   */
  POP3_AUTH_FAILED: 'POP3_AUTH_FAILED',
  /** No TCP connection (refused, unreachable, DNS): `socketCode` says which. */
  POP3_CONNECT_FAILED: 'POP3_CONNECT_FAILED',
  /** Nothing arrived within the timeout (`during` says while waiting for what). */
  POP3_TIMEOUT: 'POP3_TIMEOUT',
  /** The server closed the connection (or reset it) while an answer was awaited. */
  POP3_CONNECTION_CLOSED: 'POP3_CONNECTION_CLOSED',
  /** The TLS handshake failed (untrusted certificate, plain text where TLS was expected, …): `socketCode`. */
  POP3_TLS_FAILED: 'POP3_TLS_FAILED',
  /** The peer does not speak POP3 as expected (not +OK/-ERR, an overlong line, a malformed STAT/LIST/UIDL). */
  POP3_PROTOCOL: 'POP3_PROTOCOL',
  /** A multiline answer grew past the reader's limit (a message over inbound.maxMessageMegabytes, or a server that never ends it): the connection is closed. */
  POP3_TOO_LARGE: 'POP3_TOO_LARGE',
  /** A caller's argument cannot be sent safely (CR/LF in a username, a message number that is not a positive integer). */
  POP3_BAD_ARGUMENT: 'POP3_BAD_ARGUMENT',
  /** The client was used after quit() or close(). */
  POP3_CLOSED: 'POP3_CLOSED',
} as const;
export type Pop3ErrorCode = (typeof Pop3ErrorCode)[keyof typeof Pop3ErrorCode];

/** What the client was waiting for when the failure came. */
export type Pop3Phase = 'connect' | 'tls' | 'greeting' | 'command';

/** The JSON a server sends as XOAUTH2 error challenge, e.g. {"status":"401","schemes":"bearer","scope":"…"}. */
export interface XOAuth2Status {
  status?: string;
  schemes?: string;
  scope?: string;
  /** The decoded challenge as sent (printable ASCII only), also when it is not JSON. */
  raw: string;
}

export interface Pop3ErrorFacts {
  /** The command that failed, without secret arguments: "RETR 3", "AUTH XOAUTH2", "PASS". */
  command?: string;
  /** The server's text after -ERR, without the response code. */
  serverText?: string;
  /** RFC 3206 / RFC 2449 §8 response code from the brackets: AUTH, SYS/TEMP, SYS/PERM, IN-USE, LOGIN-DELAY. */
  responseCode?: string;
  /** The decoded XOAUTH2 error challenge. */
  xoauth2?: XOAuth2Status;
  /** Node's err.code (ECONNREFUSED, DEPTH_ZERO_SELF_SIGNED_CERT, ERR_SSL_WRONG_VERSION_NUMBER). */
  socketCode?: string;
  /** OpenSSL's reason text for handshake errors that come without a code. */
  tlsReason?: string;
  during?: Pop3Phase;
}

export class Pop3Error extends Error implements Pop3ErrorFacts {
  readonly code: Pop3ErrorCode;
  readonly command?: string;
  readonly serverText?: string;
  readonly responseCode?: string;
  readonly xoauth2?: XOAuth2Status;
  readonly socketCode?: string;
  readonly tlsReason?: string;
  readonly during?: Pop3Phase;

  constructor(code: Pop3ErrorCode, message: string, facts: Pop3ErrorFacts = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'Pop3Error';
    this.code = code;
    Object.assign(this, facts);
  }

  /** The facts as a plain object, for logs and explanations. */
  get facts(): Pop3ErrorFacts {
    const { command, serverText, responseCode, xoauth2, socketCode, tlsReason, during } = this;
    return Object.fromEntries(Object.entries({ command, serverText, responseCode, xoauth2, socketCode, tlsReason, during }).filter(([, v]) => v !== undefined));
  }
}

export function isPop3Error(err: unknown, code?: Pop3ErrorCode): err is Pop3Error {
  return err instanceof Pop3Error && (code === undefined || err.code === code);
}
