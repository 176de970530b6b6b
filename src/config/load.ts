// Builds Mailgate's frozen configuration from defaults, the YAML file and the environment, reporting every problem at once.
import fs from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { ErrorCode, MailgateError } from '../errors.js';
import { configFileSchema, listenSchema, LOG_LEVELS, type ConfigFile, type LogLevel } from './schema.js';
import type { MailgateEnvironment } from './environment.js';
import { Secret } from '../secrets/secret.js';
import { MIN_PASSWORD_LENGTH } from '../accounts/passwords.js';
import { definedInFile, describeProblems, problemsInFile, referencesOf, type ConfigProblem, type ReferringParts } from './references.js';

export const DEFAULT_LISTEN = '127.0.0.1:8025';
export const DEFAULT_CONFIG_FILE = 'mailgate.yaml';

export type DatabaseLocation = { kind: 'sqlite'; file: string } | { kind: 'postgres'; url: string };

/** The master key's origin: the environment (value is secret) or a key file. */
export type MasterKeySource = { kind: 'env'; value: string } | { kind: 'file'; file: string };

/** A local listener of the SMTP relay or a proxy: address, TLS, client limits. */
export interface ListenerConfig {
  readonly listen: { readonly host: string; readonly port: number };
  readonly tls: 'starttls' | 'implicit' | 'none';
  /** Absolute paths; both undefined: a self-signed certificate in the data directory. */
  readonly certFile: string | undefined;
  readonly keyFile: string | undefined;
  /** Password logins without TLS from other machines (loopback clients may always). */
  readonly allowInsecureAuth: boolean;
  readonly maxConnections: number;
  readonly maxConnectionsPerClient: number;
}

export interface RelayListenerConfig extends ListenerConfig {
  /** false only together with allowUnauthenticatedFrom: the networks that may submit without a login. */
  readonly requireAuth: boolean;
  readonly allowUnauthenticatedFrom: readonly string[];
  /** The sender unauthenticated submissions go out through. */
  readonly sender: string | undefined;
}

export interface LoginLimits {
  /** Failures from one address before it is locked out (an account from anywhere: four times as many). */
  readonly maxFailures: number;
  readonly lockoutMs: number;
}

export interface Config {
  /** The YAML file that was read, if any. */
  readonly configFile: string | undefined;
  readonly listen: { readonly host: string; readonly port: number };
  /** Base of every link Mailgate hands out (the OAuth redirect URI among them); no trailing slash. */
  readonly publicUrl: string;
  readonly dataDir: string;
  readonly database: DatabaseLocation;
  readonly masterKey: MasterKeySource;
  readonly logLevel: LogLevel;
  /** Undefined: text when standard output is a terminal, else JSON (decided by `serve`). */
  readonly logFormat: 'json' | 'text' | undefined;
  /** MAILGATE_ADMIN_PASSWORD: creates the first admin account ("admin") when there is none. */
  readonly adminPassword: Secret | undefined;
  readonly shutdownTimeoutMs: number;
  readonly tokens: {
    /** Hand out no access token expiring sooner than this: refresh first. */
    readonly refreshMarginSeconds: number;
    /** Refresh idle credentials this often, so providers never drop them as unused (90 days). */
    readonly keepAliveDays: number;
    /** How often the scheduler looks for credentials to refresh ahead of expiry. */
    readonly schedulerIntervalSeconds: number;
  };
  readonly outbox: {
    readonly maxMessageBytes: number;
    readonly maxAttempts: number;
    readonly attemptsPerServer: number;
    readonly retryBaseMs: number;
    readonly retryMaxMs: number;
    readonly concurrency: number;
    readonly connectionsPerServer: number;
    readonly idempotencyKeyMs: number;
  };
  readonly inbound: {
    readonly maxAttempts: number;
    readonly retryBaseMs: number;
    readonly retryMaxMs: number;
    readonly maxMessageBytes: number;
    readonly webhookTimeoutMs: number;
    readonly reconnectMaxMs: number;
    /** In IDLE mode, look anyway this often (a server may drop IDLE notifications silently). */
    readonly idleCheckMs: number;
    /** How long a replaced webhook secret keeps signing next to the new one, unless a change says otherwise. */
    readonly webhookSecretGraceMs: number;
  };
  readonly alerts: {
    readonly webhook: { readonly url: string; readonly secret: string } | undefined;
    readonly email: { readonly sender: string; readonly to: readonly string[] } | undefined;
    readonly command: { readonly path: string; readonly args: readonly string[]; readonly timeoutMs: number } | undefined;
    /** First repeat of a still-active alert; each later repeat waits twice as long, at most a day. */
    readonly repeatMs: number;
    readonly evaluateMs: number;
  };
  /** Coordination of the instances sharing a database: a watcher or the alert loop whose instance stops renewing its lease moves to another one after `leaseMs`. */
  readonly instances: {
    readonly leaseMs: number;
  };
  /** How long finished messages keep their bodies, and rows and audit entries are kept (`mailgate prune`, hourly in serve). */
  readonly retention: {
    readonly messageBodyMs: number;
    readonly messageMs: number;
    readonly inboundMs: number;
    readonly auditMs: number;
  };
  readonly relay: {
    readonly listeners: readonly RelayListenerConfig[];
    readonly maxMessageBytes: number;
    readonly maxRecipients: number;
    /** Per account, or per client address for unauthenticated submissions. */
    readonly messagesPerMinute: number;
    readonly idleTimeoutMs: number;
    readonly login: LoginLimits;
  };
  readonly proxy: {
    readonly imap: ListenerConfig | undefined;
    readonly pop3: ListenerConfig | undefined;
    readonly loginTimeoutMs: number;
    readonly idleTimeoutMs: number;
    readonly login: LoginLimits;
  };
  /** Servers and senders defined in the file (kept in the store with source "config"). */
  readonly servers: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  readonly senders: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
}

