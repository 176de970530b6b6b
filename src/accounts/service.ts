// Relay accounts (bound to a sender) and proxy accounts (bound to an IMAP/POP3 server): add, change, set a password, remove, and log in.
import type { Selectable } from 'kysely';
import type { AuditLog } from '../audit/auditLog.js';
import { ErrorCode, MailgateError } from '../errors.js';
import type { Logger } from '../log.js';
import type { SenderService } from '../senders/service.js';
import type { ServerRepository } from '../servers/repository.js';
import type { Store } from '../store/store.js';
import type { ProxyAccountsTable, RelayAccountsTable } from '../store/tables.js';
import { accountPasswordProblem, generateAccountPassword, hashAccountPassword } from './accountPasswords.js';
import type { LoginGuardOptions } from './loginGuard.js';
import { PasswordLogins, type LoginContext } from './logins.js';
import {
  inputProblems,
  normalizeAllowEntry,
  proxyAccountInputSchema,
  proxyAccountPatchSchema,
  relayAccountInputSchema,
  relayAccountPatchSchema,
  type ProxyAccountView,
  type RelayAccountView,
  type WithPassword,
  type LoginResult,
} from './model.js';

export type RelayAccountRow = Selectable<RelayAccountsTable>;
export type ProxyAccountRow = Selectable<ProxyAccountsTable>;

/** How a password reaches `add` or `setPassword`: from the caller (a person chose it) or made by Mailgate. */
export type PasswordChoice = { kind: 'chosen'; password: string } | { kind: 'generate' };

/** The password part of an API body: exactly one of `password` or `generatePassword: true`. */
export function passwordChoiceOf(body: { password?: string | undefined; generatePassword?: boolean | undefined }, required: boolean): PasswordChoice | undefined {
  if (body.password !== undefined && body.generatePassword) throw new MailgateError(ErrorCode.INPUT_INVALID, 'password: give either a password or generatePassword: true, not both');
  if (body.generatePassword) return { kind: 'generate' };
  if (body.password !== undefined) return { kind: 'chosen', password: body.password };
  if (required) throw new MailgateError(ErrorCode.INPUT_INVALID, 'password: expected a password (at least 12 characters) or generatePassword: true');
  return undefined;
}

async function hashChoice(choice: PasswordChoice, name: string): Promise<{ hash: string; generated: string | undefined }> {
  if (choice.kind === 'generate') {
    const generated = generateAccountPassword();
    return { hash: await hashAccountPassword(generated, true), generated };
  }
  const problem = accountPasswordProblem(choice.password, name);
  if (problem) throw new MailgateError(ErrorCode.INPUT_INVALID, `password: ${problem}`);
  return { hash: await hashAccountPassword(choice.password, false), generated: undefined };
}

const kindOf = (hash: string): 'generated' | 'chosen' => (hash.startsWith('sha256$') ? 'generated' : 'chosen');

function alreadyExists(kind: string, name: string): MailgateError {
  return new MailgateError(ErrorCode.ALREADY_EXISTS, `a ${kind} account named ${JSON.stringify(name)} exists already (change it with PATCH, or remove it first)`);
}

function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === '23505';
}

export interface AccountServiceOptions {
  store: Store;
  audit: AuditLog;
  logger: Logger;
  guard?: Partial<LoginGuardOptions>;
}

export class RelayAccounts {
  readonly logins: PasswordLogins<RelayAccountRow>;
  readonly #store: Store;

