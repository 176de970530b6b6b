// Senders (outbound routes): a primary SMTP server, ordered backups, a default From and Reply-To; stored, validated, synced from mailgate.yaml.
import type { Selectable } from 'kysely';
import { refuseRename } from '../patches.js';
import { ErrorCode, MailgateError } from '../errors.js';
import type { ServerRepository } from '../servers/repository.js';
import type { Store } from '../store/store.js';
import type { SendersTable } from '../store/tables.js';
import { parseAddress } from '../outbox/addresses.js';
import { senderInputSchema, type SenderInput, type SenderView } from './model.js';

type SenderRow = Selectable<SendersTable>;

export class SenderService {
  readonly #recent = new Map<string, { view: SenderView | undefined; until: number }>();

  constructor(
    private readonly store: Store,
    private readonly servers: ServerRepository,
  ) {}

  async add(raw: unknown): Promise<SenderView> {
    const input = await this.#validate(raw);
    if (await this.#find(input.name)) throw new MailgateError(ErrorCode.ALREADY_EXISTS, `sender ${JSON.stringify(input.name)} exists already`);
    await this.#save(input, 'api');
    return this.show(input.name);
  }

  async update(name: string, patch: unknown): Promise<SenderView> {
    const current = await this.show(name);
    if (current.source === 'config') throw new MailgateError(ErrorCode.INPUT_INVALID, `sender ${name} is defined in the configuration file: change it there`);
    if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) throw new MailgateError(ErrorCode.INPUT_INVALID, 'body: expected a JSON object with the fields to change');
    refuseRename('sender', name, patch);
    const input = await this.#validate({ primary: current.primary, backups: current.backups, from: current.from, ...(current.replyTo ? { replyTo: current.replyTo } : {}), ...patch, name });
    await this.#save(input, 'api');
    return this.show(name);
  }

  async remove(name: string): Promise<void> {
    const current = await this.show(name);
    if (current.source === 'config') throw new MailgateError(ErrorCode.INPUT_INVALID, `sender ${name} is defined in the configuration file: remove it there`);
    // Relay accounts send through their sender: removing it would make their programs fail without a word.
    const accounts = (await this.store.db.selectFrom('relay_accounts').select('name').where('sender', '=', name).orderBy('name').execute()).map((a) => a.name);
    if (accounts.length > 0) {
      throw new MailgateError(ErrorCode.STATE_CONFLICT, `sender ${name} is still used by relay account${accounts.length > 1 ? 's' : ''} ${accounts.join(', ')}: give ${accounts.length > 1 ? 'them' : 'it'} another sender (mailgate relay-account or PATCH /api/v1/relay-accounts/:name) or remove ${accounts.length > 1 ? 'them' : 'it'} first`);
    }
    this.#recent.clear();
    await this.store.db.deleteFrom('senders').where('name', '=', name).execute();
    await this.store.changes.record('senders', name);
  }

  async list(): Promise<SenderView[]> {
    return (await this.store.db.selectFrom('senders').selectAll().orderBy('name').execute()).map(viewOf);
  }

  async show(name: string): Promise<SenderView> {
    const row = await this.#find(name);
    if (!row) throw new MailgateError(ErrorCode.NOT_FOUND, `no sender named ${JSON.stringify(name)} (list them with \`mailgate sender list\`)`);
    return viewOf(row);
  }

  /**
   * The sender, as read at most a second ago: every accepted and every sent message looks its sender up. Changes
   * made here are seen at once; changes by another process (the CLI) within a second.
   */
  async find(name: string): Promise<SenderView | undefined> {
    const cached = this.#recent.get(name);
    if (cached && cached.until > Date.now()) return cached.view;
    const row = await this.#find(name);
    const view = row ? viewOf(row) : undefined;
    if (this.#recent.size > 1000) this.#recent.clear();
    this.#recent.set(name, { view, until: Date.now() + 1000 });
    return view;
  }

  async syncFromConfig(senders: Readonly<Record<string, unknown>>): Promise<void> {
    for (const [name, value] of Object.entries(senders)) {
      const input = await this.#validate({ ...(value as object), name }, `senders.${name}`);
      const existing = await this.#find(name);
      // Unchanged: no write (the CLI syncs on every run; the running instances need not hear of it).
      const same =
        existing?.source === 'config' &&
        existing.primary_server === input.primary &&
        existing.backups === JSON.stringify(input.backups ?? []) &&
        existing.from_address === input.from &&
        existing.reply_to === (input.replyTo ?? null);
      if (!same) await this.#save(input, 'config');
    }
    for (const row of await this.store.db.selectFrom('senders').select(['name', 'source']).execute()) {
      if (row.source === 'config' && !(row.name in senders)) {
        this.#recent.clear();
        await this.store.db.deleteFrom('senders').where('name', '=', row.name).execute();
        await this.store.changes.record('senders', row.name);
      }
    }
  }

  async #find(name: string): Promise<SenderRow | undefined> {
    return this.store.db.selectFrom('senders').selectAll().where('name', '=', name).executeTakeFirst();
  }

  async #validate(raw: unknown, prefix?: string): Promise<SenderInput> {
    const at = (field: string) => [prefix, field].filter(Boolean).join('.');
    const parsed = senderInputSchema.safeParse(raw);
    if (!parsed.success) {
      throw new MailgateError(ErrorCode.INPUT_INVALID, parsed.error.issues.map((i) => `${at(i.path.join('.')) || 'body'}: ${i.code === 'unrecognized_keys' ? `unknown field ${i.keys.join(', ')}` : i.message}`).join('; '));
    }
    const input = parsed.data;
    const problems: string[] = [];
    for (const [field, server] of [['primary', input.primary], ...(input.backups ?? []).map((b, i) => [`backups[${i}]`, b] as const)] as const) {
      const row = await this.servers.find(server);
      if (!row) problems.push(`${at(field)}: no server named ${JSON.stringify(server)} (add it first)`);
      else if (row.protocol !== 'smtp') problems.push(`${at(field)}: server ${server} is ${row.protocol}, a sender needs smtp servers`);
    }
    if (new Set([input.primary, ...(input.backups ?? [])]).size !== 1 + (input.backups?.length ?? 0)) problems.push(`${at('backups')}: a server appears twice in the route`);
    const from = parseAddress(input.from);
    if (!from.ok) problems.push(`${at('from')}: ${from.problem}`);
    if (input.replyTo !== undefined) {
      const replyTo = parseAddress(input.replyTo);
      if (!replyTo.ok) problems.push(`${at('replyTo')}: ${replyTo.problem}`);
    }
    if (problems.length > 0) throw new MailgateError(ErrorCode.INPUT_INVALID, problems.join('; '));
    return input;
  }

  async #save(input: SenderInput, source: 'config' | 'api'): Promise<void> {
    this.#recent.clear();
    const at = new Date().toISOString();
    const values = { name: input.name, primary_server: input.primary, backups: JSON.stringify(input.backups ?? []), from_address: input.from, reply_to: input.replyTo ?? null, source, updated_at: at };
    await this.store.db
      .insertInto('senders')
      .values({ ...values, created_at: at })
      .onConflict((oc) => oc.column('name').doUpdateSet(values))
      .execute();
    await this.store.changes.record('senders', input.name);
  }
}

function viewOf(row: SenderRow): SenderView {
  return {
    name: row.name,
    primary: row.primary_server,
    backups: JSON.parse(row.backups) as string[],
    from: row.from_address,
    replyTo: row.reply_to ?? undefined,
    source: row.source as 'config' | 'api',
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