export interface LoadConfigOptions {
  env: MailgateEnvironment;
  /** `--config` from the command line; wins over MAILGATE_CONFIG. */
  configFile?: string;
  cwd?: string;
}

type Problem = ConfigProblem;

/** Keys whose values are secrets: a problem with them never echoes the value. */
const SECRET_KEY = /(password|secret|token|masterkey)$/i;

export function loadConfig(options: LoadConfigOptions): Config {
  const cwd = options.cwd ?? process.cwd();
  const env = options.env;
  const explicitFile = options.configFile ?? env.MAILGATE_CONFIG;
  const configFile = explicitFile
    ? path.resolve(cwd, explicitFile)
    : fs.existsSync(path.resolve(cwd, DEFAULT_CONFIG_FILE))
      ? path.resolve(cwd, DEFAULT_CONFIG_FILE)
      : undefined;

  const problems: Problem[] = [];
  const file = configFile ? readConfigFile(configFile, problems) : {};

  const parsed = configFileSchema.safeParse(file, { reportInput: true });
  if (!parsed.success) problems.push(...parsed.error.issues.map(describeIssue));
  // With a wrong value anywhere, the keys that are right still count: a bad databaseUrl is reported beside it.
  const fromFile: ConfigFile = parsed.success ? parsed.data : validKeysOf(file);
  // Names one entry gives another, checked in the same pass (the raw file: an entry with a wrong type still refers).
  problems.push(...problemsInFile(file as ReferringParts));

  const listen = env.MAILGATE_LISTEN !== undefined ? parseEnv('MAILGATE_LISTEN', env.MAILGATE_LISTEN, listenSchema, problems) : fromFile.listen;
  const logLevelText = env.MAILGATE_LOG_LEVEL ?? fromFile.log?.level ?? 'info';
  if (env.MAILGATE_LOG_FORMAT !== undefined && !['json', 'text'].includes(env.MAILGATE_LOG_FORMAT)) {
    problems.push({ key: 'MAILGATE_LOG_FORMAT', text: `expected json or text, got ${JSON.stringify(env.MAILGATE_LOG_FORMAT)}` });
  }
  if (!(LOG_LEVELS as readonly string[]).includes(logLevelText)) {
    problems.push({ key: 'MAILGATE_LOG_LEVEL', text: `expected one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevelText)}` });
  }
  const publicUrlText = env.MAILGATE_PUBLIC_URL ?? fromFile.publicUrl;
  if (publicUrlText !== undefined && !isHttpUrl(publicUrlText)) {
    problems.push({ key: env.MAILGATE_PUBLIC_URL ? 'MAILGATE_PUBLIC_URL' : 'publicUrl', text: `expected an http(s) URL such as "https://mailgate.example.com", got ${JSON.stringify(publicUrlText)}` });
  }

  if (env.MAILGATE_ADMIN_PASSWORD !== undefined && env.MAILGATE_ADMIN_PASSWORD.length < MIN_PASSWORD_LENGTH) {
    // Never the value itself: only its length.
    problems.push({ key: 'MAILGATE_ADMIN_PASSWORD', text: `too short (${env.MAILGATE_ADMIN_PASSWORD.length} characters): use at least ${MIN_PASSWORD_LENGTH}` });
  }

  // Paths from the environment are relative to the current directory (where the variable was set); paths in the
  // file — and the default ./data beside it — to the file's directory, so every command that names the same file
  // opens the same store and key wherever it runs from.
  const configDir = configFile ? path.dirname(configFile) : cwd;
  const dataDir = env.MAILGATE_DATA_DIR !== undefined ? path.resolve(cwd, env.MAILGATE_DATA_DIR) : path.resolve(configDir, fromFile.dataDir ?? 'data');
  const database = parseDatabaseUrl(env.MAILGATE_DATABASE_URL, fromFile.databaseUrl, dataDir, env.MAILGATE_DATABASE_URL !== undefined ? cwd : configDir, problems);

  if (problems.length > 0) {
    // A server a sender names but the file does not define may exist in the store (made with the CLI); the store is
    // checked once the file loads. Until then such names are reported with the rest, so none comes as a surprise.
    for (const ref of referencesOf(file as ReferringParts)) {
      if (ref.kind !== 'server' || definedInFile(file as ReferringParts, ref)) continue;
      problems.push({ key: ref.key, text: `no server named ${JSON.stringify(ref.name)} in this file (one made with the CLI is looked for once the other problems are fixed): add it under servers:, or create it with \`mailgate server add ${ref.name} …\`` });
    }
    throw new MailgateError(ErrorCode.CONFIG_INVALID, describeProblems(`invalid configuration${configFile ? ` (config file ${configFile})` : ''}`, problems), { details: { problems } });
  }

  const effectiveListen = listen ?? { host: '127.0.0.1', port: 8025 };
  const masterKey: MasterKeySource = env.MAILGATE_MASTER_KEY
    ? { kind: 'env', value: env.MAILGATE_MASTER_KEY }
    : { kind: 'file', file: fromFile.masterKeyFile !== undefined ? path.resolve(configDir, fromFile.masterKeyFile) : path.join(dataDir, 'master.key') };

  return deepFreeze({
    configFile,
    listen: effectiveListen,
    publicUrl: (publicUrlText ?? `http://${formatHost(effectiveListen.host)}:${effectiveListen.port}`).replace(/\/+$/, ''),
    dataDir,
    database,
    masterKey,
    logLevel: logLevelText as LogLevel,
    logFormat: (env.MAILGATE_LOG_FORMAT ?? fromFile.log?.format) as 'json' | 'text' | undefined,
    adminPassword: env.MAILGATE_ADMIN_PASSWORD !== undefined ? new Secret(env.MAILGATE_ADMIN_PASSWORD) : undefined,
    shutdownTimeoutMs: (fromFile.shutdownTimeoutSeconds ?? 15) * 1000,
    tokens: {
      refreshMarginSeconds: fromFile.tokens?.refreshMarginSeconds ?? 300,
      keepAliveDays: fromFile.tokens?.keepAliveDays ?? 7,
      schedulerIntervalSeconds: fromFile.tokens?.schedulerIntervalSeconds ?? 30,
    },
    outbox: {
      maxMessageBytes: (fromFile.outbox?.maxMessageMegabytes ?? 25) * 1024 * 1024,
      maxAttempts: fromFile.outbox?.maxAttempts ?? 10,
      attemptsPerServer: fromFile.outbox?.attemptsPerServer ?? 3,
      retryBaseMs: (fromFile.outbox?.retryBaseSeconds ?? 5) * 1000,
      retryMaxMs: (fromFile.outbox?.retryMaxSeconds ?? 600) * 1000,
      concurrency: fromFile.outbox?.concurrency ?? 8,
      connectionsPerServer: fromFile.outbox?.connectionsPerServer ?? 3,
      idempotencyKeyMs: (fromFile.outbox?.idempotencyKeyHours ?? 24) * 3_600_000,
    },
    inbound: {
      maxAttempts: fromFile.inbound?.maxAttempts ?? 8,
      retryBaseMs: (fromFile.inbound?.retryBaseSeconds ?? 5) * 1000,
      retryMaxMs: (fromFile.inbound?.retryMaxSeconds ?? 900) * 1000,
      maxMessageBytes: (fromFile.inbound?.maxMessageMegabytes ?? 100) * 1024 * 1024,
      webhookTimeoutMs: (fromFile.inbound?.webhookTimeoutSeconds ?? 10) * 1000,
      reconnectMaxMs: (fromFile.inbound?.reconnectMaxSeconds ?? 300) * 1000,
      idleCheckMs: 5 * 60_000,
      webhookSecretGraceMs: (fromFile.inbound?.webhookSecretGraceHours ?? 24) * 3_600_000,
    },
    alerts: {
      webhook: fromFile.alerts?.webhook,
      email: fromFile.alerts?.email,
      command: fromFile.alerts?.command ? { path: fromFile.alerts.command.path, args: fromFile.alerts.command.args ?? [], timeoutMs: (fromFile.alerts.command.timeoutSeconds ?? 30) * 1000 } : undefined,
      repeatMs: (fromFile.alerts?.repeatMinutes ?? 60) * 60_000,
      evaluateMs: (fromFile.alerts?.evaluateSeconds ?? 30) * 1000,
    },
    instances: {
      leaseMs: (fromFile.instances?.leaseSeconds ?? 30) * 1000,
    },
    retention: {
      messageBodyMs: (fromFile.retention?.messageBodyDays ?? 7) * 86_400_000,
      messageMs: (fromFile.retention?.messageDays ?? 90) * 86_400_000,
      inboundMs: (fromFile.retention?.inboundDays ?? 30) * 86_400_000,
      auditMs: (fromFile.retention?.auditDays ?? 365) * 86_400_000,
    },
    relay: {
      listeners: (fromFile.relay?.listeners ?? []).map((l) => ({
        ...listenerOf(l, configDir),
        requireAuth: l.requireAuth ?? !(l.allowUnauthenticatedFrom?.length ?? 0),
        allowUnauthenticatedFrom: l.allowUnauthenticatedFrom ?? [],
        sender: l.sender,
      })),
      maxMessageBytes: (fromFile.relay?.maxMessageMegabytes ?? fromFile.outbox?.maxMessageMegabytes ?? 25) * 1024 * 1024,
      maxRecipients: fromFile.relay?.maxRecipients ?? 100,
      messagesPerMinute: fromFile.relay?.messagesPerMinute ?? 60,
      idleTimeoutMs: (fromFile.relay?.idleTimeoutSeconds ?? 300) * 1000,
      login: { maxFailures: fromFile.relay?.maxLoginFailures ?? 5, lockoutMs: (fromFile.relay?.lockoutMinutes ?? 15) * 60_000 },
    },
    proxy: {
      imap: fromFile.proxy?.imap ? listenerOf(fromFile.proxy.imap, configDir) : undefined,
      pop3: fromFile.proxy?.pop3 ? listenerOf(fromFile.proxy.pop3, configDir) : undefined,
      loginTimeoutMs: (fromFile.proxy?.loginTimeoutSeconds ?? 60) * 1000,
      idleTimeoutMs: (fromFile.proxy?.idleTimeoutSeconds ?? 31 * 60) * 1000,
      login: { maxFailures: fromFile.proxy?.maxLoginFailures ?? 5, lockoutMs: (fromFile.proxy?.lockoutMinutes ?? 15) * 60_000 },
    },
    servers: (fromFile.servers ?? {}) as Config['servers'],
    senders: (fromFile.senders ?? {}) as Config['senders'],
  });
}