  constructor(
    options: AccountServiceOptions,
    private readonly senders: SenderService,
  ) {
    this.#store = options.store;
    this.logins = new PasswordLogins<RelayAccountRow>('relay', (name) => this.find(name), (name, at) => this.#touch(name, at), options.audit, options.logger, options.guard);
  }

  async add(raw: unknown): Promise<WithPassword<RelayAccountView>> {
    const parsed = relayAccountInputSchema.safeParse(raw, { reportInput: true });
    if (!parsed.success) throw inputProblems(parsed.error.issues);
    const input = parsed.data;
    const choice = passwordChoiceOf(input, true)!;
    const allowFrom = await this.#validate(input.sender, input.allowFrom);
    const { hash, generated } = await hashChoice(choice, input.name);
    const at = new Date().toISOString();
    const row: RelayAccountRow = { name: input.name, sender: input.sender, allow_from: JSON.stringify(allowFrom), password_hash: hash, created_at: at, updated_at: at, last_login_at: null };
    try {
      await this.#store.db.insertInto('relay_accounts').values(row).execute();
    } catch (err) {
      if (isUniqueViolation(err)) throw alreadyExists('relay', input.name);
      throw err;
    }
    return { account: relayView(row), generatedPassword: generated };
  }

  /** Changes the sender, the allow-list and/or the password; fields left out stay as they are. */
  async update(name: string, raw: unknown): Promise<WithPassword<RelayAccountView>> {
    const parsed = relayAccountPatchSchema.safeParse(raw, { reportInput: true });
    if (!parsed.success) throw inputProblems(parsed.error.issues);
    const current = await this.get(name);
    const patch = parsed.data;
    const allowFrom = await this.#validate(patch.sender ?? current.sender, patch.allowFrom ?? (JSON.parse(current.allow_from) as string[]));
    const choice = passwordChoiceOf(patch, false);
    const password = choice ? await hashChoice(choice, name) : undefined;
    const updated: RelayAccountRow = { ...current, sender: patch.sender ?? current.sender, allow_from: JSON.stringify(allowFrom), password_hash: password?.hash ?? current.password_hash, updated_at: new Date().toISOString() };
    await this.#store.db.updateTable('relay_accounts').set(updated).where('name', '=', name).execute();
    if (password) this.logins.forget();
    return { account: relayView(updated), generatedPassword: password?.generated };
  }

  async setPassword(name: string, choice: PasswordChoice): Promise<WithPassword<RelayAccountView>> {
    return this.update(name, choice.kind === 'generate' ? { generatePassword: true } : { password: choice.password });
  }

  async remove(name: string): Promise<void> {
    const result = await this.#store.db.deleteFrom('relay_accounts').where('name', '=', name).executeTakeFirst();
    if (Number(result.numDeletedRows) === 0) throw notFound('relay', name);
    this.logins.forget();
  }

  async list(): Promise<RelayAccountView[]> {
    return (await this.#store.db.selectFrom('relay_accounts').selectAll().orderBy('name').execute()).map(relayView);
  }

  async show(name: string): Promise<RelayAccountView> {
    return relayView(await this.get(name));
  }

  async find(name: string): Promise<RelayAccountRow | undefined> {
    return this.#store.db.selectFrom('relay_accounts').selectAll().where('name', '=', name).executeTakeFirst();
  }

  async get(name: string): Promise<RelayAccountRow> {
    const row = await this.find(name);
    if (!row) throw notFound('relay', name);
    return row;
  }

  /** A program's login at the relay (AUTH PLAIN/LOGIN). */
  login(name: string, password: string, context: LoginContext): Promise<LoginResult<RelayAccountRow>> {
    return this.logins.login(name, password, context);
  }

  /** Relay accounts that send through `sender` (a sender in use cannot be removed without saying so). */
  async usingSender(sender: string): Promise<string[]> {
    return (await this.#store.db.selectFrom('relay_accounts').select('name').where('sender', '=', sender).execute()).map((r) => r.name);
  }

  async #validate(sender: string, allowFrom: readonly string[] | undefined): Promise<string[]> {
    const problems: string[] = [];
    if (!(await this.senders.find(sender))) problems.push(`sender: no sender named ${JSON.stringify(sender)} (add one with \`mailgate sender add\` or POST /api/v1/senders)`);
    const normalized: string[] = [];
    (allowFrom ?? []).forEach((entry, i) => {
      const value = normalizeAllowEntry(entry);
      if (value === undefined) problems.push(`allowFrom[${i}]: expected an address (alice@example.com) or a domain (@example.com), got ${JSON.stringify(entry.slice(0, 100))}`);
      else if (!normalized.includes(value)) normalized.push(value);
    });
    if (problems.length > 0) throw new MailgateError(ErrorCode.INPUT_INVALID, problems.join('; '), { details: { problems } });
    return normalized;
  }

  async #touch(name: string, at: string): Promise<void> {
    await this.#store.db.updateTable('relay_accounts').set({ last_login_at: at }).where('name', '=', name).execute();
  }
}

export class ProxyAccounts {
  readonly logins: PasswordLogins<ProxyAccountRow>;
  readonly #store: Store;

