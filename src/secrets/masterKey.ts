// Finds the master key (environment or key file), creates the key file on first start, and checks it against the store.
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, MailgateError } from '../errors.js';
import type { MasterKeySource } from '../config/load.js';
import type { Store } from '../store/store.js';
import { generateMasterKey, Keyring, parseMasterKey, type MasterKey } from './keyring.js';

/** The `meta` row holding a known value sealed under the key the store was set up with. */
const KEY_CHECK_META = 'master_key_check';
const KEY_CHECK_CONTEXT = 'master-key-check';
const KEY_CHECK_PLAINTEXT = 'mailgate master key check v1';

export interface UnlockResult {
  keyring: Keyring;
  /** True when this start created the key file (first start without `init`). */
  createdKeyFile: boolean;
  warnings: string[];
}

/**
 * Returns the keyring for `store`, or throws a MailgateError that names the fix:
 * MASTER_KEY_MISSING, MASTER_KEY_MALFORMED or MASTER_KEY_MISMATCH. Works before any secret is stored,
 * because the first start seals a check value that every later start must open.
 */
export async function unlockKeyring(source: MasterKeySource, store: Store): Promise<UnlockResult> {
  const check = await store.getMeta(KEY_CHECK_META);
  const warnings: string[] = [];
  let createdKeyFile = false;
  let keys: MasterKey[];

  if (source.kind === 'env') {
    keys = parseKeyList(source.value, 'MAILGATE_MASTER_KEY');
  } else if (fs.existsSync(source.file)) {
    keys = readKeyFile(source.file, warnings);
  } else if (check === undefined) {
    createKeyFile(source.file);
    createdKeyFile = true;
    keys = readKeyFile(source.file, warnings);
  } else {
    throw new MailgateError(
      ErrorCode.MASTER_KEY_MISSING,
      `no master key: the store holds secrets sealed with key ${Keyring.keyIdOfSealed(check) ?? '?'}, but MAILGATE_MASTER_KEY is unset and the key file ${source.file} does not exist (restore the key file or set MAILGATE_MASTER_KEY to that key)`,
    );
  }

  const keyring = new Keyring(keys);
  const origin = source.kind === 'env' ? 'MAILGATE_MASTER_KEY' : `the key file ${source.file}`;
  if (check === undefined) {
    await store.setMeta(KEY_CHECK_META, keyring.seal(KEY_CHECK_PLAINTEXT, KEY_CHECK_CONTEXT));
  } else {
    const expectedId = Keyring.keyIdOfSealed(check);
    if (!expectedId || !keyring.has(expectedId)) {
      throw new MailgateError(
        ErrorCode.MASTER_KEY_MISMATCH,
        `wrong master key: ${origin} holds key ${keys.map((k) => k.id).join(', ')}, but this store was set up with key ${expectedId ?? '?'} (set the original key; to rotate, list the new key first and the original after it)`,
      );
    }
    let opened: string | undefined;
    try {
      opened = keyring.open(check, KEY_CHECK_CONTEXT);
    } catch {
      opened = undefined;
    }
    if (opened !== KEY_CHECK_PLAINTEXT) {
      throw new MailgateError(ErrorCode.MASTER_KEY_MISMATCH, `wrong master key: the store's key check value does not open with ${origin} (key ${expectedId})`);
    }
  }
  return { keyring, createdKeyFile, warnings };
}

/** The master keys `source` holds, without touching any store; undefined when the key file does not exist (yet). */
export function readMasterKeys(source: MasterKeySource): MasterKey[] | undefined {
  if (source.kind === 'env') return parseKeyList(source.value, 'MAILGATE_MASTER_KEY');
  return fs.existsSync(source.file) ? readKeyFile(source.file, []) : undefined;
}

/** The store's key check value (meta), sealed under the key it was set up with; undefined before the first start. */
export function keyCheckOf(store: Store): Promise<string | undefined> {
  return store.getMeta(KEY_CHECK_META);
}

/** True when `keyring` opens a key check value (one from another store, e.g. an export's). */
export function opensKeyCheck(keyring: Keyring, check: string): boolean {
  try {
    return keyring.open(check, KEY_CHECK_CONTEXT) === KEY_CHECK_PLAINTEXT;
  } catch {
    return false;
  }
}

/** Writes a new random key to `file` with mode 0600; refuses to overwrite an existing key. */
export function createKeyFile(file: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  let fd: number;
  try {
    fd = fs.openSync(file, 'wx', 0o600);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new MailgateError(ErrorCode.ALREADY_EXISTS, `the key file ${file} exists already: it is left as it is (a new key would make every stored secret unreadable)`, { cause });
    }
    throw cause;
  }
  try {
    fs.writeSync(fd, `${generateMasterKey()}\n`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  // The umask can only remove bits; make sure no group or other bit survived a permissive umask either.
  fs.chmodSync(file, 0o600);
}

function readKeyFile(file: string, warnings: string[]): MasterKey[] {
  const mode = fs.statSync(file).mode & 0o777;
  if ((mode & 0o077) !== 0) warnings.push(`the key file ${file} is readable by other users (mode ${mode.toString(8)}): run \`chmod 600 ${file}\``);
  const text = fs.readFileSync(file, 'utf8').replace(/^#.*$/gm, '');
  return parseKeyList(text, `the key file ${file}`);
}

/** Keys separated by commas or new lines; the first seals new values, the others only open old ones. */
function parseKeyList(text: string, origin: string): MasterKey[] {
  const parts = text.split(/[\s,]+/).filter((p) => p !== '');
  if (parts.length === 0) {
    throw new MailgateError(ErrorCode.MASTER_KEY_MALFORMED, `${origin} is empty: it must hold a 256-bit key (make one with \`openssl rand -base64 32\`)`);
  }
  return parts.map((part, i) => parseMasterKey(part, parts.length > 1 ? `${origin} (key ${i + 1})` : origin));
}
