// `mailgate export` / `import`: a whole installation as one file of JSON lines, read from SQLite or PostgreSQL and written into either, its secrets still sealed by the same master key.
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Config } from '../config/load.js';
import { ErrorCode, MailgateError } from '../errors.js';
import { listInstances } from '../instances/registry.js';
import { Keyring } from '../secrets/keyring.js';
import { keyCheckOf, opensKeyCheck, readMasterKeys } from '../secrets/masterKey.js';
import { migrations } from '../store/migrations/index.js';
import { openStore, type Store } from '../store/store.js';
import type { Database } from '../store/tables.js';
import { VERSION } from '../version.js';

const FORMAT = 'mailgate-export';
const FORMAT_VERSION = 1;

/**
 * What an installation is, parents first, each with the key its rows are read in order of. Left out on purpose:
 * sign-in sessions and pending OAuth states (short-lived: people sign in again), the change log, and the instances
 * and leases (they describe running processes, not the installation).
 */
const TABLES = [
  ['meta', 'name'],
  ['credentials', 'name'],
  ['credential_events', 'id'],
  ['api_keys', 'id'],
  ['servers', 'name'],
  ['senders', 'name'],
  ['outbox', 'id'],
  ['watchers', 'name'],
  ['watcher_state', 'watcher'],
  ['inbound_deliveries', 'id'],
  ['alerts', 'id'],
  ['audit_log', 'id'],
  ['admin_users', 'id'],
  ['admin_setup_tokens', 'token_hash'],
  ['relay_accounts', 'name'],
  ['proxy_accounts', 'name'],
  // What was sent through limited servers in the last day, and the pauses providers imposed: a move keeps the budget.
  ['send_log', 'id'],
  ['server_pauses', 'server'],
] as const satisfies ReadonlyArray<readonly [keyof Database, string]>;
type TableName = (typeof TABLES)[number][0];
/** Emptied too by an import with --force: they refer to what is replaced. */
const ALSO_CLEARED = ['admin_sessions', 'oauth_states', 'leases'] as const;
/** Columns PostgreSQL numbers itself (identity), whose sequence must continue after the imported rows. */
const IDENTITY_COLUMNS: ReadonlyArray<readonly [TableName, string]> = [['credential_events', 'id'], ['audit_log', 'id'], ['admin_users', 'id'], ['send_log', 'id']];
/** meta rows that describe this database or its processes rather than the installation. */
const LOCAL_META = new Set(['listeners']);
const PAGE = 200;

interface Header {
  format: typeof FORMAT;
  formatVersion: number;
  mailgateVersion: string;
  schema: string;
  exportedAt: string;
  from: Config['database']['kind'];
  /** The master key the secrets are sealed with (null when none was ever set up), and the store's sealed check value. */
  keyId: string | null;
  keyCheck: string | null;
  rows: Record<string, number>;
}

export interface TransferSummary {
  file: string;
  database: Config['database']['kind'];
  rows: Record<string, number>;
  keyId: string | null;
}

type Row = Record<string, unknown>;
const encode = (row: Row): Row => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, Buffer.isBuffer(v) ? { $bytes: v.toString('base64') } : v]));
const decode = (row: Row): Row => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, v !== null && typeof v === 'object' && typeof (v as { $bytes?: unknown }).$bytes === 'string' ? Buffer.from((v as { $bytes: string }).$bytes, 'base64') : v]));
const latestSchema = () => Object.keys(migrations).sort().at(-1)!;

