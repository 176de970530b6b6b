// What an SMTP server test failure means and what fixes it: tables keyed on reply codes, enhanced status codes,
// XOAUTH2 status, Node/OpenSSL error codes and the port/security pairing, never on English text where a code exists.
import type { SecurityMode } from './model.js';

export interface SmtpExplanation {
  meaning: string;
  fix: string;
}

/** Failure codes the server test raises itself, besides Node's (ECONNREFUSED, …) and OpenSSL's (ERR_SSL_…). */
export const SmtpTestCode = {
  /** The TCP connection was not established within the timeout (a firewall that drops, not refuses). */
  CONNECT_TIMEOUT: 'CONNECT_TIMEOUT',
  /** The TLS handshake did not finish within the timeout. */
  TLS_TIMEOUT: 'TLS_TIMEOUT',
  /** Connected, but no SMTP greeting arrived within the timeout. */
  GREETING_TIMEOUT: 'GREETING_TIMEOUT',
  /** A command got no reply within the timeout. */
  REPLY_TIMEOUT: 'REPLY_TIMEOUT',
  /** The server closed the connection while a reply was awaited. */
  CONNECTION_CLOSED: 'CONNECTION_CLOSED',
  /** The peer answered, but not in SMTP (an IMAP or POP3 greeting, binary data). */
  NOT_SMTP: 'NOT_SMTP',
  /** security: starttls, but the server's EHLO does not list STARTTLS. */
  STARTTLS_NOT_OFFERED: 'STARTTLS_NOT_OFFERED',
  /** The server's EHLO lists no AUTH extension on this connection. */
  AUTH_NOT_OFFERED: 'AUTH_NOT_OFFERED',
  /** AUTH is offered, but not the mechanism this server's auth needs. */
  MECHANISM_NOT_OFFERED: 'MECHANISM_NOT_OFFERED',
  /** The server has no username configured (XOAUTH2, PLAIN and LOGIN all need one). */
  USERNAME_MISSING: 'USERNAME_MISSING',
  /** auth.type is password but no password is stored. */
  PASSWORD_MISSING: 'PASSWORD_MISSING',
  /** A test message was asked for but no From address is known (no `from` and no username). */
  FROM_MISSING: 'FROM_MISSING',
} as const;
export type SmtpTestCode = (typeof SmtpTestCode)[keyof typeof SmtpTestCode];

/** Everything known about one failure; every field is a fact from the wire or the configuration, no secret. */
export interface SmtpFailureFacts {
  host: string;
  port: number;
  security: SecurityMode;
  /** Node's err.code (ECONNREFUSED, DEPTH_ZERO_SELF_SIGNED_CERT, ERR_SSL_WRONG_VERSION_NUMBER), a MailgateError code, or an SmtpTestCode. */
  code?: string;
  /** The SMTP reply code (535). */
  responseCode?: number;
  /** The enhanced status code of the reply (RFC 3463), e.g. "5.7.139". */
  enhancedStatus?: string;
  /** The `status` of the JSON error a server sends as XOAUTH2 challenge (Google, Dovecot), e.g. "401". */
  xoauth2Status?: string;
  /** The `scope` of that JSON error, when the server names the scope it wants. */
  xoauth2Scope?: string;
  /** The SASL mechanism tried (XOAUTH2, PLAIN, LOGIN). */
  mechanism?: string;
  /** A quick TLS handshake to the same port succeeded: the port speaks implicit TLS. */
  peerSpeaksTls?: boolean;
  /** The OpenSSL reason text (err.reason), consulted only for handshake errors that arrive without a code. */
  tlsReason?: string;
  /** The credential name (oauth2 servers), for fixes that name a command. */
  credential?: string;
  /** The mailbox the server authenticates as. */
  username?: string;
}

type Rule = (f: SmtpFailureFacts) => SmtpExplanation;

const where = (f: SmtpFailureFacts) => `${f.host}:${f.port}`;
const mailbox = (f: SmtpFailureFacts) => f.username ?? '<mailbox>';
const reauthorize = (f: SmtpFailureFacts) => `mailgate credential authorize ${f.credential ?? 'NAME'}`;
const SCOPES = 'https://outlook.office.com/SMTP.Send (Microsoft 365) or https://mail.google.com/ (Gmail)';

