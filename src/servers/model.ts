// Mail servers (SMTP, IMAP, POP3) as Mailgate keeps them: validated input, the stored shape, and the view without secrets.
import { z } from 'zod';

export const SERVER_PROTOCOLS = ['smtp', 'imap', 'pop3'] as const;
export type ServerProtocol = (typeof SERVER_PROTOCOLS)[number];
export const SECURITY_MODES = ['tls', 'starttls', 'none'] as const;
export type SecurityMode = (typeof SECURITY_MODES)[number];

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export const LIMIT_NAMES = ['messagesPerMinute', 'recipientsPerMinute', 'messagesPerDay', 'recipientsPerDay', 'connections'] as const;
export type LimitName = (typeof LIMIT_NAMES)[number];
export type SendingLimits = Partial<Record<LimitName, number>>;
/** As configured: a number sets a limit, null switches the preset's limit off, absent keeps the preset. */
export type ConfiguredLimits = Partial<Record<LimitName, number | null>>;

const limitValue = z.preprocess(
  (v) => (typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v === 'none' ? null : v),
  z.number({ error: 'expected a whole number of at least 1, or null (no limit)' }).int({ error: 'expected a whole number of at least 1, or null (no limit)' }).min(1, { error: 'expected a whole number of at least 1, or null (no limit)' }).max(10_000_000, { error: 'expected at most 10000000' }).nullable(),
);

export const limitsInputSchema = z.strictObject({
  messagesPerMinute: limitValue.optional(),
  recipientsPerMinute: limitValue.optional(),
  messagesPerDay: limitValue.optional(),
  recipientsPerDay: limitValue.optional(),
  /** Concurrent SMTP connections to the server from one instance. */
  connections: limitValue.optional(),
});

export interface LimitPreset {
  /** Which published limits these are, as shown to people. */
  name: 'microsoft-365' | 'google-workspace' | 'gmail';
  limits: SendingLimits;
  source: string;
}

/** What an SMTP server's windows hold now and what is left of each limit. */
export interface BudgetView {
  lastMinute: { messages: number; recipients: number };
  lastDay: { messages: number; recipients: number };
  /** What each limit set (connections aside) has used in its window, and what is left of it. */
  used: Partial<Record<LimitName, number>>;
  left: Partial<Record<LimitName, number>>;
  pause: ServerPause | null;
}

/** A pause a provider imposed (throttling reply) or a daily budget spent. */
export interface ServerPause {
  server: string;
  until: string;
  limit: LimitName;
  reason: string;
  pausedAt: string;
}

export const serverAuthInputSchema = z.discriminatedUnion(
  'type',
  [
    z.strictObject({ type: z.literal('password'), password: z.string().optional() }),
    z.strictObject({ type: z.literal('oauth2'), credential: z.string().min(1, { error: 'expected a credential name' }) }),
    z.strictObject({ type: z.literal('none') }),
  ],
  { error: 'expected { type: "password", password } or { type: "oauth2", credential: NAME } or { type: "none" }' },
);

/** What the API, the CLI and mailgate.yaml accept for one server. */
export const serverInputSchema = z.strictObject({
  name: z.string().regex(NAME, { error: 'expected 1-100 letters, digits, ".", "_" or "-" starting with a letter or digit' }),
  protocol: z.enum(SERVER_PROTOCOLS, { error: 'expected one of smtp, imap, pop3' }),
  host: z.string().min(1, { error: 'expected a host name' }).regex(/^[^\s/:]+$|^\[[0-9a-fA-F:.]+\]$/, { error: 'expected a host name or IP address, without scheme or port' }),
  port: z.preprocess(
    (v) => (typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v),
    z.number({ error: 'expected 1-65535' }).int({ error: 'expected 1-65535' }).min(1, { error: 'expected 1-65535' }).max(65535, { error: 'expected 1-65535' }),
  ),
  security: z.enum(SECURITY_MODES, { error: 'expected one of tls, starttls, none' }),
  username: z.string().optional(),
  auth: serverAuthInputSchema.optional(),
  /** PEM certificate(s) to trust besides the system's (a private CA, a self-signed test server). */
  tlsCa: z.string().optional(),
  /** false accepts any certificate: only for tests and emergencies; the server test warns about it. */
  tlsRejectUnauthorized: z.boolean().optional(),
  /** SMTP sending limits; the provider's published ones apply by default when the host is Microsoft's or Google's. */
  limits: limitsInputSchema.optional(),
});
export type ServerInput = z.infer<typeof serverInputSchema>;

export type ServerAuth = { type: 'password'; password: string } | { type: 'oauth2'; credential: string } | { type: 'none' };

/** A server ready to connect to: secrets opened, defaults applied. Lives in memory only. */
export interface ResolvedServer {
  name: string;
  protocol: ServerProtocol;
  host: string;
  port: number;
  security: SecurityMode;
  username: string | undefined;
  auth: ServerAuth;
  tlsCa: string | undefined;
  tlsRejectUnauthorized: boolean;
  /** The limits that apply (preset and configuration merged); absent or empty: none. */
  limits?: SendingLimits;
}

/** What reads show: everything but the password. */
export interface ServerView {
  name: string;
  protocol: ServerProtocol;
  host: string;
  port: number;
  security: SecurityMode;
  username: string | undefined;
  auth: { type: 'password'; hasPassword: boolean } | { type: 'oauth2'; credential: string } | { type: 'none' };
  tlsCa: string | undefined;
  tlsRejectUnauthorized: boolean;
  /** Sending limits as configured (null: a preset's limit switched off)… */
  limits: ConfiguredLimits;
  /** …the provider's published limits for this host, if Mailgate knows them… */
  limitPreset: { name: LimitPreset['name']; limits: SendingLimits; source: string } | null;
  /** …and what applies. */
  effectiveLimits: SendingLimits;
  /** One SMTP server read alone: what its windows hold, what is left, and a provider's pause in force. */
  budget?: BudgetView;
  /** `config`: defined in mailgate.yaml (change it there); `api`: made through the API or CLI. */
  source: 'config' | 'api';
  warnings: { code: string; message: string }[];
  createdAt: string;
  updatedAt: string;
}