/** Writes every table of the installation to `target` (mode 0600), from one consistent snapshot, also while serve runs. */
export async function exportInstallation(config: Config, target: string, options: { overwrite?: boolean } = {}): Promise<TransferSummary> {
  const file = path.resolve(target);
  if (fs.existsSync(file) && !options.overwrite) throw new MailgateError(ErrorCode.ALREADY_EXISTS, `${file} exists already: choose another name, or add --force to replace it`);
  const store = await openStore(config.database);
  const partial = `${file}.partial`;
  try {
    const keyCheck = (await keyCheckOf(store)) ?? null;
    const out = fs.createWriteStream(partial, { mode: 0o600 });
    const write = (value: unknown) => new Promise<void>((resolve, reject) => out.write(`${JSON.stringify(value)}\n`, (err) => (err ? reject(err) : resolve())));
    let rows: Record<string, number> = {};
    try {
      await snapshot(store, async (db) => {
        rows = Object.fromEntries(await Promise.all(TABLES.map(async ([table]) => [table, await countRows(db, table)] as const)));
        const header: Header = { format: FORMAT, formatVersion: FORMAT_VERSION, mailgateVersion: VERSION, schema: latestSchema(), exportedAt: new Date().toISOString(), from: store.kind, keyId: keyCheck ? Keyring.keyIdOfSealed(keyCheck) ?? null : null, keyCheck, rows };
        await write(header);
        for (const [table, key] of TABLES) {
          let last: unknown;
          for (;;) {
            let query = db.selectFrom(table).selectAll().orderBy(key as never).limit(PAGE);
            if (last !== undefined) query = query.where(key as never, '>', last as never);
            const page = (await query.execute()) as Row[];
            for (const row of page) await write({ t: table, r: encode(row) });
            if (page.length < PAGE) break;
            last = page[page.length - 1]![key];
          }
        }
        await write({ end: true, rows: Object.values(rows).reduce((a, b) => a + b, 0) });
      });
    } finally {
      await new Promise<void>((resolve) => out.end(resolve));
    }
    fs.chmodSync(partial, 0o600);
    fs.renameSync(partial, file);
    return { file, database: store.kind, rows, keyId: keyCheck ? Keyring.keyIdOfSealed(keyCheck) ?? null : null };
  } catch (err) {
    fs.rmSync(partial, { force: true });
    throw err instanceof MailgateError ? err : new MailgateError(ErrorCode.STORE_UNAVAILABLE, `the export to ${file} failed: ${(err as Error).message} (check that its directory exists and has room)`, { cause: err });
  } finally {
    await store.close();
  }
}

/**
 * Reads a file written by `exportInstallation` into this installation's database: checks the format, the schema
 * and that this master key opens the export's secrets before anything is written, refuses a database that holds
 * data (unless `replace`) or has a running serve, and writes everything in one transaction — all or nothing.
 */
export async function importInstallation(config: Config, source: string, options: { replace?: boolean } = {}): Promise<TransferSummary> {
  const file = path.resolve(source);
  if (!fs.existsSync(file)) throw new MailgateError(ErrorCode.NOT_FOUND, `no export file ${file}`);
  const lines = readline.createInterface({ input: fs.createReadStream(file), crlfDelay: Infinity })[Symbol.asyncIterator]();
  try {
    const header = parseHeader(file, (await lines.next()).value);
    checkKey(config, header);
    const store = await openStore(config.database);
    try {
      await refuseIfInUse(store, config, options.replace === true);
      const counted: Record<string, number> = {};
      await store.db.transaction().execute(async (trx) => {
        if (options.replace) for (const table of [...ALSO_CLEARED, ...TABLES.map(([t]) => t).reverse()]) if (table !== 'meta') await trx.deleteFrom(table).execute();
        let batch: { table: TableName; rows: Row[] } | undefined;
        const flush = async () => {
          if (batch && batch.rows.length > 0) await insertRows(trx, batch.table, batch.rows);
          batch = undefined;
        };
        let ended = false;
        for (let next = await lines.next(); !next.done; next = await lines.next()) {
          if (next.value.trim() === '') continue;
          const entry = parseLine(file, next.value);
          if ('end' in entry) {
            ended = true;
            break;
          }
          counted[entry.t] = (counted[entry.t] ?? 0) + 1;
          if (batch?.table !== entry.t || batch.rows.length >= 100) await flush();
          batch ??= { table: entry.t, rows: [] };
          batch.rows.push(decode(entry.r));
        }
        await flush();
        for (const [table] of TABLES) {
          if ((counted[table] ?? 0) !== (header.rows[table] ?? 0)) throw invalid(file, `${table} has ${counted[table] ?? 0} rows where the header says ${header.rows[table] ?? 0}${ended ? '' : ', and the file ends early'}: it is damaged or cut short (export again)`);
        }
        if (!ended) throw invalid(file, 'the file ends early: it is cut short (export again)');
        if (store.kind === 'postgres') {
          for (const [table, column] of IDENTITY_COLUMNS) {
            await sql`select setval(pg_get_serial_sequence(${table}, ${column}), coalesce((select max(${sql.ref(column)}) from ${sql.table(table)}), 0) + 1, false)`.execute(trx);
          }
        }
      });
      return { file, database: store.kind, rows: Object.fromEntries(TABLES.map(([t]) => [t, counted[t] ?? 0])), keyId: header.keyId };
    } finally {
      await store.close();
    }
  } finally {
    await lines.return?.();
  }
}

/** Reads in one snapshot: PostgreSQL's repeatable read, SQLite's read transaction (WAL keeps writers going). */
async function snapshot(store: Store, read: (db: Kysely<Database>) => Promise<void>): Promise<void> {
  const transaction = store.db.transaction();
  await (store.kind === 'postgres' ? transaction.setIsolationLevel('repeatable read').setAccessMode('read only') : transaction).execute((trx) => read(trx));
}

