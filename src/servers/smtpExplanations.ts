// What an SMTP server test failure means and what fixes it: tables keyed on reply codes, enhanced status codes,
// XOAUTH2 status, Node/OpenSSL error codes and the port/security pairing, never on English text where a code exists.
import { connectionClosed, connectionExplanations, mailbox, reauthorize, stoppedAnswering, unexplained, where, type ConnectionFacts, type Explanation, type Rule } from './connectionExplanations.js';

export type SmtpExplanation = Explanation;

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
export interface SmtpFailureFacts extends ConnectionFacts {
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
}

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

/** Keyed on "reply code + enhanced status"; entries without enhanced status match the reply code alone. */
const REPLY_RULES: Record<string, Rule<SmtpFailureFacts>> = {
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
const XOAUTH2_RULES: Record<string, Rule<SmtpFailureFacts>> = {
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

const connection = connectionExplanations({
  portHint: '',
  dropNote: ' (many networks block outbound 25/465/587)',
  documentedHost: "see the provider's documented SMTP host",
  portPairing: '465: tls, 587: starttls',
  plainFirstPorts: STARTTLS_PORTS,
  expectsPlainFirst: expectsStarttls,
  namesTlsVersionAlert: true,
});

/** The shared connection, TLS and credential codes, then the codes the SMTP test raises itself. */
const CODE_RULES: Record<string, Rule<SmtpFailureFacts>> = {
  ...connection.rules,
  [SmtpTestCode.CONNECT_TIMEOUT]: connection.timedOut,
  [SmtpTestCode.TLS_TIMEOUT]: (f) => ({ meaning: `The TLS handshake with ${where(f)} did not finish.`, fix: 'Check that the port speaks TLS and the security setting matches it.' }),
  [SmtpTestCode.GREETING_TIMEOUT]: (f) =>
    f.security !== 'tls' && (f.peerSpeaksTls || IMPLICIT_TLS_PORTS.has(f.port))
      ? expectsImplicitTls(f)
      : { meaning: `${where(f)} accepted the connection but sent no SMTP greeting.`, fix: 'Check that the port is an SMTP port; the server may be overloaded or tarpitting.' },
  [SmtpTestCode.REPLY_TIMEOUT]: stoppedAnswering,
  [SmtpTestCode.CONNECTION_CLOSED]: connectionClosed,
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
  [SmtpTestCode.FROM_MISSING]: () => ({ meaning: 'No From address for the test message: the server has no username and no from was given.', fix: 'Pass a from address, or set username on the server.' }),
};

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
  const known = connection.byCodeOrReason(facts, CODE_RULES);
  if (known) return known;
  if (facts.responseCode !== undefined) {
    return facts.responseCode >= 500
      ? { meaning: `The server refused permanently (${facts.responseCode}${facts.enhancedStatus ? ` ${facts.enhancedStatus}` : ''}).`, fix: 'Read the server reply in the step detail; it usually names the policy or the problem.' }
      : { meaning: `The server refused temporarily (${facts.responseCode}${facts.enhancedStatus ? ` ${facts.enhancedStatus}` : ''}).`, fix: 'Retry later.' };
  }
  if (connection.isTlsCode(facts.code)) return connection.tlsGeneric(facts);
  return unexplained(facts);
}
