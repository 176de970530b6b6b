// What an IMAP server test failure means and what fixes it: tables keyed on Node/OpenSSL error codes, imapflow's
// codes, the IMAP test's own and the port/security pairing (143 vs 993), never on English text where a code exists.
import { connectionExplanations, mailbox, reauthorize, stoppedAnswering, unexplained, where, type ConnectionFacts, type Explanation, type Rule as ConnectionRule } from './connectionExplanations.js';

/** Failure codes the IMAP test raises itself, besides Node's, OpenSSL's, imapflow's and MailgateError's. */
export const ImapTestCode = {
  /** security: starttls, but the server's capabilities do not list STARTTLS. */
  STARTTLS_NOT_OFFERED: 'STARTTLS_NOT_OFFERED',
  /** The server offers no mechanism this server's auth can use (an OAuth2 one for tokens, PLAIN/LOGIN for passwords). */
  MECHANISM_NOT_OFFERED: 'MECHANISM_NOT_OFFERED',
  /** LOGINDISABLED and no AUTH=PLAIN/LOGIN on this connection: the server refuses passwords in clear. */
  LOGIN_DISABLED: 'LOGIN_DISABLED',
  USERNAME_MISSING: 'USERNAME_MISSING',
  PASSWORD_MISSING: 'PASSWORD_MISSING',
  /** auth.type is none, and IMAP has no mailbox without a login (unless the server greets with PREAUTH). */
  AUTH_MISSING: 'AUTH_MISSING',
  /** The server answered the login with NO/BAD (imapflow's authenticationFailed). */
  AUTH_REFUSED: 'AUTH_REFUSED',
  /** The login was accepted but the session then refused (Exchange: "User is authenticated but not connected"). */
  SESSION_REFUSED: 'SESSION_REFUSED',
  /** The peer answered, but not with an IMAP greeting (an SMTP or POP3 port). */
  NOT_IMAP: 'NOT_IMAP',
  /** The folder does not exist (STATUS answered NO and LIST does not know it). */
  FOLDER_NOT_FOUND: 'FOLDER_NOT_FOUND',
  /** STATUS or LIST failed otherwise. */
  COMMAND_FAILED: 'COMMAND_FAILED',
} as const;
export type ImapTestCode = (typeof ImapTestCode)[keyof typeof ImapTestCode];

/** Everything known about one failure; every field is a fact from the wire or the configuration, no secret. */
export interface ImapFailureFacts extends ConnectionFacts {
  /** The response code of the tagged NO/BAD ("AUTHENTICATIONFAILED", "NONEXISTENT"). */
  responseCode?: string;
  /** `status` of the JSON a server sends as SASL error challenge: "400"/"401" (XOAUTH2: Google, Dovecot) or "invalid_token" (OAUTHBEARER, RFC 7628). */
  oauthStatus?: string;
  /** `scope` of that JSON, when the server names the scope it wants. */
  oauthScope?: string;
  /** The text of the server's refusal, without its tag (for limits that come without a response code). */
  serverText?: string;
  /** The SASL mechanism tried (XOAUTH2, OAUTHBEARER, PLAIN, LOGIN). */
  mechanism?: string;
  /** The folder the mailbox step reads. */
  folder?: string;
  /** The folders the server listed, to name the existing ones when the folder is missing. */
  folders?: string[];
}

type Rule = ConnectionRule<ImapFailureFacts>;

/** The provider, by the documented IMAP hosts (outlook.office365.com, imap.gmail.com), for provider-specific fixes. */
function providerOf(host: string): 'microsoft' | 'google' | undefined {
  if (/(^|\.)(office365\.com|outlook\.com|office\.com)$/i.test(host)) return 'microsoft';
  if (/(^|\.)(gmail\.com|googlemail\.com)$/i.test(host)) return 'google';
  return undefined;
}

/** Ports of other mail protocols, named when someone points an IMAP server at them. */
const OTHER_PROTOCOL_PORTS: Record<number, string> = { 25: 'SMTP', 465: 'SMTP submission over TLS', 587: 'SMTP submission', 110: 'POP3', 995: 'POP3S' };

const SCOPE = { microsoft: 'https://outlook.office.com/IMAP.AccessAsUser.All', google: 'https://mail.google.com/' } as const;
const scopes = (f: ImapFailureFacts) => {
  const p = providerOf(f.host);
  return p ? SCOPE[p] : `${SCOPE.microsoft} (Microsoft 365) or ${SCOPE.google} (Gmail)`;
};

/** What disables IMAP for a mailbox, per provider (RFC-less, from the providers' admin documentation). */
function imapDisabledFix(f: ImapFailureFacts): string {
  const microsoft = `Microsoft 365: enable IMAP for the mailbox (Set-CASMailbox -Identity ${mailbox(f)} -ImapEnabled $true); for app-only (client credentials) credentials Exchange also needs the app's service principal and a mailbox permission (New-ServicePrincipal, Add-MailboxPermission -AccessRights FullAccess: see the README, Microsoft 365 app-only)`;
  const google = 'Gmail: users can no longer turn IMAP off (since 2025), but a Workspace admin can still block IMAP or the OAuth app: check the Admin console (Apps > Google Workspace > Gmail > End user access, and Security > API controls)';
  const p = providerOf(f.host);
  return p === 'microsoft' ? microsoft : p === 'google' ? google : `${microsoft}. ${google}`;
}