  constructor(
    options: AccountServiceOptions,
    private readonly servers: ServerRepository,
  ) {
    this.#store = options.store;
    this.logins = new PasswordLogins<ProxyAccountRow>('proxy', (name) => this.find(name), (name, at) => this.#touch(name, at), options.audit, options.logger, options.guard);
  }

  async add(raw: unknown): Promise<WithPassword<ProxyAccountView>> {
    const parsed = proxyAccountInputSchema.safeParse(raw, { reportInput: true });
    if (!parsed.success) throw inputProblems(parsed.error.issues);
    const input = parsed.data;
    const choice = passwordChoiceOf(input, true)!;
    await this.#validate(input.server);
    const { hash, generated } = await hashChoice(choice, input.name);
    const at = new Date().toISOString();
    const row: ProxyAccountRow = { name: input.name, server: input.server, password_hash: hash, created_at: at, updated_at: at, last_login_at: null };
    try {
      await this.#store.db.insertInto('proxy_accounts').values(row).execute();
    } catch (err) {
      if (isUniqueViolation(err)) throw alreadyExists('proxy', input.name);
      throw err;
    }
    return { account: proxyView(row), generatedPassword: generated };
  }

  async update(name: string, raw: unknown): Promise<WithPassword<ProxyAccountView>> {
    const parsed = proxyAccountPatchSchema.safeParse(raw, { reportInput: true });
    if (!parsed.success) throw inputProblems(parsed.error.issues);
    const current = await this.get(name);
    const patch = parsed.data;
    if (patch.server !== undefined) await this.#validate(patch.server);
    const choice = passwordChoiceOf(patch, false);
    const password = choice ? await hashChoice(choice, name) : undefined;
    const updated: ProxyAccountRow = { ...current, server: patch.server ?? current.server, password_hash: password?.hash ?? current.password_hash, updated_at: new Date().toISOString() };
    await this.#store.db.updateTable('proxy_accounts').set(updated).where('name', '=', name).execute();
    if (password) this.logins.forget();
    return { account: proxyView(updated), generatedPassword: password?.generated };
  }

  async setPassword(name: string, choice: PasswordChoice): Promise<WithPassword<ProxyAccountView>> {
    return this.update(name, choice.kind === 'generate' ? { generatePassword: true } : { password: choice.password });
  }

  async remove(name: string): Promise<void> {
    const result = await this.#store.db.deleteFrom('proxy_accounts').where('name', '=', name).executeTakeFirst();
    if (Number(result.numDeletedRows) === 0) throw notFound('proxy', name);
    this.logins.forget();
  }

  async list(): Promise<ProxyAccountView[]> {
    return (await this.#store.db.selectFrom('proxy_accounts').selectAll().orderBy('name').execute()).map(proxyView);
  }

  async show(name: string): Promise<ProxyAccountView> {
    return proxyView(await this.get(name));
  }

  async find(name: string): Promise<ProxyAccountRow | undefined> {
    return this.#store.db.selectFrom('proxy_accounts').selectAll().where('name', '=', name).executeTakeFirst();
  }

  async get(name: string): Promise<ProxyAccountRow> {
    const row = await this.find(name);
    if (!row) throw notFound('proxy', name);
    return row;
  }

  /** A program's login at the IMAP or POP3 proxy. */
  login(name: string, password: string, context: LoginContext): Promise<LoginResult<ProxyAccountRow>> {
    return this.logins.login(name, password, context);
  }

  /** Proxy accounts bound to `server` (a server in use cannot be removed without saying so). */
  async usingServer(server: string): Promise<string[]> {
    return (await this.#store.db.selectFrom('proxy_accounts').select('name').where('server', '=', server).execute()).map((r) => r.name);
  }

  async #validate(serverName: string): Promise<void> {
    const server = await this.servers.find(serverName);
    const problem = !server
      ? `no server named ${JSON.stringify(serverName)} (add one with \`mailgate server add\` or POST /api/v1/servers)`
      : server.protocol !== 'imap' && server.protocol !== 'pop3'
        ? `${serverName} is an ${server.protocol.toUpperCase()} server; a proxy account needs an IMAP or POP3 server`
        : server.auth_type !== 'oauth2'
          ? `${serverName} logs in with ${server.auth_type === 'password' ? 'a password' : 'no authentication'}; the proxy logs in upstream with XOAUTH2, so give the server an OAuth2 credential`
          : undefined;
    if (problem) throw new MailgateError(ErrorCode.INPUT_INVALID, `server: ${problem}`);
  }

  async #touch(name: string, at: string): Promise<void> {
    await this.#store.db.updateTable('proxy_accounts').set({ last_login_at: at }).where('name', '=', name).execute();
  }
}

function notFound(kind: string, name: string): MailgateError {
  return new MailgateError(ErrorCode.NOT_FOUND, `no ${kind} account named ${JSON.stringify(name)}`);
}

function relayView(row: RelayAccountRow): RelayAccountView {
  return { name: row.name, sender: row.sender, allowFrom: JSON.parse(row.allow_from) as string[], passwordKind: kindOf(row.password_hash), createdAt: row.created_at, updatedAt: row.updated_at, lastLoginAt: row.last_login_at };
}

function proxyView(row: ProxyAccountRow): ProxyAccountView {
  return { name: row.name, server: row.server, passwordKind: kindOf(row.password_hash), createdAt: row.created_at, updatedAt: row.updated_at, lastLoginAt: row.last_login_at };
}
