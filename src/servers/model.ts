// Mail servers (SMTP, IMAP, POP3) as Mailgate keeps them: validated input, the stored shape, and the view without secrets.
import { z } from 'zod';

export const SERVER_PROTOCOLS = ['smtp', 'imap', 'pop3'] as const;
export type ServerProtocol = (typeof SERVER_PROTOCOLS)[number];
export const SECURITY_MODES = ['tls', 'starttls', 'none'] as const;
export type SecurityMode = (typeof SECURITY_MODES)[number];

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

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
  /** `config`: defined in mailgate.yaml (change it there); `api`: made through the API or CLI. */
  source: 'config' | 'api';
  warnings: { code: string; message: string }[];
  createdAt: string;
  updatedAt: string;
}
