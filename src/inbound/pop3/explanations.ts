// What a POP3 failure means and what fixes it, for the server test and for watchers' alerts: tables keyed on Node and
// OpenSSL error codes, RFC 3206 response codes, the XOAUTH2 status and the port/security pairing (110 vs 995).
import {
  connectionClosed,
  connectionExplanations,
  mailbox,
  reauthorize,
  stoppedAnswering,
  unexplained,
  where,
  type ConnectionFacts,
  type Explanation,
  type Rule as ConnectionRule,
} from '../../servers/connectionExplanations.js';

export type Pop3Explanation = Explanation;

/** Failure codes the server test raises itself, besides Pop3ErrorCode, Node's and OpenSSL's. */
export const Pop3TestCode = {
  /** security: starttls, but CAPA does not list STLS. */
  STLS_NOT_OFFERED: 'STLS_NOT_OFFERED',
  /** CAPA lists SASL mechanisms, without the one this server's auth needs. */
  MECHANISM_NOT_OFFERED: 'MECHANISM_NOT_OFFERED',
  USERNAME_MISSING: 'USERNAME_MISSING',
  PASSWORD_MISSING: 'PASSWORD_MISSING',
  /** auth type none: POP3 has no anonymous access. */
  AUTH_REQUIRED: 'AUTH_REQUIRED',
} as const;
export type Pop3TestCode = (typeof Pop3TestCode)[keyof typeof Pop3TestCode];

/** Everything known about one failure; facts from the wire or the configuration, never a secret. */
export interface Pop3FailureFacts extends ConnectionFacts {
  /** What was awaited when it failed (a timeout while waiting for the greeting tells a TLS-only port). */
  during?: 'connect' | 'tls' | 'greeting' | 'command';
  /** RFC 3206 response code: AUTH, SYS/TEMP, SYS/PERM, IN-USE, LOGIN-DELAY. */
  responseCode?: string;
  /** The server's -ERR text: consulted only for providers whose refusals carry no response code (see PROVIDER_TEXTS). */
  serverText?: string;
  /** `status` of the XOAUTH2 error challenge, e.g. "401". */
  xoauth2Status?: string;
  xoauth2Scope?: string;
  mechanism?: string;
}

type Rule = ConnectionRule<Pop3FailureFacts>;

const SCOPES = 'https://outlook.office.com/POP.AccessAsUser.All (Microsoft 365) or https://mail.google.com/ (Gmail)';
const isMicrosoft = (f: Pop3FailureFacts) => /(^|\.)(office365\.com|outlook\.com|office\.com)$/i.test(f.host);
const isGoogle = (f: Pop3FailureFacts) => /(^|\.)(gmail\.com|google\.com|googlemail\.com)$/i.test(f.host);

/** RFC 8314 §3.3 / RFC 2595 §2: 995 is POP3 over implicit TLS ("pop3s"), 110 POP3 with STLS. */
const IMPLICIT_TLS_PORTS = new Set([995]);
const STLS_PORTS = new Set([110]);
const OTHER_PROTOCOL_PORTS: Record<number, string> = { 25: 'SMTP', 465: 'SMTP submissions', 587: 'SMTP submission', 143: 'IMAP', 993: 'IMAPS' };

const expectsStls: Rule = (f) => ({
  meaning: `${where(f)} speaks plain POP3 first (the TLS handshake read a "+OK" greeting instead of a TLS record): it expects STLS, not implicit TLS.`,
  fix: `Set security: starttls for this server${STLS_PORTS.has(f.port) ? ' (port 110 is POP3 with STLS)' : ''}, or use the implicit-TLS port 995 with security: tls.`,
});

const expectsImplicitTls: Rule = (f) => ({
  meaning: `${where(f)} sent no POP3 greeting${f.peerSpeaksTls ? ' but answered a TLS handshake' : ''}: it expects implicit TLS${IMPLICIT_TLS_PORTS.has(f.port) ? ' (port 995 is "pop3s", TLS from the first byte)' : ''}.`,
  fix: 'Set security: tls for this server, or use port 110 with security: starttls.',
});

const connection = connectionExplanations({
  portHint: ' (POP3: 995 with security: tls, 110 with starttls)',
  dropNote: '',
  documentedHost: "the provider's documented POP3 host: outlook.office365.com, pop.gmail.com",
  portPairing: '995: tls, 110: starttls',
  plainFirstPorts: STLS_PORTS,
  expectsPlainFirst: expectsStls,
  namesTlsVersionAlert: true,
});