/** Ports whose SMTP service is implicit TLS by convention (RFC 8314 §3.3 names 465 "submissions"). */
const IMPLICIT_TLS_PORTS = new Set([465]);
/** Ports whose SMTP service starts in plain text and upgrades with STARTTLS. */
const STARTTLS_PORTS = new Set([25, 587, 2525]);
/** Ports of other mail protocols, named when someone points an SMTP server at them. */
const OTHER_PROTOCOL_PORTS: Record<number, string> = { 143: 'IMAP', 993: 'IMAPS', 110: 'POP3', 995: 'POP3S' };

const expectsStarttls: Rule = (f) => ({
  meaning: `${where(f)} speaks plain SMTP first (the TLS handshake read an SMTP greeting instead of a TLS record): it expects STARTTLS, not implicit TLS.`,
  fix: `Set security: starttls for this server${f.port === 587 ? ' (port 587 is STARTTLS submission)' : ''}, or use the provider's implicit-TLS port (465) with security: tls.`,
});

const expectsImplicitTls: Rule = (f) => ({
  meaning: `${where(f)} sent no SMTP greeting${f.peerSpeaksTls ? ' but answered a TLS handshake' : ''}: it expects implicit TLS${IMPLICIT_TLS_PORTS.has(f.port) ? ` (port ${f.port} is "submissions", TLS from the first byte)` : ''}.`,
  fix: `Set security: tls for this server, or use the provider's STARTTLS port (587) with security: starttls.`,
});

const untrustedCertificate =
  (what: string): Rule =>
  (f) => ({
    meaning: `The certificate of ${where(f)} ${what}, so Mailgate cannot tell the server from an impostor.`,
    fix: `Add the server's CA certificate (PEM) as tlsCa on the server; for a self-signed certificate, the certificate itself. tlsRejectUnauthorized: false also connects, but only for tests.`,
  });