async function countRows(db: Kysely<Database>, table: TableName): Promise<number> {
  const row = await db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst();
  return Number(row?.n ?? 0);
}

async function insertRows(trx: Transaction<Database>, table: TableName, rows: Row[]): Promise<void> {
  if (table === 'meta') {
    // The target has its own meta (the key check its first open wrote): the export's values replace them.
    for (const row of rows) {
      if (LOCAL_META.has(String(row.name))) continue;
      await trx.insertInto('meta').values(row as never).onConflict((oc) => oc.column('name').doUpdateSet({ value: row.value as string, updated_at: row.updated_at as string })).execute();
    }
    return;
  }
  await trx.insertInto(table).values(rows as never).execute();
}

function invalid(file: string, text: string): MailgateError {
  return new MailgateError(ErrorCode.INPUT_INVALID, `${file}: ${text}`);
}

function parseHeader(file: string, line: string | undefined): Header {
  let header: Partial<Header> | undefined;
  try {
    header = line ? (JSON.parse(line) as Partial<Header>) : undefined;
  } catch {
    header = undefined;
  }
  if (header?.format !== FORMAT) throw invalid(file, 'not a Mailgate export (expected a file written by `mailgate export`)');
  if (header.formatVersion !== FORMAT_VERSION) throw invalid(file, `export format ${String(header.formatVersion)} is not one this Mailgate (${VERSION}) reads: import it with the version that exported it (${header.mailgateVersion ?? '?'}) or newer`);
  if (typeof header.schema !== 'string' || !(header.schema in migrations)) {
    throw invalid(file, `it was exported by Mailgate ${header.mailgateVersion ?? '?'} with a newer database schema (${String(header.schema)}) than this one (${VERSION}, ${latestSchema()}): upgrade Mailgate first`);
  }
  if (typeof header.rows !== 'object' || header.rows === null) throw invalid(file, 'the header has no row counts: it is damaged (export again)');
  return header as Header;
}

function parseLine(file: string, line: string): { t: TableName; r: Row } | { end: true } {
  let entry: { t?: unknown; r?: unknown; end?: unknown };
  try {
    entry = JSON.parse(line) as typeof entry;
  } catch {
    throw invalid(file, 'a line is not JSON: the file is damaged (export again)');
  }
  if (entry.end === true) return { end: true };
  if (!TABLES.some(([t]) => t === entry.t) || typeof entry.r !== 'object' || entry.r === null) throw invalid(file, `a line names no table Mailgate exports (${JSON.stringify(entry.t)}): the file is damaged (export again)`);
  return { t: entry.t as TableName, r: entry.r as Row };
}

/** The export's secrets must open with this installation's master key: checked before anything is written. */
function checkKey(config: Config, header: Header): void {
  if (!header.keyCheck) return;
  const keys = readMasterKeys(config.masterKey);
  const origin = config.masterKey.kind === 'env' ? 'MAILGATE_MASTER_KEY' : `the key file ${config.masterKey.file}`;
  if (!keys) {
    throw new MailgateError(ErrorCode.MASTER_KEY_MISSING, `the export's secrets are sealed with master key ${header.keyId ?? '?'}, and there is no master key here: set MAILGATE_MASTER_KEY to that key, or copy its key file to ${config.masterKey.kind === 'file' ? config.masterKey.file : 'the key file'}`);
  }
  if (!opensKeyCheck(new Keyring(keys), header.keyCheck)) {
    throw new MailgateError(ErrorCode.MASTER_KEY_MISMATCH, `wrong master key: the export's secrets are sealed with key ${header.keyId ?? '?'}, but ${origin} holds ${keys.map((k) => k.id).join(', ')} (use the key of the installation that exported it)`);
  }
}

/** Refuses a database with data in it (unless replacing) and, always, one a running serve uses. */
async function refuseIfInUse(store: Store, config: Config, replace: boolean): Promise<void> {
  const running = (await listInstances(store, config.instances.leaseMs)).filter((i) => i.alive);
  if (running.length > 0) {
    throw new MailgateError(ErrorCode.INPUT_INVALID, `a Mailgate serve runs on this database (${running.map((i) => `${i.hostname} pid ${i.pid}`).join(', ')}): stop it first, then import`);
  }
  if (replace) return;
  const held = (await Promise.all(TABLES.filter(([t]) => t !== 'meta').map(async ([t]) => [t, await countRows(store.db, t)] as const))).filter(([, n]) => n > 0);
  if (held.length > 0) {
    throw new MailgateError(ErrorCode.ALREADY_EXISTS, `the database is not empty (${held.map(([t, n]) => `${t.replace(/_/g, ' ')}: ${n}`).join(', ')}): import into an empty database, or add --force to replace everything in it`);
  }
}