const microsoftRefusal: Rule = (f) => ({
  meaning: `Microsoft 365 refused the POP3 login${f.mechanism ? ` (${f.mechanism})` : ''}. It answers the same for every cause: POP disabled for the mailbox (the default for new mailboxes in many tenants), a token without POP.AccessAsUser.All, an app-only token whose service principal has no access to ${mailbox(f)}, or a username that is not the token's mailbox.`,
  fix: `Enable POP for the mailbox: Set-CASMailbox -Identity ${mailbox(f)} -PopEnabled $true (Exchange Online PowerShell); check that the credential's scopes include https://outlook.office.com/POP.AccessAsUser.All (app-only: https://outlook.office365.com/.default, plus New-ServicePrincipal and Add-MailboxPermission -Identity ${mailbox(f)} -User <service principal id> -AccessRights FullAccess) and that username is the signed-in mailbox; then ${f.credential ? `run ${reauthorize(f)}` : 'retry'}.`,
});

/**
 * Provider refusals recognised by their text. POP3 has only the coarse RFC 3206 codes, and Microsoft sends none:
 * the text is the one signal there is. Used for explanations only, never for a decision.
 */
const PROVIDER_TEXTS: [RegExp, Rule][] = [
  [
    /not enabled for POP access/i,
    () => ({
      meaning: 'POP is disabled for this Gmail account.',
      fix: 'In Gmail: Settings → See all settings → Forwarding and POP/IMAP → POP download: Enable POP for all mail (or for mail that arrives from now on), then Save Changes. In Google Workspace the admin must also allow POP (Apps → Google Workspace → Gmail → End user access → POP and IMAP access).',
    }),
  ],
  [
    /web login required|WebLoginRequired/i,
    () => ({
      meaning: 'Gmail wants this account to sign in through a web browser first (suspicious sign-in).',
      fix: 'Sign in at https://accounts.google.com with the account, then retry; OAuth2 avoids this.',
    }),
  ],
  [
    /application-specific password required/i,
    () => ({
      meaning: 'Gmail requires an application-specific password for this account (2-step verification is on).',
      fix: 'Use OAuth2 (auth: { type: oauth2, credential }), or create an app password in the Google account.',
    }),
  ],
  [/unknown user name or bad password|user is authenticated but not connected|logon failure/i, microsoftRefusal],
];

const XOAUTH2_RULES: Record<string, Rule> = {
  '400': (f) => ({
    meaning: `The server rejected the token as invalid${f.xoauth2Scope ? `; it wants scope ${f.xoauth2Scope}` : ''}: malformed, expired or wrong scope.`,
    fix: `Check that the credential's scopes include ${SCOPES} and that username is the token's account; then run ${reauthorize(f)}.`,
  }),
  '401': (f) => ({
    meaning: `The server rejected the access token: invalid or expired token, or wrong scope — it lacks ${SCOPES}${f.username ? `, or the token does not belong to ${f.username}` : ''}.`,
    fix: `Check the credential's scopes and that username is the account that signed in; if a fresh token is refused too, run ${reauthorize(f)}.`,
  }),
  '403': (f) => ({
    meaning: 'The token is valid but not allowed to read this mailbox over POP3.',
    fix: `Add the POP scope (${SCOPES}) to the credential and run ${reauthorize(f)}.`,
  }),
};

/** RFC 3206 response codes (RFC 2449 §8.1.2 for LOGIN-DELAY and IN-USE). */
const RESPONSE_CODE_RULES: Record<string, Rule> = {
  AUTH: (f) => ({
    meaning: `The server refused the credentials${f.mechanism ? ` (${f.mechanism})` : ''}.`,
    fix: f.credential ? `Check username (${mailbox(f)}) and the credential's scopes (${SCOPES}); run ${reauthorize(f)} if the account changed.` : 'Check the username and password.',
  }),
  'SYS/TEMP': () => ({
    meaning: 'The server could not log in the user for a temporary reason (its authentication backend or storage is unavailable).',
    fix: 'Retry later; if it persists, the server operator must look at the server.',
  }),
  'SYS/PERM': () => ({
    meaning: 'The server refused the login for a permanent system reason (the account or the POP service is disabled).',
    fix: "Read the server's text in the step detail; the mailbox's POP access must be enabled by its administrator.",
  }),
  'IN-USE': () => ({
    meaning: 'The mailbox is locked by another POP3 session (RFC 2449: only one session may hold the maildrop).',
    fix: 'Another client (a mail program, another Mailgate instance, a watcher) is connected: stop it, or retry when its session ended.',
  }),
  'LOGIN-DELAY': () => ({
    meaning: 'The server allows logins to this mailbox only every so often (RFC 2449 LOGIN-DELAY).',
    fix: 'Poll less often: at most once per the LOGIN-DELAY the server lists in CAPA.',
  }),
};