type ListenerFileEntry = NonNullable<NonNullable<ConfigFile['proxy']>['imap']>;

/** A listener from the file with defaults applied; certificate paths are relative to the config file's directory. */
function listenerOf(entry: ListenerFileEntry, configDir: string): ListenerConfig {
  return {
    listen: entry.listen,
    tls: entry.tls ?? 'starttls',
    certFile: entry.certFile === undefined ? undefined : path.resolve(configDir, entry.certFile),
    keyFile: entry.keyFile === undefined ? undefined : path.resolve(configDir, entry.keyFile),
    allowInsecureAuth: entry.allowInsecureAuth ?? false,
    maxConnections: entry.maxConnections ?? 100,
    maxConnectionsPerClient: entry.maxConnectionsPerClient ?? 20,
  };
}

function readConfigFile(file: string, problems: Problem[]): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (cause) {
    const reason = (cause as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file (run `mailgate init` to write one, or fix --config / MAILGATE_CONFIG)' : (cause as Error).message;
    throw new MailgateError(ErrorCode.CONFIG_UNREADABLE, `cannot read config file ${file}: ${reason}`, { cause });
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, lineCounter });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    const at = lineCounter.linePos(first.pos[0]);
    throw new MailgateError(
      ErrorCode.CONFIG_UNREADABLE,
      `config file ${file} line ${at.line}, column ${at.col} is not valid YAML: ${first.message.split('\n')[0]}`,
    );
  }
  const value: unknown = doc.toJS();
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    problems.push({ key: '(top level)', text: 'expected a mapping of keys such as "listen:" and "servers:"' });
    return {};
  }
  return value;
}

