// Server operations for the CLI, the API and mailgate.yaml: validation, configuration-time warnings, and the config file's servers kept in sync.
import { ErrorCode, MailgateError } from '../errors.js';
import { refuseRename } from '../patches.js';
import type { CredentialRepository } from '../credentials/repository.js';
import { settingsOf } from '../credentials/repository.js';
import { serverInputSchema, type ResolvedServer, type ServerInput, type ServerView } from './model.js';
import type { ServerRecord, ServerRepository, ServerRow } from './repository.js';
import type { SendBudget } from './sendBudget.js';

type Warning = ServerView['warnings'][number];

/** Ports whose security is fixed by convention; a mismatch is the commonest "it just hangs" mistake. */
const EXPECTED_SECURITY: Record<number, 'tls' | 'starttls'> = { 465: 'tls', 587: 'starttls', 993: 'tls', 995: 'tls', 143: 'starttls', 110: 'starttls' };

export class ServerService {
  constructor(
    private readonly repo: ServerRepository,
    private readonly credentials: CredentialRepository,
    /** Told when a server changes or goes, so pooled connections to it are closed. */
    private readonly onChange: (name: string) => void = () => undefined,
    /** What an SMTP server's sending limits have left; shown by `show`. */
    private readonly budget?: SendBudget,
  ) {}

  async add(raw: unknown): Promise<ServerView> {
    const input = parseServerInput(raw);
    if (await this.repo.find(input.name)) throw new MailgateError(ErrorCode.ALREADY_EXISTS, `server ${JSON.stringify(input.name)} exists already: change it with PATCH, or remove it first`);
    await this.repo.save(recordOf(input, 'api'));
    return this.show(input.name);
  }

  async update(name: string, patch: unknown): Promise<ServerView> {
    const row = await this.repo.get(name);
    this.#assertEditable(row);
    if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) throw new MailgateError(ErrorCode.INPUT_INVALID, 'body: expected a JSON object with the fields to change');
    refuseRename('server', name, patch);
    const current = this.repo.toView(row, []);
    const merged = {
      protocol: current.protocol,
      host: current.host,
      port: current.port,
      security: current.security,
      ...(current.username !== undefined ? { username: current.username } : {}),
      auth: current.auth.type === 'oauth2' ? { type: 'oauth2', credential: current.auth.credential } : { type: current.auth.type },
      ...(current.tlsCa !== undefined ? { tlsCa: current.tlsCa } : {}),
      tlsRejectUnauthorized: current.tlsRejectUnauthorized,
      ...(Object.keys(current.limits).length > 0 ? { limits: current.limits } : {}),
      ...(patch as Record<string, unknown>),
      name,
    };
    const input = parseServerInput(merged);
    await this.repo.save(recordOf(input, 'api'));
    this.onChange(name);
    return this.show(name);
  }

  /** Refused while a sender, watcher or proxy account names the server: removing it would break them silently. */
  async remove(name: string): Promise<void> {
    this.#assertEditable(await this.repo.get(name));
    const { senders, watchers, proxyAccounts } = await this.repo.usedBy(name);
    if (senders.length + watchers.length + proxyAccounts.length > 0) {
      const named = (word: string, names: string[]) => (names.length ? `${word}${names.length > 1 ? 's' : ''} ${names.join(', ')}` : '');
      const users = [named('sender', senders), named('watcher', watchers), named('proxy account', proxyAccounts)].filter(Boolean).join(' and ');
      throw new MailgateError(ErrorCode.STATE_CONFLICT, `server ${name} is still used by ${users}: point them to another server or remove them first`);
    }
    await this.repo.remove(name);
    this.onChange(name);
  }

  async list(): Promise<ServerView[]> {
    return Promise.all((await this.repo.list()).map(async (row) => this.repo.toView(row, await this.warningsFor(row))));
  }

  /** One server; an SMTP server with its sending budget (what its windows hold, what is left, a provider's pause). */
  async show(name: string): Promise<ServerView> {
    const row = await this.repo.get(name);
    const view = this.repo.toView(row, await this.warningsFor(row));
    if (row.protocol === 'smtp' && this.budget) view.budget = await this.budget.usage(name, view.effectiveLimits);
    return view;
  }

  /** Ends a pause a provider's throttling reply started, before its time (the admin knows the limit was lifted). */
  async resume(name: string): Promise<{ resumed: boolean }> {
    await this.repo.get(name);
    return { resumed: (await this.budget?.resume(name)) ?? false };
  }

  /**
   * Makes the store's config-file servers match mailgate.yaml: adds and updates those in the file, removes those
   * no longer there. Servers made through the API are left alone, unless the file now defines the same name.
   */
  async syncFromConfig(servers: Readonly<Record<string, unknown>>): Promise<void> {
    for (const [name, value] of Object.entries(servers)) {
      const input = parseServerInput({ ...(value as object), name }, `servers.${name}`);
      const record = recordOf(input, 'config');
      // Unchanged: no write, so the running instances keep their pooled connections (the CLI syncs on every run).
      const existing = await this.repo.find(name);
      if (existing?.source === 'config' && sameServer(this.repo.resolve(existing), record) && (existing.limits ?? null) === (record.limits && Object.keys(record.limits).length > 0 ? JSON.stringify(record.limits) : null)) continue;
      await this.repo.save(record);
      this.onChange(name);
    }
    for (const row of await this.repo.list()) {
      if (row.source === 'config' && !(row.name in servers)) {
        await this.repo.remove(row.name);
        this.onChange(row.name);
      }
    }
  }

  /** Mistakes Mailgate can see before any connection: reported, not refused (the admin may fix the other side first). */
  async warningsFor(row: ServerRow): Promise<Warning[]> {
    const warnings: Warning[] = [];
    const expected = EXPECTED_SECURITY[row.port];
    if (expected && row.security !== expected && row.security !== 'none') {
      warnings.push({ code: 'SECURITY_PORT_MISMATCH', message: `port ${row.port} usually expects security ${expected}, not ${row.security}: the connection will likely hang or fail at the TLS handshake` });
    }
    if (row.auth_type === 'oauth2' && row.credential) {
      const credential = await this.credentials.find(row.credential);
      if (!credential) {
        warnings.push({ code: 'CREDENTIAL_MISSING', message: `credential ${JSON.stringify(row.credential)} does not exist (yet): add it with \`mailgate credential add\`` });
      } else {
        const settings = settingsOf(credential);
        const host = row.host.toLowerCase();
        if (settings.provider === 'microsoft' && /(^|\.)(gmail|googlemail|google)\.com$/.test(host)) warnings.push({ code: 'PROVIDER_HOST_MISMATCH', message: `credential ${settings.name} is a Microsoft credential, but ${row.host} is a Google server` });
        if (settings.provider === 'google' && /(^|\.)(office365|outlook|office)\.com$/.test(host)) warnings.push({ code: 'PROVIDER_HOST_MISMATCH', message: `credential ${settings.name} is a Google credential, but ${row.host} is a Microsoft server` });
        if (settings.provider === 'microsoft' && settings.grant !== 'client_credentials') {
          const needed = row.protocol === 'smtp' ? /SMTP\.Send$/i : row.protocol === 'imap' ? /IMAP\.AccessAsUser\.All$/i : /POP\.AccessAsUser\.All$/i;
          if (!settings.scopes.some((s) => needed.test(s))) {
            warnings.push({ code: 'SCOPE_MISSING', message: `credential ${settings.name} does not ask for ${row.protocol === 'smtp' ? 'https://outlook.office.com/SMTP.Send' : row.protocol === 'imap' ? 'https://outlook.office.com/IMAP.AccessAsUser.All' : 'https://outlook.office.com/POP.AccessAsUser.All'}: the server will refuse its tokens (add the protocol to the credential and connect again)` });
          }
        }
        if (row.username && row.username.toLowerCase() !== settings.email.toLowerCase() && settings.grant !== 'client_credentials') {
          warnings.push({ code: 'USERNAME_NOT_TOKEN_OWNER', message: `username ${row.username} differs from the credential's account ${settings.email}: XOAUTH2 needs the mailbox the token belongs to` });
        }
      }
    }
    if (row.tls_reject_unauthorized === 0) warnings.push({ code: 'TLS_UNVERIFIED', message: 'certificate checks are off (tlsRejectUnauthorized: false): anyone on the path can read the credentials; add the CA as tlsCa instead' });
    return warnings;
  }

  #assertEditable(row: ServerRow): void {
    if (row.source === 'config') throw new MailgateError(ErrorCode.INPUT_INVALID, `server ${row.name} is defined in the configuration file: change or remove it there`);
  }
}