/** Keyed on "reply code + enhanced status"; entries without enhanced status match the reply code alone. */
const REPLY_RULES: Record<string, Rule> = {
  '535 5.7.139': (f) => ({
    meaning: 'SMTP AUTH (authenticated client submission) is disabled for the tenant or for this mailbox (Microsoft 365).',
    fix: `Enable it for the mailbox: Set-CASMailbox -Identity ${mailbox(f)} -SmtpClientAuthenticationDisabled $false, or tenant-wide: Set-TransportConfig -SmtpClientAuthenticationDisabled $false (Exchange Online PowerShell). If the tenant uses security defaults, they block SMTP AUTH too: turn them off or use Conditional Access instead.`,
  }),
  '535 5.7.3': (f) => ({
    meaning: `Authentication unsuccessful (Microsoft 365): wrong credentials, or the account has no SMTP.Send permission, no Exchange Online license, or the username is not the mailbox the token belongs to.`,
    fix: `Check that username (${mailbox(f)}) is the mailbox address of the account that signed in, that the credential's scopes include https://outlook.office.com/SMTP.Send (or the app has SMTP.SendAsApp and an Exchange service principal for client credentials), and that the mailbox is licensed; then ${f.credential ? `run ${reauthorize(f)}` : 'check the password'}.`,
  }),
  '535 5.7.8': (f) => ({
    meaning: f.mechanism === 'XOAUTH2' ? 'The server rejected the access token (Gmail: invalid, expired or revoked token, or a username that is not its account).' : 'Username and password not accepted.',
    fix: f.mechanism === 'XOAUTH2' ? `Check that username is the signed-in account and the token's scope is ${SCOPES}; if a refresh did not help, run ${reauthorize(f)}.` : 'Check the username and password; Gmail accounts need an app password or OAuth2.',
  }),
  '534 5.7.9': () => ({
    meaning: 'Gmail requires an application-specific password for this account (2-step verification is on).',
    fix: 'Create an app password in the Google account, or better use OAuth2 (auth: { type: oauth2, credential }).',
  }),
  '534 5.7.14': () => ({
    meaning: 'Gmail wants this account to sign in through a web browser first (suspicious sign-in).',
    fix: 'Sign in at https://accounts.google.com with the account, then retry; use OAuth2 to avoid this.',
  }),
  '530 5.7.0': (f) => ({
    meaning: 'The server requires TLS before authentication: it expects STARTTLS first.',
    fix: f.security === 'none' ? 'Set security: starttls for this server.' : 'Make sure the connection is upgraded (security: starttls).',
  }),
  '530 5.7.57': () => ({
    meaning: 'The client was not authenticated to send mail (Microsoft 365 refuses MAIL FROM before AUTH).',
    fix: 'Configure authentication for this server (auth: oauth2 with a credential).',
  }),
  '454 4.7.0': () => ({
    meaning: 'Temporary authentication failure: the server could not check the credentials right now (its identity provider or token introspection is unavailable).',
    fix: 'Retry later; if it persists, check the provider status page.',
  }),
  '504 5.7.4': (f) => ({
    meaning: `The server does not accept the ${f.mechanism ?? 'chosen'} authentication mechanism on this connection.`,
    fix: 'Check which AUTH mechanisms the server offers (ehlo step); some offer them only after STARTTLS.',
  }),
  '550 5.7.60': (f) => ({
    meaning: `The mailbox ${mailbox(f)} has no permission to send as the From address.`,
    fix: 'Send from the mailbox address itself, or grant Send As on the From address to the mailbox (Add-RecipientPermission).',
  }),
  '554 5.2.252': (f) => ({
    meaning: `SendAsDenied: ${mailbox(f)} may not send as the From address (Microsoft 365).`,
    fix: 'Send from the mailbox address itself, or grant Send As to the mailbox.',
  }),
  '550 5.1.1': () => ({ meaning: 'The recipient address does not exist.', fix: 'Check the test recipient address.' }),
  '550 5.1.10': () => ({ meaning: 'The recipient address does not exist (Microsoft 365: RecipientNotFound).', fix: 'Check the test recipient address.' }),
  '421': () => ({
    meaning: 'The server is closing the connection (overloaded, throttling, or shutting down).',
    fix: 'Retry later; if it persists, the server may be limiting connections from this address.',
  }),
  '535': (f) => ({
    meaning: `Authentication failed${f.mechanism ? ` (${f.mechanism})` : ''}.`,
    fix: f.credential ? `Check the username and the credential's scopes (${SCOPES}); run ${reauthorize(f)} if the account changed.` : 'Check the username and password.',
  }),
  '554': () => ({ meaning: 'The server refused the transaction permanently.', fix: 'Read the server reply in the step detail; it usually names a policy.' }),
};

/** XOAUTH2 challenges carry an HTTP-like status (https://developers.google.com/gmail/imap/xoauth2-protocol). */
const XOAUTH2_RULES: Record<string, Rule> = {
  '400': (f) => ({
    meaning: `The server rejected the token as invalid${f.xoauth2Scope ? `; it wants scope ${f.xoauth2Scope}` : ''}: malformed, expired or wrong scope.`,
    fix: `Check that the credential's scopes include ${SCOPES} and that username is the token's account; then run ${reauthorize(f)}.`,
  }),
  '401': (f) => ({
    meaning: `The server rejected the access token: invalid or expired token, or wrong scope — it lacks ${f.xoauth2Scope ?? SCOPES}${f.username ? `, or the token does not belong to ${f.username}` : ''}.`,
    fix: `Check the credential's scopes and that username is the account that signed in; if a fresh token is refused too, run ${reauthorize(f)}.`,
  }),
  '403': (f) => ({
    meaning: `The token is valid but not allowed to use this mailbox over SMTP${f.xoauth2Scope ? ` (needs scope ${f.xoauth2Scope})` : ''}.`,
    fix: `Add the SMTP scope (${SCOPES}) to the credential and run ${reauthorize(f)}.`,
  }),
};

