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

/** Entra ID cloud instances: each has its own sign-in host, its own Exchange Online and Graph resources and mail servers. */
export const MICROSOFT_CLOUDS = ['global', 'usgov', 'china'] as const;
export type MicrosoftCloud = (typeof MICROSOFT_CLOUDS)[number];

export interface MicrosoftCloudPreset {
  label: string;
  /** Where credentials sign in: `{authority}/{tenant}/oauth2/v2.0/…`. */
  authority: string;
  /** Older sign-in hosts of the same cloud, still answered by Microsoft: a credential using one keeps this cloud's scopes. */
  authorityAliases: readonly string[];
  /** The Exchange Online resource delegated mail scopes name (`{outlook}/IMAP.AccessAsUser.All`). */
  outlook: string;
  /** App-only (client credentials) access to IMAP/POP/SMTP. */
  appOnlyScope: string;
  graph: string;
  servers: { smtp: string; imap: string; pop3: string };
}

/**
 * The national clouds. US Government is GCC High (GCC "moderate" tenants live in the global cloud; DoD has other
 * mail and Graph hosts: give --authority and --scopes). Microsoft's identity docs name login.partner.microsoftonline.cn
 * for 21Vianet, the host its ID tokens name as issuer; the older login.chinacloudapi.cn answers too.
 * @see https://learn.microsoft.com/entra/identity-platform/authentication-national-cloud
 * @see https://learn.microsoft.com/graph/deployments
 */
export const MICROSOFT_CLOUD_PRESETS: Record<MicrosoftCloud, MicrosoftCloudPreset> = {
  global: {
    label: 'Global (Microsoft 365)',
    authority: MICROSOFT_AUTHORITY,
    authorityAliases: [],
    outlook: 'https://outlook.office.com',
    appOnlyScope: 'https://outlook.office365.com/.default',
    graph: 'https://graph.microsoft.com',
    servers: { smtp: 'smtp.office365.com:587 (STARTTLS)', imap: 'outlook.office365.com:993 (TLS)', pop3: 'outlook.office365.com:995 (TLS)' },
  },
  usgov: {
    label: 'US Government (GCC High)',
    authority: 'https://login.microsoftonline.us',
    authorityAliases: [],
    outlook: 'https://outlook.office365.us',
    appOnlyScope: 'https://outlook.office365.us/.default',
    graph: 'https://graph.microsoft.us',
    servers: { smtp: 'smtp.office365.us:587 (STARTTLS)', imap: 'outlook.office365.us:993 (TLS)', pop3: 'outlook.office365.us:995 (TLS)' },
  },
  china: {
    label: 'China (operated by 21Vianet)',
    authority: 'https://login.partner.microsoftonline.cn',
    authorityAliases: ['https://login.chinacloudapi.cn'],
    outlook: 'https://partner.outlook.cn',
    appOnlyScope: 'https://partner.outlook.cn/.default',
    graph: 'https://microsoftgraph.chinacloudapi.cn',
    servers: { smtp: 'smtp.partner.outlook.cn:587 (STARTTLS)', imap: 'partner.outlook.cn:993 (TLS)', pop3: 'partner.outlook.cn:995 (TLS)' },
  },
};

/** The cloud a sign-in authority belongs to; undefined for any other host (a proxy, a test server). */
export function microsoftCloudOf(authority: string | undefined): MicrosoftCloud | undefined {
  const origin = (authority ?? MICROSOFT_AUTHORITY).replace(/\/+$/, '');
  return MICROSOFT_CLOUDS.find((c) => MICROSOFT_CLOUD_PRESETS[c].authority === origin || MICROSOFT_CLOUD_PRESETS[c].authorityAliases.includes(origin));
}

/** Delegated scopes per protocol in one cloud. */
function microsoftScopes(cloud: MicrosoftCloud): Record<Protocol, string> {
  const { outlook, graph } = MICROSOFT_CLOUD_PRESETS[cloud];
  return {
    smtp: `${outlook}/SMTP.Send`,
    imap: `${outlook}/IMAP.AccessAsUser.All`,
    pop3: `${outlook}/POP.AccessAsUser.All`,
    ews: `${outlook}/EWS.AccessAsUser.All`,
    graph: `${graph}/Mail.Send`,
  };
}

/**
 * Microsoft identity platform v2.0.
 * @see https://learn.microsoft.com/en-us/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth
 */
export const microsoft = {
  endpoints(authority: string, tenant: string): Endpoints {
    const base = `${authority.replace(/\/+$/, '')}/${encodeURIComponent(tenant)}`;
    // An older sign-in host issues under its cloud's own: login.chinacloudapi.cn's ID tokens name login.partner.microsoftonline.cn.
    const cloud = microsoftCloudOf(authority);
    const issuerBase = cloud ? `${MICROSOFT_CLOUD_PRESETS[cloud].authority}/${encodeURIComponent(tenant)}` : base;
    return {
      authorizationUrl: `${base}/oauth2/v2.0/authorize`,
      tokenUrl: `${base}/oauth2/v2.0/token`,
      deviceAuthorizationUrl: `${base}/oauth2/v2.0/devicecode`,
      // The v2.0 issuer names the tenant's GUID; for a domain or "organizations" tenant the client reads it from
      // discovery (oauth/clientConfig.ts).
      issuer: `${issuerBase}/v2.0`,
    };
  },
  /** The global cloud's delegated scopes per protocol; `scopesFor` gives a national cloud's. */
  scopes: microsoftScopes('global'),
  scopesFor: microsoftScopes,
  /** App-only access (client credentials) to IMAP/POP/SMTP: the resource's .default scope (global cloud). */
  appOnlyScope: MICROSOFT_CLOUD_PRESETS.global.appOnlyScope,
  /** select_account: never silently reuse whichever account the browser is signed in to. */
  authParams: { prompt: 'select_account' } as Record<string, string>,
  servers: MICROSOFT_CLOUD_PRESETS.global.servers,
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
