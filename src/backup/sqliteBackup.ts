// Online backup of the SQLite database (SQLite's backup API: a consistent copy while `serve` writes) and its restore, which checks the master key before it replaces anything.
import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import type { Config } from '../config/load.js';
import { localGatewayUrl } from '../config/localUrl.js';
import { ErrorCode, MailgateError } from '../errors.js';
import { unlockKeyring } from '../secrets/masterKey.js';
import { openStore } from '../store/store.js';

export interface BackupSummary {
  file: string;
  bytes: number;
  credentials: number;
  messages: number;
  /** Where the master key that opens the copy's secrets is: it is not in the copy, and must be backed up apart. */
  masterKey: string;
}

export interface RestoreSummary extends BackupSummary {
  /** The database that was there before, kept beside it (undefined when there was none). */
  previous: string | undefined;
}

/** Copies the live database to `target` (mode 0600); refuses to overwrite a file unless `overwrite`. */
export async function backupDatabase(config: Config, target: string, options: { overwrite?: boolean } = {}): Promise<BackupSummary> {
  const source = sqliteFile(config, 'backup');
  if (!fs.existsSync(source)) throw new MailgateError(ErrorCode.NOT_FOUND, `no database at ${source} to back up (run \`mailgate init\` or check dataDir/databaseUrl)`);
  const file = path.resolve(target);
  if (file === path.resolve(source)) throw new MailgateError(ErrorCode.INPUT_INVALID, `${file} is the database itself: give another file name for the backup`);
  if (fs.existsSync(file) && !options.overwrite) throw new MailgateError(ErrorCode.ALREADY_EXISTS, `${file} exists already: choose another name, or add --force to replace it`);
  const partial = `${file}.partial`;
  fs.rmSync(partial, { force: true });
  const database = new SQLite(source, { readonly: true, fileMustExist: true });
  try {
    database.pragma('busy_timeout = 5000');
    // The backup API copies page by page and restarts if a writer changes a page it has copied: the result is one
    // consistent state of the database, even while `serve` sends and receives.
    await database.backup(partial);
  } catch (cause) {
    fs.rmSync(partial, { force: true });
    throw new MailgateError(ErrorCode.STORE_UNAVAILABLE, `the backup to ${file} failed: ${(cause as Error).message} (check that its directory exists and has room)`, { cause });
  } finally {
    database.close();
  }
  fs.chmodSync(partial, 0o600);
  const counts = checkCopy(partial);
  fs.renameSync(partial, file);
  return { file, bytes: fs.statSync(file).size, ...counts, masterKey: keyLocation(config) };
}

/**
 * Replaces the database with the copy in `backupFile`, after checking that this installation's master key opens it
 * and that no `serve` answers on the listen address. The database it replaces is kept as `<db>.before-restore-<time>`.
 */
export async function restoreDatabase(config: Config, backupFile: string): Promise<RestoreSummary> {
  const target = sqliteFile(config, 'restore');
  const file = path.resolve(backupFile);
  if (!fs.existsSync(file)) throw new MailgateError(ErrorCode.NOT_FOUND, `no backup file ${file}`);
  await refuseWhileServing(config);
  // Work on a copy beside the target: the backup file itself is never changed (migrations run on the copy).
  const staging = `${target}.restoring`;
  for (const suffix of ['', '-wal', '-shm']) fs.rmSync(`${staging}${suffix}`, { force: true });
  fs.mkdirSync(path.dirname(target), { recursive: true, mode: 0o700 });
  fs.copyFileSync(file, staging);
  fs.chmodSync(staging, 0o600);
  try {
    const counts = checkCopy(staging, file);
    const store = await openStore({ kind: 'sqlite', file: staging });
    try {
      const check = await store.getMeta('master_key_check');
      if (check === undefined) throw new MailgateError(ErrorCode.INPUT_INVALID, `${file} holds no master key check value: it is not a Mailgate backup, or one of an installation that never started`);
      await unlockKeyring(config.masterKey, store);
    } finally {
      await store.close();
    }
    let previous: string | undefined;
    if (fs.existsSync(target)) {
      previous = `${target}.before-restore-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      // The write-ahead log belongs to the file it was written for: it moves along with it.
      for (const suffix of ['', '-wal', '-shm']) if (fs.existsSync(`${target}${suffix}`)) fs.renameSync(`${target}${suffix}`, `${previous}${suffix}`);
    }
    fs.renameSync(staging, target);
    return { file: target, bytes: fs.statSync(target).size, ...counts, masterKey: keyLocation(config), previous };
  } catch (err) {
    for (const suffix of ['', '-wal', '-shm']) fs.rmSync(`${staging}${suffix}`, { force: true });
    throw err;
  }
}

function sqliteFile(config: Config, verb: 'backup' | 'restore'): string {
  if (config.database.kind !== 'sqlite') {
    const tool = verb === 'backup' ? 'pg_dump --format=custom --file=mailgate.dump "$MAILGATE_DATABASE_URL"' : 'pg_restore --clean --dbname="$MAILGATE_DATABASE_URL" mailgate.dump';
    throw new MailgateError(ErrorCode.INPUT_INVALID, `mailgate ${verb} works on SQLite; for PostgreSQL use its own tools: ${tool}`);
  }
  return config.database.file;
}

/** An integrity check of the copy and what it holds (also proves that it is a Mailgate database). */
function checkCopy(file: string, shownAs: string = file): { credentials: number; messages: number } {
  let database: SQLite.Database;
  try {
    database = new SQLite(file, { readonly: true, fileMustExist: true });
  } catch (cause) {
    throw new MailgateError(ErrorCode.INPUT_INVALID, `${shownAs} is not a readable SQLite database: ${(cause as Error).message}`, { cause });
  }
  try {
    const integrity = database.pragma('integrity_check', { simple: true });
    if (integrity !== 'ok') throw new MailgateError(ErrorCode.INPUT_INVALID, `${shownAs} fails SQLite's integrity check (${String(integrity)}): use another backup`);
    const count = (table: string) => (database.prepare(`select count(*) as n from ${table}`).get() as { n: number }).n;
    try {
      return { credentials: count('credentials'), messages: count('outbox') };
    } catch (cause) {
      throw new MailgateError(ErrorCode.INPUT_INVALID, `${shownAs} is an SQLite database but not Mailgate's (${(cause as Error).message})`, { cause });
    }
  } catch (err) {
    if (err instanceof MailgateError) throw err;
    throw new MailgateError(ErrorCode.INPUT_INVALID, `${shownAs} is not a usable SQLite database: ${(err as Error).message}`, { cause: err });
  } finally {
    database.close();
  }
}

function keyLocation(config: Config): string {
  return config.masterKey.kind === 'env' ? 'MAILGATE_MASTER_KEY' : config.masterKey.file;
}

/** A `serve` answering on the configured listen address holds the database open: restoring under it would be lost. */
async function refuseWhileServing(config: Config): Promise<void> {
  const { host, port } = config.listen;
  const url = localGatewayUrl(config.listen, '/healthz');
  const answered = await fetch(url, { signal: AbortSignal.timeout(2_000) }).then(
    (response) => response.ok,
    () => false,
  );
  if (answered) throw new MailgateError(ErrorCode.INPUT_INVALID, `a Mailgate answers on ${host}:${port} and has the database open: stop it first (e.g. \`systemctl stop mailgate\`), then restore`);
}