export function parseServerInput(raw: unknown, prefix?: string): ServerInput {
  const parsed = serverInputSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => {
      const field = [prefix, ...i.path.map(String)].filter(Boolean).join('.') || 'body';
      if (i.code === 'unrecognized_keys') return `${field}: unknown field ${i.keys.map((k) => JSON.stringify(k)).join(', ')}`;
      const secret = i.path[i.path.length - 1] === 'password';
      return `${field}: ${i.message}${secret || i.input === undefined ? '' : `, got ${JSON.stringify(i.input)?.slice(0, 60)}`}`;
    });
    throw new MailgateError(ErrorCode.INPUT_INVALID, problems.join('; '), { details: { problems } });
  }
  const input = parsed.data;
  if (input.auth?.type === 'password' && !input.username) {
    throw new MailgateError(ErrorCode.INPUT_INVALID, `${prefix ? `${prefix}.` : ''}username: required with password authentication`);
  }
  if (input.auth?.type === 'oauth2' && !input.username) {
    throw new MailgateError(ErrorCode.INPUT_INVALID, `${prefix ? `${prefix}.` : ''}username: required with oauth2 authentication (the mailbox address the token belongs to)`);
  }
  return input;
}

function sameServer(stored: ResolvedServer, record: ServerRecord): boolean {
  const auth = record.auth.type === 'password' ? { type: 'password', password: record.auth.password ?? '' } : record.auth;
  const wanted = { protocol: record.protocol, host: record.host, port: record.port, security: record.security, username: record.username, auth, tlsCa: record.tlsCa, tlsRejectUnauthorized: record.tlsRejectUnauthorized };
  const { name: _name, limits: _limits, ...have } = stored;
  return JSON.stringify(have, Object.keys(wanted).sort()) === JSON.stringify(wanted, Object.keys(wanted).sort()) && JSON.stringify(have.auth) === JSON.stringify(auth);
}

function recordOf(input: ServerInput, source: 'config' | 'api'): ServerRecord {
  const auth = input.auth ?? { type: 'none' as const };
  return {
    name: input.name,
    protocol: input.protocol,
    host: input.host,
    port: input.port as number,
    security: input.security,
    username: input.username,
    auth: auth.type === 'password' ? { type: 'password', password: auth.password } : auth,
    tlsCa: input.tlsCa,
    tlsRejectUnauthorized: input.tlsRejectUnauthorized ?? true,
    limits: input.limits,
    source,
  } as ServerRecord;
}
