// What the failures every mail protocol shares mean and what fixes them: connection refused, timeouts, DNS, TLS
// certificates and versions, a wrong port/security pairing, and getAccessToken's credential errors. Each protocol's
// table (smtpExplanations.ts, imapExplanations.ts, inbound/pop3/explanations.ts) adds its own entries to these.
import type { ResolvedServer, SecurityMode } from './model.js';
import type { Explanation } from './testReport.js';

export type { Explanation };

/** The facts all three protocols know about a failure; every field is from the wire or the configuration, no secret. */
export interface ConnectionFacts {
  host: string;
  port: number;
  security: SecurityMode;
  /** Node's err.code (ECONNREFUSED, DEPTH_ZERO_SELF_SIGNED_CERT, ERR_SSL_WRONG_VERSION_NUMBER), a MailgateError code, or the protocol's own. */
  code?: string;
  /** A quick TLS handshake to the same port succeeded: the port speaks implicit TLS. */
  peerSpeaksTls?: boolean;
  /** The OpenSSL reason text (err.reason), consulted only for handshake errors that arrive without a code. */
  tlsReason?: string;
  /** The credential name (oauth2 servers), for fixes that name a command. */
  credential?: string;
  /** The mailbox the server authenticates as. */
  username?: string;
}

export type Rule<F extends ConnectionFacts = ConnectionFacts> = (f: F) => Explanation;

export const where = (f: ConnectionFacts) => `${f.host}:${f.port}`;
export const mailbox = (f: ConnectionFacts) => f.username ?? '<mailbox>';
export const reauthorize = (f: ConnectionFacts) => `mailgate credential authorize ${f.credential ?? 'NAME'}`;

/** What differs between the protocols in the shared explanations. */
export interface ConnectionProfile {
  /** After "Check host and port" when nothing listens, e.g. " (POP3: 995 with security: tls, 110 with starttls)". */
  portHint: string;
  /** After "A firewall may silently drop the traffic" on a connect timeout, e.g. " (many networks block outbound 25)". */
  dropNote: string;
  /** Where the right host name is documented, for a certificate issued for another name. */
  documentedHost: string;
  /** The implicit-TLS and plain-first ports, e.g. "995: tls, 110: starttls". */
  portPairing: string;
  /** Ports that speak the protocol in plain text first: a reset under security: tls there means the wrong security. */
  plainFirstPorts: ReadonlySet<number>;
  /** The explanation for a TLS handshake that met the protocol's plain-text greeting. */
  expectsPlainFirst: Rule;
  /**
   * Whether the TLS protocol-version alert and its reason texts are explained as "TLS too old" (SMTP, POP3); IMAP's
   * table never named them, and explains them as a failed handshake.
   */
  namesTlsVersionAlert: boolean;
}

const untrustedCertificate =
  (what: string): Rule =>
  (f) => ({
    meaning: `The certificate of ${where(f)} ${what}, so Mailgate cannot tell the server from an impostor.`,
    fix: "Add the server's CA certificate (PEM) as tlsCa on the server; for a self-signed certificate, the certificate itself. tlsRejectUnauthorized: false also connects, but only for tests.",
  });

const tlsTooOld: Rule = (f) => ({ meaning: `${where(f)} offers only TLS versions too old to be safe (before TLS 1.2).`, fix: "The server's admin must enable TLS 1.2 or 1.3." });

/** The server stopped answering in the middle of a session. */
export const stoppedAnswering: Rule = (f) => ({ meaning: `${where(f)} stopped answering.`, fix: 'Retry; if it persists, the server or a middlebox is dropping the session.' });

/** The server closed the connection while an answer was awaited. */
export const connectionClosed: Rule = (f) => ({ meaning: `${where(f)} closed the connection.`, fix: 'The server may limit connections or drop clients after a refusal; check the previous step and retry.' });