/** The shared connection, TLS and credential codes, then Pop3ErrorCode's and the server test's own. */
const CODE_RULES: Record<string, Rule> = {
  ...connection.rules,
  POP3_TIMEOUT: (f) => {
    if (f.during === 'connect') return connection.timedOut(f);
    if (f.during === 'tls') return { meaning: `The TLS handshake with ${where(f)} did not finish.`, fix: 'Check that the port speaks TLS and the security setting matches it (995: tls, 110: starttls).' };
    if (f.during === 'greeting') {
      return f.security !== 'tls' && (f.peerSpeaksTls || IMPLICIT_TLS_PORTS.has(f.port))
        ? expectsImplicitTls(f)
        : { meaning: `${where(f)} accepted the connection but sent no POP3 greeting.`, fix: 'Check that the port is a POP3 port (995 or 110); the server may be overloaded.' };
    }
    return stoppedAnswering(f);
  },
  POP3_CONNECTION_CLOSED: connectionClosed,
  POP3_PROTOCOL: (f) => ({
    meaning: `${where(f)} does not speak POP3${OTHER_PROTOCOL_PORTS[f.port] ? ` (port ${f.port} is ${OTHER_PROTOCOL_PORTS[f.port]})` : ''}.`,
    fix: 'Use the POP3 port: 995 with security: tls, or 110 with security: starttls.',
  }),
  POP3_AUTH_FAILED: (f) => RESPONSE_CODE_RULES.AUTH!(f),
  [Pop3TestCode.STLS_NOT_OFFERED]: (f) => ({
    meaning: `${where(f)} does not offer STLS, so credentials cannot be protected on this connection.`,
    fix: IMPLICIT_TLS_PORTS.has(f.port) ? 'Port 995 expects implicit TLS: set security: tls.' : 'Use implicit TLS (port 995, security: tls); security: none only for a trusted server on loopback.',
  }),
  [Pop3TestCode.MECHANISM_NOT_OFFERED]: (f) => ({
    meaning: `${where(f)} does not offer ${f.mechanism ?? 'the needed'} authentication${f.security === 'none' ? ' on a plain-text connection' : ''}.`,
    fix:
      f.mechanism === 'XOAUTH2'
        ? "Use the provider's OAuth2-capable POP3 host (outlook.office365.com:995, pop.gmail.com:995), or password auth if the server supports only that."
        : 'Use OAuth2 auth for this server, or a server that accepts passwords.',
  }),
  [Pop3TestCode.USERNAME_MISSING]: () => ({ meaning: 'The server has no username, and a POP3 login needs the mailbox to log in as.', fix: 'Set username to the mailbox address (for OAuth2: the account that signed in).' }),
  [Pop3TestCode.AUTH_REQUIRED]: () => ({ meaning: 'POP3 has no anonymous access: every session logs in to a mailbox.', fix: 'Set auth on the server: { type: oauth2, credential } or { type: password, password }.' }),
};

/** The explanation of a failure, from the most specific fact to the most general; always an answer. */
export function explainPop3Failure(facts: Pop3FailureFacts): Pop3Explanation {
  if (facts.serverText) {
    for (const [pattern, rule] of PROVIDER_TEXTS) if (pattern.test(facts.serverText)) return rule(facts);
  }
  if (facts.xoauth2Status !== undefined) {
    const rule = XOAUTH2_RULES[facts.xoauth2Status];
    if (rule) return rule(facts);
  }
  // Microsoft 365 refuses POP logins without a response code and with one text for every cause
  if (facts.code === 'POP3_AUTH_FAILED' && facts.responseCode === undefined && isMicrosoft(facts)) return microsoftRefusal(facts);
  if (facts.responseCode !== undefined) {
    const rule = RESPONSE_CODE_RULES[facts.responseCode];
    if (rule) return rule(facts);
  }
  const known = connection.byCodeOrReason(facts, CODE_RULES);
  if (known) return known;
  if (connection.isTlsCode(facts.code) || facts.code === 'POP3_TLS_FAILED') return connection.tlsGeneric(facts);
  if (facts.code === 'POP3_ERR_RESPONSE') {
    return {
      meaning: `The server refused the command${facts.serverText ? `: ${facts.serverText}` : ''}.`,
      fix: isGoogle(facts) ? "Read the server's text; Gmail names the setting to change." : "Read the server's text in the step detail; it usually names the problem.",
    };
  }
  return unexplained(facts);
}