/** Node's socket and DNS error codes, OpenSSL's certificate verification codes, our own codes, and the MailgateError codes getAccessToken raises. */
const CODE_RULES: Record<string, Rule> = {
  ECONNREFUSED: (f) => ({ meaning: `Nothing listens on ${where(f)} (connection refused).`, fix: 'Check host and port; a firewall may reject the port, or the service is down.' }),
  ECONNRESET: (f) =>
    f.security === 'tls' && STARTTLS_PORTS.has(f.port)
      ? expectsStarttls(f)
      : { meaning: `${where(f)} reset the connection.`, fix: 'A firewall or the server dropped the connection; check the port and security setting.' },
  ETIMEDOUT: (f) => ({ meaning: `No answer from ${where(f)}: the connection attempt timed out.`, fix: 'A firewall may silently drop the traffic (many networks block outbound 25/465/587), or the host is down; check host, port and egress rules.' }),
  [SmtpTestCode.CONNECT_TIMEOUT]: (f) => CODE_RULES.ETIMEDOUT!(f),
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
    fix: "Use the host name the certificate names (see the provider's documented SMTP host), not an IP address or alias.",
  }),
  ERR_SSL_WRONG_VERSION_NUMBER: (f) => (f.security === 'tls' ? expectsStarttls(f) : tlsGeneric(f)),
  ERR_SSL_PACKET_LENGTH_TOO_LONG: (f) => (f.security === 'tls' ? expectsStarttls(f) : tlsGeneric(f)),
  ERR_SSL_UNSUPPORTED_PROTOCOL: (f) => ({ meaning: `${where(f)} offers only TLS versions too old to be safe (before TLS 1.2).`, fix: "The server's admin must enable TLS 1.2 or 1.3." }),
  ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION: (f) => CODE_RULES.ERR_SSL_UNSUPPORTED_PROTOCOL!(f),
  [SmtpTestCode.TLS_TIMEOUT]: (f) => ({ meaning: `The TLS handshake with ${where(f)} did not finish.`, fix: 'Check that the port speaks TLS and the security setting matches it.' }),
  [SmtpTestCode.GREETING_TIMEOUT]: (f) =>
    f.security !== 'tls' && (f.peerSpeaksTls || IMPLICIT_TLS_PORTS.has(f.port))
      ? expectsImplicitTls(f)
      : { meaning: `${where(f)} accepted the connection but sent no SMTP greeting.`, fix: 'Check that the port is an SMTP port; the server may be overloaded or tarpitting.' },
  [SmtpTestCode.REPLY_TIMEOUT]: (f) => ({ meaning: `${where(f)} stopped answering.`, fix: 'Retry; if it persists, the server or a middlebox is dropping the session.' }),
  [SmtpTestCode.CONNECTION_CLOSED]: (f) => ({ meaning: `${where(f)} closed the connection.`, fix: 'The server may limit connections or drop clients after a refusal; check the previous step and retry.' }),
  [SmtpTestCode.NOT_SMTP]: (f) => ({
    meaning: `${where(f)} does not speak SMTP${OTHER_PROTOCOL_PORTS[f.port] ? ` (port ${f.port} is ${OTHER_PROTOCOL_PORTS[f.port]})` : ''}.`,
    fix: 'Use the SMTP submission port: 587 with security: starttls or 465 with security: tls.',
  }),
  [SmtpTestCode.STARTTLS_NOT_OFFERED]: (f) => ({
    meaning: `${where(f)} does not offer STARTTLS, so credentials cannot be protected on this connection.`,
    fix: IMPLICIT_TLS_PORTS.has(f.port)
      ? `Port ${f.port} expects implicit TLS: set security: tls.`
      : 'Use the provider\'s submission port (587) or implicit TLS (465, security: tls); security: none only for a trusted relay on loopback.',
  }),
  [SmtpTestCode.AUTH_NOT_OFFERED]: (f) => ({
    meaning: `${where(f)} offers no authentication on this connection${f.security === 'none' ? ' (many servers offer AUTH only after STARTTLS)' : ''}.`,
    fix: f.security === 'none' ? 'Set security: starttls (port 587) or tls (port 465).' : 'Use the submission port (587 or 465); port 25 is for server-to-server relay.',
  }),
  [SmtpTestCode.MECHANISM_NOT_OFFERED]: (f) => ({
    meaning: `${where(f)} does not offer ${f.mechanism ?? 'the needed'} authentication.`,
    fix: f.mechanism === 'XOAUTH2' ? 'Use the provider\'s OAuth2-capable SMTP host (smtp.office365.com, smtp.gmail.com), or password auth if the server supports only that.' : 'Use OAuth2 auth for this server, or a server that accepts passwords.',
  }),
  [SmtpTestCode.USERNAME_MISSING]: () => ({ meaning: 'The server has no username, and SMTP AUTH needs the mailbox to log in as.', fix: 'Set username to the mailbox address (for OAuth2: the account that signed in).' }),
  [SmtpTestCode.PASSWORD_MISSING]: () => ({ meaning: 'The server uses password auth but has no password stored.', fix: 'Set auth.password on the server.' }),
  [SmtpTestCode.FROM_MISSING]: () => ({ meaning: 'No From address for the test message: the server has no username and no from was given.', fix: 'Pass a from address, or set username on the server.' }),
  CREDENTIAL_NOT_CONNECTED: (f) => ({ meaning: `The credential ${f.credential ?? ''} has no tokens yet.`, fix: `Connect it: ${reauthorize(f)} (or Connect in the web UI).` }),
  CREDENTIAL_NEEDS_REAUTHORIZATION: (f) => ({ meaning: 'The refresh token is dead (expired, revoked, password changed or MFA required).', fix: `Sign in again: ${reauthorize(f)}.` }),
  CREDENTIAL_CLIENT_SECRET_INVALID: () => ({ meaning: "The provider refused the OAuth client itself (wrong or expired client secret, unknown client ID).", fix: 'Create a new client secret in the provider portal and update the credential.' }),
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
const TLS_REASON_RULES: [RegExp, Rule][] = [
  [/wrong version number|packet length too long|record layer failure/i, (f) => (f.security === 'tls' ? expectsStarttls(f) : tlsGeneric(f))],
  [/unsupported protocol|protocol version/i, (f) => CODE_RULES.ERR_SSL_UNSUPPORTED_PROTOCOL!(f)],
];