const expectsStarttls: Rule = (f) => ({
  meaning: `${where(f)} speaks plain IMAP first (the TLS handshake read an IMAP greeting instead of a TLS record): it expects STARTTLS, not implicit TLS.`,
  fix: `Set security: starttls for this server${f.port === 143 ? ' (port 143 is IMAP with STARTTLS)' : ''}, or use the implicit-TLS port (993) with security: tls.`,
});

const expectsImplicitTls: Rule = (f) => ({
  meaning: `${where(f)} sent no IMAP greeting${f.peerSpeaksTls ? ' but answered a TLS handshake' : ''}: it expects implicit TLS${f.port === 993 ? ' (port 993 is IMAPS, TLS from the first byte)' : ''}.`,
  fix: 'Set security: tls for this server, or use port 143 with security: starttls.',
});

const connection = connectionExplanations({
  portHint: ' (IMAP: 993 with security: tls, or 143 with starttls)',
  dropNote: '',
  documentedHost: "the provider's documented IMAP host, e.g. outlook.office365.com or imap.gmail.com",
  portPairing: '993: tls, 143: starttls',
  plainFirstPorts: new Set([143]),
  expectsPlainFirst: expectsStarttls,
  namesTlsVersionAlert: false,
});

const closed: Rule = (f) => ({
  meaning: `${where(f)} closed the connection${f.security === 'none' && f.port === 993 ? ' (port 993 expects TLS from the first byte)' : ''}.`,
  fix: f.security !== 'tls' && f.port === 993 ? 'Set security: tls for port 993.' : 'The server may limit connections or drop clients after a refusal; check the previous step and retry.',
});

/**
 * A login refused because the account has too many connections open, not because of its password or token: Dovecot's
 * mail_max_userip_connections ("Maximum number of connections from user+IP exceeded"), Gmail's "Too many simultaneous
 * connections", Microsoft 365's limit of about 20 IMAP connections per mailbox. RFC 5530 codes first, the words second
 * (most servers send them without a code).
 */
function isConnectionLimit(f: ImapFailureFacts): boolean {
  if (f.responseCode === 'LIMIT' || f.responseCode === 'INUSE') return true;
  return /maximum number of connections|too many (simultaneous |concurrent )?connections|connection limit/i.test(f.serverText ?? '');
}

function connectionLimit(f: ImapFailureFacts): Explanation {
  const p = providerOf(f.host);
  const limit = p === 'microsoft' ? ' (Microsoft 365 allows about 20 IMAP connections per mailbox)' : p === 'google' ? ' (Gmail allows 15 IMAP connections per account)' : '';
  return {
    meaning: `${where(f)} refused the login because ${mailbox(f)} already has as many connections open as it allows${limit}; the password or token itself was not the problem.`,
    fix: 'Close other connections to this mailbox (mail programs, other watchers or proxies logged in as the same account, sessions left open), or raise the server\'s per-user limit (Dovecot: mail_max_userip_connections); then test again.',
  };
}

function authRefused(f: ImapFailureFacts): Explanation {
  if (isConnectionLimit(f)) return connectionLimit(f);
  const status = f.oauthStatus ? ` (status ${f.oauthStatus}${f.oauthScope ? `, wants scope ${f.oauthScope}` : ''})` : '';
  if (f.mechanism !== 'XOAUTH2' && f.mechanism !== 'OAUTHBEARER') {
    const p = providerOf(f.host);
    return {
      meaning: 'The server refused the username and password.',
      fix:
        p === 'microsoft'
          ? 'Microsoft 365 no longer accepts passwords for IMAP (basic authentication is off): use auth: { type: oauth2, credential }.'
          : p === 'google'
            ? 'Gmail accepts an app password (with 2-step verification) or, better, OAuth2 (auth: { type: oauth2, credential }).'
            : 'Check the username and password.',
    };
  }
  if (f.oauthStatus === '403' || f.oauthStatus === 'insufficient_scope') {
    return {
      meaning: `The token is valid but not allowed to open this mailbox over IMAP${status}.`,
      fix: `Add the IMAP scope (${f.oauthScope ?? scopes(f)}) to the credential and run ${reauthorize(f)}.`,
    };
  }
  const microsoft = providerOf(f.host) === 'microsoft'
    ? ' Microsoft 365 answers just "AUTHENTICATE failed." to all of these, and also to app-only tokens whose app has no Exchange service principal or no permission on the mailbox.'
    : '';
  return {
    meaning: `The server refused the access token${status}: the token is invalid or expired, or lacks the IMAP scope (${scopes(f)}), or belongs to another account than ${mailbox(f)}, or IMAP is disabled for the mailbox.${microsoft}`,
    fix: `Check that username is the account that signed in and that the credential's scopes include ${scopes(f)}. ${imapDisabledFix(f)}. If a refreshed token is refused too, run ${reauthorize(f)}.`,
  };
}

