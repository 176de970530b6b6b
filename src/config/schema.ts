// The schema of mailgate.yaml: every key, its type, its default, and the words used when a value is wrong.
import { z } from 'zod';
import { serverInputSchema } from '../servers/model.js';
import { senderInputSchema } from '../senders/model.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** A TCP port; digits-only strings (from YAML quoting or the environment) are accepted as numbers. */
export const portSchema = z.preprocess(
  (value) => (typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value),
  z
    .number({ error: 'expected 1-65535' })
    .int({ error: 'expected 1-65535' })
    .min(1, { error: 'expected 1-65535' })
    .max(65535, { error: 'expected 1-65535' }),
);

/** `host:port`, `[v6]:port` or a bare port; the host defaults to 127.0.0.1 so nothing is exposed by accident. */
export const listenSchema = z.string({ error: 'expected "host:port", e.g. "127.0.0.1:8025"' }).transform((value, ctx) => {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value) ?? /^()()(\d{1,5})$/.exec(value);
  const port = match ? Number(match[3]) : NaN;
  if (!match || !(port >= 1 && port <= 65535)) {
    ctx.addIssue({ code: 'custom', message: 'expected "host:port" with a port 1-65535, e.g. "127.0.0.1:8025"' });
    return z.NEVER;
  }
  const host = match[1] ?? (match[2] || '127.0.0.1');
  return { host, port };
});

const httpUrlSchema = z
  .string({ error: 'expected an http(s) URL, e.g. "https://mailgate.example.com"' })
  .refine((value) => URL.canParse(value) && /^https?:$/.test(new URL(value).protocol), {
    error: 'expected an http(s) URL, e.g. "https://mailgate.example.com"',
  })
  .transform((value) => value.replace(/\/+$/, ''));

const CIDR = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F:]+)(\/\d{1,3})?$/;

const intIn = (min: number, max: number, unit = '') => z.number({ error: `expected ${unit}${min}-${max}` }).int({ error: `expected ${unit}${min}-${max}` }).min(min, { error: `expected ${unit}${min}-${max}` }).max(max, { error: `expected ${unit}${min}-${max}` });

/** What every local listener (SMTP relay, IMAP and POP3 proxies) shares: where, which TLS, and how many clients. */
const listenerFields = {
  listen: listenSchema,
  /** `starttls`: plain first, STARTTLS/STLS offered; `implicit`: TLS from the first byte (465, 993, 995); `none`: no TLS at all. */
  tls: z.enum(['starttls', 'implicit', 'none'], { error: 'expected one of starttls, implicit, none' }).optional(),
  /** PEM certificate chain and key; without them Mailgate makes a self-signed certificate once, in the data directory. */
  certFile: z.string({ error: 'expected a file path' }).min(1).optional(),
  keyFile: z.string({ error: 'expected a file path' }).min(1).optional(),
  /** Password logins without TLS from other machines (loopback clients may always): for LAN devices that cannot do TLS. */
  allowInsecureAuth: z.boolean({ error: 'expected true or false' }).optional(),
  maxConnections: intIn(1, 10000).optional(),
  maxConnectionsPerClient: intIn(1, 10000).optional(),
};

const loginLimitFields = {
  /** Failed logins from one address before it is locked out (an account: four times as many, from anywhere). */
  maxLoginFailures: intIn(1, 100).optional(),
  lockoutMinutes: z.number({ error: 'expected minutes, 1-1440' }).min(1, { error: 'expected minutes, 1-1440' }).max(1440, { error: 'expected minutes, 1-1440' }).optional(),
};

export const relayListenerSchema = z
  .strictObject({
    ...listenerFields,
    /** false: no login needed from `allowUnauthenticatedFrom` networks (and only from them). */
    requireAuth: z.boolean({ error: 'expected true or false' }).optional(),
    allowUnauthenticatedFrom: z.array(z.string().regex(CIDR, { error: 'expected an address or CIDR network, e.g. "192.168.10.0/24"' })).optional(),
    /** The sender that unauthenticated submissions go out through. */
    sender: z.string().min(1, { error: 'expected a sender name' }).optional(),
  })
  .refine((l) => l.requireAuth !== false || (l.allowUnauthenticatedFrom?.length ?? 0) > 0, { error: 'requireAuth: false needs allowUnauthenticatedFrom (the networks that may send without a login): Mailgate is never an open relay', path: ['allowUnauthenticatedFrom'] })
  .refine((l) => !(l.requireAuth === true && (l.allowUnauthenticatedFrom?.length ?? 0) > 0), { error: 'allowUnauthenticatedFrom has no effect with requireAuth: true (leave requireAuth out)', path: ['requireAuth'] })
  .refine((l) => !l.allowUnauthenticatedFrom?.length || l.sender, { error: 'allowUnauthenticatedFrom needs "sender": the sender unauthenticated mail goes out through', path: ['sender'] })
  .refine((l) => (l.certFile === undefined) === (l.keyFile === undefined), { error: 'give both certFile and keyFile, or neither (for a self-signed certificate)', path: ['certFile'] });