/** The top-level keys of a file that does not validate as a whole whose own values do. */
function validKeysOf(file: unknown): ConfigFile {
  const valid: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(file as Record<string, unknown>)) {
    const schema = (configFileSchema.shape as Record<string, z.ZodType>)[key];
    const result = schema?.safeParse(value);
    if (result?.success) valid[key] = result.data;
  }
  return valid as ConfigFile;
}

/** `relay.listeners[0].sender`, `servers.a.port`: the key as the README and the listeners name it. */
function keyOf(path: readonly PropertyKey[]): string {
  return path.map((part, i) => (typeof part === 'number' ? `[${part}]` : `${i > 0 ? '.' : ''}${String(part)}`)).join('');
}

function describeIssue(issue: z.core.$ZodIssue): Problem {
  const key = keyOf(issue.path) || '(top level)';
  if (issue.code === 'unrecognized_keys') {
    return { key, text: `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')} (check the spelling against the README's configuration reference)` };
  }
  const last = String(issue.path[issue.path.length - 1] ?? '');
  const got = SECRET_KEY.test(last) ? '(value hidden)' : renderInput(issue.input);
  return { key, text: `${issue.message}, got ${got}` };
}

function renderInput(input: unknown): string {
  if (input === undefined) return 'nothing';
  const text = JSON.stringify(input);
  if (text === undefined) return String(input);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function parseEnv<T>(name: string, value: string, schema: z.ZodType<T>, problems: Problem[]): T | undefined {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  problems.push({ key: name, text: `${result.error.issues[0]?.message ?? 'invalid value'}, got ${JSON.stringify(value)}` });
  return undefined;
}

function parseDatabaseUrl(fromEnv: string | undefined, fromFile: string | undefined, dataDir: string, baseDir: string, problems: Problem[]): DatabaseLocation {
  const value = fromEnv ?? fromFile;
  if (value === undefined) return { kind: 'sqlite', file: path.join(dataDir, 'mailgate.db') };
  if (value.startsWith('sqlite:')) {
    const file = value.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (file === '') problems.push({ key: fromEnv ? 'MAILGATE_DATABASE_URL' : 'databaseUrl', text: 'expected "sqlite:PATH", e.g. "sqlite:./data/mailgate.db", got "sqlite:"' });
    return { kind: 'sqlite', file: path.resolve(baseDir, file) };
  }
  if (/^postgres(ql)?:\/\//.test(value)) return { kind: 'postgres', url: value };
  // The URL may carry a password: name the scheme only.
  problems.push({ key: fromEnv ? 'MAILGATE_DATABASE_URL' : 'databaseUrl', text: `expected "sqlite:PATH" or "postgres://USER@HOST/DB", got a value starting with ${JSON.stringify(value.split(':')[0] ?? '')}` });
  return { kind: 'sqlite', file: path.join(dataDir, 'mailgate.db') };
}

function isHttpUrl(value: string): boolean {
  return URL.canParse(value) && /^https?:$/.test(new URL(value).protocol);
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