/** The shared connection, TLS and credential codes, then imapflow's codes and the IMAP test's own. */
const CODE_RULES: Record<string, Rule> = {
  ...connection.rules,
  CONNECT_TIMEOUT: connection.timedOut,
  GREETING_TIMEOUT: (f) =>
    f.security !== 'tls' && (f.peerSpeaksTls || f.port === 993)
      ? expectsImplicitTls(f)
      : { meaning: `${where(f)} accepted the connection but sent no IMAP greeting.`, fix: 'Check that the port is an IMAP port (993 or 143); the server may be overloaded.' },
  UPGRADE_TIMEOUT: (f) => ({ meaning: `The STARTTLS handshake with ${where(f)} did not finish.`, fix: 'Check that the port speaks STARTTLS (143) and the security setting matches it.' }),
  ETIMEOUT: stoppedAnswering,
  NoConnection: closed,
  EConnectionClosed: closed,
  ClosedAfterConnectText: closed,
  ClosedAfterConnectTLS: closed,
  [ImapTestCode.STARTTLS_NOT_OFFERED]: (f) => ({
    meaning: `${where(f)} does not offer STARTTLS, so the login cannot be protected on this connection.`,
    fix: f.port === 993 ? 'Port 993 expects implicit TLS: set security: tls.' : 'Use implicit TLS (port 993, security: tls); security: none only for a trusted server on loopback.',
  }),
  [ImapTestCode.MECHANISM_NOT_OFFERED]: (f) => ({
    meaning: `${where(f)} offers no OAuth2 login (neither XOAUTH2 nor OAUTHBEARER).`,
    fix: "Use the provider's OAuth2-capable IMAP host (outlook.office365.com, imap.gmail.com), or password auth if the server supports only that.",
  }),
  [ImapTestCode.LOGIN_DISABLED]: (f) => ({
    meaning: `${where(f)} refuses passwords on an unencrypted connection (LOGINDISABLED).`,
    fix: f.security === 'none' ? 'Set security: starttls (port 143) or tls (port 993).' : 'Check the security setting; the server should allow a login after TLS.',
  }),
  [ImapTestCode.USERNAME_MISSING]: () => ({ meaning: 'The server has no username, and the IMAP login needs the mailbox to log in as.', fix: 'Set username to the mailbox address (for OAuth2: the account that signed in).' }),
  [ImapTestCode.AUTH_MISSING]: () => ({ meaning: 'The server has auth type none, but an IMAP mailbox needs a login.', fix: 'Set auth to { type: oauth2, credential } or { type: password }.' }),
  [ImapTestCode.AUTH_REFUSED]: authRefused,
  [ImapTestCode.SESSION_REFUSED]: (f) => ({
    meaning: `The server accepted the login but would not open ${mailbox(f)} (Exchange: "User is authenticated but not connected"): the token's account or app has no access to this mailbox.`,
    fix: `Check that username is the mailbox the token may open. For app-only (client credentials) credentials: New-ServicePrincipal for the app and Add-MailboxPermission -Identity ${mailbox(f)} -User <service principal ID> -AccessRights FullAccess (see the README).`,
  }),
  [ImapTestCode.FOLDER_NOT_FOUND]: (f) => ({
    meaning: `The folder "${f.folder ?? 'INBOX'}" does not exist in ${mailbox(f)}.`,
    fix: `Use an existing folder${f.folders && f.folders.length > 0 ? ` (${f.folders.slice(0, 12).join(', ')}${f.folders.length > 12 ? ', …' : ''})` : ''}; names are case-sensitive (only INBOX is not), Gmail's system folders are under "[Gmail]/" and Microsoft 365 may show the default folders in the mailbox's language.`,
  }),
  [ImapTestCode.NOT_IMAP]: (f) => ({
    meaning: `${where(f)} does not speak IMAP${OTHER_PROTOCOL_PORTS[f.port] ? ` (port ${f.port} is ${OTHER_PROTOCOL_PORTS[f.port]})` : ''}.`,
    fix: 'Use the IMAP port: 993 with security: tls or 143 with security: starttls.',
  }),
  [ImapTestCode.COMMAND_FAILED]: () => ({ meaning: 'The server refused the command.', fix: 'Read the server reply in the step detail.' }),
};

/** The explanation of a failure, from the most specific fact to the most general; always an answer. */
export function explainImapFailure(facts: ImapFailureFacts): Explanation {
  const known = connection.byCodeOrReason(facts, CODE_RULES);
  if (known) return known;
  if (connection.isTlsCode(facts.code)) return connection.tlsGeneric(facts);
  if (facts.code?.startsWith('ParserError')) {
    return CODE_RULES[ImapTestCode.NOT_IMAP]!(facts);
  }
  return unexplained(facts);
}