function tlsGeneric(f: SmtpFailureFacts): SmtpExplanation {
  return { meaning: `The TLS handshake with ${where(f)} failed.`, fix: 'Check that security matches the port (465: tls, 587: starttls) and that the server supports TLS 1.2 or later.' };
}

/** The explanation of a failure, from the most specific fact to the most general; always an answer. */
export function explainSmtpFailure(facts: SmtpFailureFacts): SmtpExplanation {
  if (facts.xoauth2Status !== undefined) {
    const rule = XOAUTH2_RULES[facts.xoauth2Status];
    if (rule) return rule(facts);
  }
  if (facts.responseCode !== undefined) {
    const rule =
      (facts.enhancedStatus && REPLY_RULES[`${facts.responseCode} ${facts.enhancedStatus}`]) || REPLY_RULES[String(facts.responseCode)];
    if (rule) return rule(facts);
  }
  if (facts.code !== undefined) {
    const rule = CODE_RULES[facts.code];
    if (rule) return rule(facts);
  }
  if (facts.tlsReason) {
    for (const [pattern, rule] of TLS_REASON_RULES) if (pattern.test(facts.tlsReason)) return rule(facts);
  }
  if (facts.responseCode !== undefined) {
    return facts.responseCode >= 500
      ? { meaning: `The server refused permanently (${facts.responseCode}${facts.enhancedStatus ? ` ${facts.enhancedStatus}` : ''}).`, fix: 'Read the server reply in the step detail; it usually names the policy or the problem.' }
      : { meaning: `The server refused temporarily (${facts.responseCode}${facts.enhancedStatus ? ` ${facts.enhancedStatus}` : ''}).`, fix: 'Retry later.' };
  }
  if (facts.code?.startsWith('ERR_SSL_') || facts.code?.startsWith('ERR_TLS_')) return tlsGeneric(facts);
  return { meaning: `The test failed${facts.code ? ` (${facts.code})` : ''}.`, fix: 'Read the step detail; Mailgate has no explanation for this failure yet.' };
}
