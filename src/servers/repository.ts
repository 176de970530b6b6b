// Reads and writes mail servers in the store; a server password is sealed on the way in and opened only to connect.
import type { Selectable } from 'kysely';
import { ErrorCode, MailgateError } from '../errors.js';
import type { Keyring } from '../secrets/keyring.js';
import type { Store } from '../store/store.js';
import type { ServersTable } from '../store/tables.js';
import { limitsOfServer } from './limits.js';
import type { ConfiguredLimits, ResolvedServer, ServerAuth, ServerProtocol, ServerView, SecurityMode } from './model.js';

export type ServerRow = Selectable<ServersTable>;

const passwordContext = (name: string) => `server:${name}:password`;

export interface ServerRecord {
  name: string;
  protocol: ServerProtocol;
  host: string;
  port: number;
  security: SecurityMode;
  username: string | undefined;
  auth: ServerAuth | { type: 'password'; password: undefined };
  tlsCa: string | undefined;
  tlsRejectUnauthorized: boolean;
  limits: ConfiguredLimits | undefined;
  source: 'config' | 'api';
}

export class ServerRepository {
  constructor(
    private readonly store: Store,
    private readonly keyring: Keyring,
  ) {}

  async find(name: string): Promise<ServerRow | undefined> {
    return this.store.db.selectFrom('servers').selectAll().where('name', '=', name).executeTakeFirst();
  }

  async get(name: string): Promise<ServerRow> {
    const row = await this.find(name);
    if (!row) throw new MailgateError(ErrorCode.NOT_FOUND, `no server named ${JSON.stringify(name)} (list them with \`mailgate server list\`)`);
    return row;
  }

  async list(): Promise<ServerRow[]> {
    return this.store.db.selectFrom('servers').selectAll().orderBy('name').execute();
  }

  /** Inserts or replaces; a password left undefined keeps the stored one. */
  async save(record: ServerRecord): Promise<void> {
    const at = new Date().toISOString();
    const password = record.auth.type === 'password' && record.auth.password !== undefined ? this.keyring.seal(record.auth.password, passwordContext(record.name)) : undefined;
    const values = {
      name: record.name,
      protocol: record.protocol,
      host: record.host,
      port: record.port,
      security: record.security,
      username: record.username ?? null,
      auth_type: record.auth.type,
      credential: record.auth.type === 'oauth2' ? record.auth.credential : null,
      tls_ca: record.tlsCa ?? null,
      tls_reject_unauthorized: record.tlsRejectUnauthorized ? 1 : 0,
      limits: record.limits && Object.keys(record.limits).length > 0 ? JSON.stringify(record.limits) : null,
      source: record.source,
      updated_at: at,
    };
    await this.store.db
      .insertInto('servers')
      .values({ ...values, password: password ?? null, created_at: at })
      .onConflict((oc) => oc.column('name').doUpdateSet(record.auth.type === 'password' && password === undefined ? values : { ...values, password: password ?? null }))
      .execute();
    await this.store.changes.record('servers', record.name);
  }

  async remove(name: string): Promise<void> {
    await this.store.db.deleteFrom('servers').where('name', '=', name).execute();
    // Its sending budget and any pause go with it (a server made again under this name starts afresh).
    await this.store.db.deleteFrom('send_log').where('server', '=', name).execute();
    await this.store.db.deleteFrom('server_pauses').where('server', '=', name).execute();
    await this.store.changes.record('servers', name);
  }

  /** The senders (as primary or backup) and watchers that name this server. */
  async usedBy(name: string): Promise<{ senders: string[]; watchers: string[]; proxyAccounts: string[] }> {
    const senders = await this.store.db.selectFrom('senders').select(['name', 'primary_server', 'backups']).execute();
    const watchers = await this.store.db.selectFrom('watchers').select('name').where('server', '=', name).execute();
    const proxyAccounts = await this.store.db.selectFrom('proxy_accounts').select('name').where('server', '=', name).orderBy('name').execute();
    return {
      senders: senders.filter((s) => s.primary_server === name || (JSON.parse(s.backups) as string[]).includes(name)).map((s) => s.name),
      watchers: watchers.map((w) => w.name),
      proxyAccounts: proxyAccounts.map((a) => a.name),
    };
  }

  resolve(row: ServerRow): ResolvedServer {
    let auth: ServerAuth;
    if (row.auth_type === 'oauth2') auth = { type: 'oauth2', credential: row.credential ?? '' };
    else if (row.auth_type === 'password') auth = { type: 'password', password: row.password ? this.keyring.open(row.password, passwordContext(row.name)) : '' };
    else auth = { type: 'none' };
    return {
      name: row.name,
      protocol: row.protocol as ServerProtocol,
      host: row.host,
      port: row.port,
      security: row.security as SecurityMode,
      username: row.username ?? undefined,
      auth,
      tlsCa: row.tls_ca ?? undefined,
      tlsRejectUnauthorized: row.tls_reject_unauthorized === 1,
      limits: limitsOfServer(row).effective,
    };
  }

  toView(row: ServerRow, warnings: ServerView['warnings']): ServerView {
    return {
      name: row.name,
      protocol: row.protocol as ServerProtocol,
      host: row.host,
      port: row.port,
      security: row.security as SecurityMode,
      username: row.username ?? undefined,
      auth: row.auth_type === 'oauth2' ? { type: 'oauth2', credential: row.credential ?? '' } : row.auth_type === 'password' ? { type: 'password', hasPassword: row.password !== null } : { type: 'none' },
      tlsCa: row.tls_ca ?? undefined,
      tlsRejectUnauthorized: row.tls_reject_unauthorized === 1,
      ...limitsView(row),
      source: row.source as 'config' | 'api',
      warnings,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    };
  }
}

/** Limits only mean something for sending: IMAP and POP3 servers show none. */
function limitsView(row: ServerRow): Pick<ServerView, 'limits' | 'limitPreset' | 'effectiveLimits'> {
  if (row.protocol !== 'smtp') return { limits: {}, limitPreset: null, effectiveLimits: {} };
  const { configured, preset, effective } = limitsOfServer(row);
  return { limits: configured, limitPreset: preset ? { name: preset.name, limits: preset.limits, source: preset.source } : null, effectiveLimits: effective };
}