/** The last answer, for a failure no table knows. */
export const unexplained = (f: ConnectionFacts): Explanation => ({
  meaning: `The test failed${f.code ? ` (${f.code})` : ''}.`,
  fix: 'Read the step detail; Mailgate has no explanation for this failure yet.',
});

/** The shared explanations, worded for one protocol. */
export function connectionExplanations(p: ConnectionProfile) {
  const tlsGeneric: Rule = (f) => ({
    meaning: `The TLS handshake with ${where(f)} failed.`,
    fix: `Check that security matches the port (${p.portPairing}) and that the server supports TLS 1.2 or later.`,
  });
  // A TLS handshake that reads a plain-text greeting fails with "wrong version number" or a too long "packet"
  const plainAnswer: Rule = (f) => (f.security === 'tls' ? p.expectsPlainFirst(f) : tlsGeneric(f));
  const timedOut: Rule = (f) => ({
    meaning: `No answer from ${where(f)}: the connection attempt timed out.`,
    fix: `A firewall may silently drop the traffic${p.dropNote}, or the host is down; check host, port and egress rules.`,
  });

  /** Node's socket and DNS error codes, OpenSSL's certificate and handshake codes, and the MailgateError codes getAccessToken raises. */
  const rules: Record<string, Rule> = {
    ECONNREFUSED: (f) => ({ meaning: `Nothing listens on ${where(f)} (connection refused).`, fix: `Check host and port${p.portHint}; a firewall may reject the port, or the service is down.` }),
    ECONNRESET: (f) =>
      f.security === 'tls' && p.plainFirstPorts.has(f.port)
        ? p.expectsPlainFirst(f)
        : { meaning: `${where(f)} reset the connection.`, fix: 'A firewall or the server dropped the connection; check the port and security setting.' },
    ETIMEDOUT: timedOut,
    ENOTFOUND: (f) => ({ meaning: `The host name ${f.host} does not resolve (DNS: no such host).`, fix: 'Check the spelling of host.' }),
    EAI_AGAIN: (f) => ({ meaning: `DNS lookup of ${f.host} failed temporarily.`, fix: 'Check the DNS resolver of the machine Mailgate runs on, then retry.' }),
    EHOSTUNREACH: (f) => ({ meaning: `No route to ${f.host}.`, fix: 'Check the network and firewall between Mailgate and the server.' }),
    ENETUNREACH: (f) => ({ meaning: `The network of ${f.host} is unreachable (often IPv6 without IPv6 connectivity).`, fix: 'Check the network; use the IPv4 address if IPv6 is not routed.' }),
    DEPTH_ZERO_SELF_SIGNED_CERT: untrustedCertificate('is self-signed'),
    SELF_SIGNED_CERT_IN_CHAIN: untrustedCertificate('chains to a self-signed root that is not trusted (a private CA, or a TLS-inspecting proxy)'),
    UNABLE_TO_VERIFY_LEAF_SIGNATURE: untrustedCertificate('is signed by an unknown issuer (private CA, or the server omits an intermediate certificate)'),
    UNABLE_TO_GET_ISSUER_CERT_LOCALLY: untrustedCertificate('is signed by an issuer not in the trusted CAs'),
    CERT_HAS_EXPIRED: (f) => ({ meaning: `The certificate of ${where(f)} has expired.`, fix: "The server's admin must renew the certificate; until then tlsRejectUnauthorized: false connects (insecure)." }),
    CERT_NOT_YET_VALID: (f) => ({ meaning: `The certificate of ${where(f)} is not valid yet.`, fix: "Check the clock of the machine Mailgate runs on, and the certificate's start date." }),
    ERR_TLS_CERT_ALTNAME_INVALID: (f) => ({
      meaning: `The certificate of ${where(f)} is not issued for the name ${f.host} (hostname mismatch).`,
      fix: `Use the host name the certificate names (${p.documentedHost}), not an IP address or alias.`,
    }),
    ERR_SSL_WRONG_VERSION_NUMBER: plainAnswer,
    ERR_SSL_PACKET_LENGTH_TOO_LONG: plainAnswer,
    ERR_SSL_UNSUPPORTED_PROTOCOL: tlsTooOld,
    ...(p.namesTlsVersionAlert ? { ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION: tlsTooOld } : {}),
    PASSWORD_MISSING: () => ({ meaning: 'The server uses password auth but has no password stored.', fix: 'Set auth.password on the server.' }),
    CREDENTIAL_NOT_CONNECTED: (f) => ({ meaning: `The credential ${f.credential ?? ''} has no tokens yet.`, fix: `Connect it: ${reauthorize(f)} (or Connect in the web UI).` }),
    CREDENTIAL_NEEDS_REAUTHORIZATION: (f) => ({ meaning: 'The refresh token is dead (expired, revoked, password changed or MFA required).', fix: `Sign in again: ${reauthorize(f)}.` }),
    CREDENTIAL_CLIENT_SECRET_INVALID: () => ({ meaning: 'The provider refused the OAuth client itself (wrong or expired client secret, unknown client ID).', fix: 'Create a new client secret in the provider portal and update the credential.' }),
    CREDENTIAL_DISABLED: () => ({ meaning: 'The credential is disabled.', fix: 'Enable the credential, or point the server at another one.' }),
    TOKEN_REFRESH_FAILED: () => ({ meaning: 'The token endpoint could not be reached or failed temporarily.', fix: 'Retry later; Mailgate keeps retrying with backoff.' }),
    TOKEN_REQUEST_REFUSED: () => ({ meaning: 'The provider refused the token request (invalid scope or a policy).', fix: "Check the credential's scopes and the app registration." }),
    NOT_FOUND: (f) => ({ meaning: `The credential ${f.credential ?? ''} does not exist.`, fix: 'Create it, or point the server at an existing credential.' }),
  };

  /**
   * OpenSSL reason texts for handshake failures, used only when the error carries no code: Node names most OpenSSL
   * errors (err.code = ERR_SSL_<REASON>), but errors raised before OpenSSL's error queue is filled, and OpenSSL builds
   * whose reason has no name, leave only err.reason or the message.
   */
  const reasonRules: [RegExp, Rule][] = [
    [/wrong version number|packet length too long|record layer failure/i, plainAnswer],
    ...(p.namesTlsVersionAlert ? [[/unsupported protocol|protocol version/i, tlsTooOld] as [RegExp, Rule]] : []),
  ];
  const byTlsReason = (f: ConnectionFacts): Explanation | undefined => {
    if (!f.tlsReason) return undefined;
    for (const [pattern, rule] of reasonRules) if (pattern.test(f.tlsReason)) return rule(f);
    return undefined;
  };
  /** The protocol's code table (its own entries besides the shared rules), else OpenSSL's reason text. */
  const byCodeOrReason = <F extends ConnectionFacts>(f: F, table: Record<string, Rule<F>>): Explanation | undefined =>
    (f.code !== undefined ? table[f.code]?.(f) : undefined) ?? byTlsReason(f);
  /** Any other OpenSSL or Node TLS code: the handshake failed. */
  const isTlsCode = (code: string | undefined) => code?.startsWith('ERR_SSL_') === true || code?.startsWith('ERR_TLS_') === true;

  return { rules, timedOut, tlsGeneric, byCodeOrReason, isTlsCode };
}

/** The facts every failure of a test of this server starts from: where it is, how it is secured, who logs in. */
export function serverFacts(server: Pick<ResolvedServer, 'host' | 'port' | 'security' | 'username' | 'auth'>): ConnectionFacts {
  return {
    host: server.host,
    port: server.port,
    security: server.security,
    ...(server.username ? { username: server.username } : {}),
    ...(server.auth.type === 'oauth2' ? { credential: server.auth.credential } : {}),
  };
}
