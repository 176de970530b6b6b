// Provider presets as data: endpoints, per-protocol scopes and authorization parameters of Microsoft, Google and generic servers.

export const PROVIDERS = ['microsoft', 'google', 'generic'] as const;
export type Provider = (typeof PROVIDERS)[number];

export const GRANTS = ['authorization_code', 'client_credentials', 'device_code'] as const;
export type Grant = (typeof GRANTS)[number];

export const PROTOCOLS = ['smtp', 'imap', 'pop3', 'ews', 'graph'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** OpenID scopes asked for with every user sign-in, so the token response says who signed in. */
export const IDENTITY_SCOPES = ['openid', 'email', 'profile'] as const;

export interface Endpoints {
  authorizationUrl?: string;
  tokenUrl: string;
  issuer?: string;
  deviceAuthorizationUrl?: string;
  revocationUrl?: string;
  userinfoUrl?: string;
}

export const MICROSOFT_AUTHORITY = 'https://login.microsoftonline.com';

/**
 * Microsoft identity platform v2.0.
 * @see https://learn.microsoft.com/en-us/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth
 */
export const microsoft = {
  endpoints(authority: string, tenant: string): Endpoints {
    const base = `${authority.replace(/\/+$/, '')}/${encodeURIComponent(tenant)}`;
    return {
      authorizationUrl: `${base}/oauth2/v2.0/authorize`,
      tokenUrl: `${base}/oauth2/v2.0/token`,
      deviceAuthorizationUrl: `${base}/oauth2/v2.0/devicecode`,
      // The v2.0 issuer names the tenant's GUID; for a domain or "organizations" tenant discovery resolves it.
      issuer: `${base}/v2.0`,
    };
  },
  scopes: {
    smtp: 'https://outlook.office.com/SMTP.Send',
    imap: 'https://outlook.office.com/IMAP.AccessAsUser.All',
    pop3: 'https://outlook.office.com/POP.AccessAsUser.All',
    ews: 'https://outlook.office.com/EWS.AccessAsUser.All',
    graph: 'https://graph.microsoft.com/Mail.Send',
  } satisfies Record<Protocol, string>,
  /** App-only access (client credentials) to IMAP/POP/SMTP: the resource's .default scope. */
  appOnlyScope: 'https://outlook.office365.com/.default',
  /** select_account: never silently reuse whichever account the browser is signed in to. */
  authParams: { prompt: 'select_account' } as Record<string, string>,
  servers: { smtp: 'smtp.office365.com:587 (STARTTLS)', imap: 'outlook.office365.com:993 (TLS)', pop3: 'outlook.office365.com:995 (TLS)' },
};

/**
 * Google OAuth 2.0 for web server applications.
 * @see https://developers.google.com/identity/protocols/oauth2/web-server
 */
export const google = {
  endpoints: {
    authorizationUrl: 'https://accounts.google.com/o/oauth2/v2/auth',
    tokenUrl: 'https://oauth2.googleapis.com/token',
    issuer: 'https://accounts.google.com',
    deviceAuthorizationUrl: 'https://oauth2.googleapis.com/device/code',
    revocationUrl: 'https://oauth2.googleapis.com/revoke',
    userinfoUrl: 'https://openidconnect.googleapis.com/v1/userinfo',
  } satisfies Endpoints,
  /** Gmail has one scope for IMAP, POP and SMTP alike. */
  mailScope: 'https://mail.google.com/',
  /** Google issues a refresh token only with access_type=offline, and again only after prompt=consent. */
  authParams: { access_type: 'offline', prompt: 'consent' } as Record<string, string>,
  servers: { smtp: 'smtp.gmail.com:465 (TLS) or :587 (STARTTLS)', imap: 'imap.gmail.com:993 (TLS)', pop3: 'pop.gmail.com:995 (TLS)' },
};
