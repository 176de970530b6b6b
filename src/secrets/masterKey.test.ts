// Proves that the master key is created once with mode 0600 and that a wrong or missing key is caught at start, before any secret exists.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isMailgateError } from '../errors.js';
import { openStore } from '../store/store.js';
import { generateMasterKey, parseMasterKey } from './keyring.js';
import { unlockKeyring } from './masterKey.js';

function fresh() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailgate-key-'));
  return { dir, db: { kind: 'sqlite' as const, file: path.join(dir, 'mailgate.db') }, keyFile: path.join(dir, 'master.key') };
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (isMailgateError(err)) return err.code;
    throw err;
  }
  return 'no error';
}

describe('unlockKeyring', () => {
  it('creates the key file with mode 0600 on first start, and reuses it afterwards', async () => {
    const { db, keyFile } = fresh();
    const store = await openStore(db);
    const first = await unlockKeyring({ kind: 'file', file: keyFile }, store);
    expect(first.createdKeyFile).toBe(true);
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
    const second = await unlockKeyring({ kind: 'file', file: keyFile }, store);
    expect(second.createdKeyFile).toBe(false);
    expect(second.keyring.current.id).toBe(first.keyring.current.id);
    await store.close();
  });

  it('detects a wrong key before any secret has been stored', async () => {
    const { db } = fresh();
    const store = await openStore(db);
    await unlockKeyring({ kind: 'env', value: generateMasterKey() }, store);
    expect(await codeOf(unlockKeyring({ kind: 'env', value: generateMasterKey() }, store))).toBe('MASTER_KEY_MISMATCH');
    await store.close();
  });

  it('refuses to invent a new key for a store that already has one', async () => {
    const { db, keyFile } = fresh();
    const store = await openStore(db);
    await unlockKeyring({ kind: 'file', file: keyFile }, store);
    fs.rmSync(keyFile);
    expect(await codeOf(unlockKeyring({ kind: 'file', file: keyFile }, store))).toBe('MASTER_KEY_MISSING');
    expect(fs.existsSync(keyFile)).toBe(false);
    await store.close();
  });

  it('accepts a rotated key list whose older key set the store up, and warns about a readable key file', async () => {
    const { db, keyFile } = fresh();
    const store = await openStore(db);
    const original = generateMasterKey();
    await unlockKeyring({ kind: 'env', value: original }, store);
    const rotated = await unlockKeyring({ kind: 'env', value: `${generateMasterKey()},${original}` }, store);
    const originalId = parseMasterKey(original, 'original').id;
    expect(rotated.keyring.has(originalId)).toBe(true);
    expect(rotated.keyring.current.id).not.toBe(originalId);
    fs.writeFileSync(keyFile, `${original}\n`, { mode: 0o644 });
    fs.chmodSync(keyFile, 0o644);
    const loose = await unlockKeyring({ kind: 'file', file: keyFile }, store);
    expect(loose.warnings.join()).toContain('chmod 600');
    await store.close();
  });
});