export const proxyListenerSchema = z
  .strictObject(listenerFields)
  .refine((l) => (l.certFile === undefined) === (l.keyFile === undefined), { error: 'give both certFile and keyFile, or neither (for a self-signed certificate)', path: ['certFile'] });

export const configFileSchema = z.strictObject({
  listen: listenSchema.optional(),
  publicUrl: httpUrlSchema.optional(),
  dataDir: z.string({ error: 'expected a directory path' }).min(1).optional(),
  databaseUrl: z.string({ error: 'expected "sqlite:PATH" or "postgres://…"' }).optional(),
  masterKeyFile: z.string({ error: 'expected a file path' }).min(1).optional(),
  log: z
    .strictObject({
      level: z.enum(LOG_LEVELS, { error: `expected one of ${LOG_LEVELS.join(', ')}` }).optional(),
      /** `text`: one readable line per entry; `json`: one JSON object per line (for log shippers). Default: text at a terminal, else json. */
      format: z.enum(['json', 'text'], { error: 'expected json or text' }).optional(),
    })
    .optional(),
  shutdownTimeoutSeconds: z
    .number({ error: 'expected a number of seconds, 1-600' })
    .min(1, { error: 'expected a number of seconds, 1-600' })
    .max(600, { error: 'expected a number of seconds, 1-600' })
    .optional(),
  tokens: z
    .strictObject({
      refreshMarginSeconds: z.number({ error: 'expected seconds, 30-3000' }).int().min(30, { error: 'expected seconds, 30-3000' }).max(3000, { error: 'expected seconds, 30-3000' }).optional(),
      keepAliveDays: z.number({ error: 'expected days, 1-80' }).min(1, { error: 'expected days, 1-80' }).max(80, { error: 'expected days, 1-80 (providers drop refresh tokens unused for 90 days)' }).optional(),
      schedulerIntervalSeconds: z.number({ error: 'expected seconds, 1-3600' }).min(1, { error: 'expected seconds, 1-3600' }).max(3600, { error: 'expected seconds, 1-3600' }).optional(),
    })
    .optional(),
  outbox: z
    .strictObject({
      maxMessageMegabytes: z.number({ error: 'expected megabytes, 1-150' }).min(1, { error: 'expected megabytes, 1-150' }).max(150, { error: 'expected megabytes, 1-150' }).optional(),
      maxAttempts: z.number({ error: 'expected 1-100' }).int().min(1, { error: 'expected 1-100' }).max(100, { error: 'expected 1-100' }).optional(),
      attemptsPerServer: z.number({ error: 'expected 1-20' }).int().min(1, { error: 'expected 1-20' }).max(20, { error: 'expected 1-20' }).optional(),
      retryBaseSeconds: z.number({ error: 'expected seconds, 0.05-3600' }).min(0.05, { error: 'expected seconds, 0.05-3600' }).max(3600, { error: 'expected seconds, 0.05-3600' }).optional(),
      retryMaxSeconds: z.number({ error: 'expected seconds, 1-86400' }).min(1, { error: 'expected seconds, 1-86400' }).max(86400, { error: 'expected seconds, 1-86400' }).optional(),
      concurrency: z.number({ error: 'expected 1-64' }).int().min(1, { error: 'expected 1-64' }).max(64, { error: 'expected 1-64' }).optional(),
      connectionsPerServer: z.number({ error: 'expected 1-32' }).int().min(1, { error: 'expected 1-32' }).max(32, { error: 'expected 1-32' }).optional(),
      /** How long an idempotency key holds: the same key within it replays the first message (or is refused with another body). */
      idempotencyKeyHours: z.number({ error: 'expected hours, 1-720' }).min(1, { error: 'expected hours, 1-720' }).max(720, { error: 'expected hours, 1-720' }).optional(),
    })
    .optional(),
  inbound: z
    .strictObject({
      maxAttempts: z.number({ error: 'expected 1-100' }).int().min(1, { error: 'expected 1-100' }).max(100, { error: 'expected 1-100' }).optional(),
      retryBaseSeconds: z.number({ error: 'expected seconds, 0.05-3600' }).min(0.05, { error: 'expected seconds, 0.05-3600' }).max(3600, { error: 'expected seconds, 0.05-3600' }).optional(),
      retryMaxSeconds: z.number({ error: 'expected seconds, 1-86400' }).min(1, { error: 'expected seconds, 1-86400' }).max(86400, { error: 'expected seconds, 1-86400' }).optional(),
      maxMessageMegabytes: z.number({ error: 'expected megabytes, 1-500' }).min(1, { error: 'expected megabytes, 1-500' }).max(500, { error: 'expected megabytes, 1-500' }).optional(),
      webhookTimeoutSeconds: z.number({ error: 'expected seconds, 1-120' }).min(1, { error: 'expected seconds, 1-120' }).max(120, { error: 'expected seconds, 1-120' }).optional(),
      reconnectMaxSeconds: z.number({ error: 'expected seconds, 1-3600' }).min(1, { error: 'expected seconds, 1-3600' }).max(3600, { error: 'expected seconds, 1-3600' }).optional(),
      /** How long a replaced webhook secret keeps signing next to the new one (0: it stops at once). */
      webhookSecretGraceHours: z.number({ error: 'expected hours, 0-720' }).min(0, { error: 'expected hours, 0-720' }).max(720, { error: 'expected hours, 0-720' }).optional(),
    })
    .optional(),
  alerts: z
    .strictObject({
      webhook: z.strictObject({ url: z.string().url({ error: 'expected an http(s) URL' }), secret: z.string().min(16, { error: 'expected a signing secret of at least 16 characters' }) }).optional(),
      email: z.strictObject({ sender: z.string().min(1, { error: 'expected a sender name' }), to: z.array(z.string()).min(1, { error: 'expected at least one address' }) }).optional(),
      command: z
        .strictObject({
          path: z.string().min(1, { error: 'expected the path of an executable' }),
          args: z.array(z.string()).optional(),
          timeoutSeconds: z.number({ error: 'expected seconds, 1-300' }).min(1, { error: 'expected seconds, 1-300' }).max(300, { error: 'expected seconds, 1-300' }).optional(),
        })
        .optional(),
      repeatMinutes: z.number({ error: 'expected minutes, 1-1440' }).min(1, { error: 'expected minutes, 1-1440' }).max(1440, { error: 'expected minutes, 1-1440' }).optional(),
      evaluateSeconds: z.number({ error: 'expected seconds, 5-3600' }).min(5, { error: 'expected seconds, 5-3600' }).max(3600, { error: 'expected seconds, 5-3600' }).optional(),
    })
    .optional(),
  instances: z
    .strictObject({
      /** Several instances on one PostgreSQL database: how long a watcher (or the alert loop) stays with an instance that stopped answering. */
      leaseSeconds: intIn(3, 600, 'seconds, ').optional(),
    })
    .optional(),
  retention: z
    .strictObject({
      messageBodyDays: z.number({ error: 'expected days, 1-3650' }).min(1, { error: 'expected days, 1-3650' }).max(3650, { error: 'expected days, 1-3650' }).optional(),
      messageDays: z.number({ error: 'expected days, 1-3650' }).min(1, { error: 'expected days, 1-3650' }).max(3650, { error: 'expected days, 1-3650' }).optional(),
      inboundDays: z.number({ error: 'expected days, 1-3650' }).min(1, { error: 'expected days, 1-3650' }).max(3650, { error: 'expected days, 1-3650' }).optional(),
      auditDays: z.number({ error: 'expected days, 1-3650' }).min(1, { error: 'expected days, 1-3650' }).max(3650, { error: 'expected days, 1-3650' }).optional(),
    })
    .optional(),
  relay: z
    .strictObject({
      listeners: z.array(relayListenerSchema).optional(),
      maxMessageMegabytes: z.number({ error: 'expected megabytes, 1-150' }).min(1, { error: 'expected megabytes, 1-150' }).max(150, { error: 'expected megabytes, 1-150' }).optional(),
      maxRecipients: intIn(1, 5000).optional(),
      /** Messages per minute per account (or per client address, unauthenticated). */
      messagesPerMinute: intIn(1, 100000).optional(),
      idleTimeoutSeconds: intIn(10, 3600, 'seconds, ').optional(),
      ...loginLimitFields,
    })
    .optional(),
  proxy: z
    .strictObject({
      imap: proxyListenerSchema.optional(),
      pop3: proxyListenerSchema.optional(),
      /** A client must log in within this time after connecting. */
      loginTimeoutSeconds: intIn(5, 600, 'seconds, ').optional(),
      /** A logged-in session that sends and receives nothing this long is closed (IMAP IDLE needs 30 minutes, RFC 9051). */
      idleTimeoutSeconds: intIn(60, 86400, 'seconds, ').optional(),
      ...loginLimitFields,
    })
    .optional(),
  servers: z.record(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, { error: 'expected a name of letters, digits, ".", "_" or "-"' }), serverInputSchema.omit({ name: true })).optional(),
  senders: z.record(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, { error: 'expected a name of letters, digits, ".", "_" or "-"' }), senderInputSchema.omit({ name: true })).optional(),
});

export type ConfigFile = z.infer<typeof configFileSchema>;
export type LogLevel = (typeof LOG_LEVELS)[number];
export { LOG_LEVELS };
