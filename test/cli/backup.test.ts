// Proves `mailgate backup` / `restore`: a consistent copy while serve runs, no restore under a running serve or with another master key, and a restore that brings the copy's state back with its secrets still opening.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateMasterKey } from '../../src/secrets/keyring.js';
import { runCli, startServe, tempDir } from '../support/cli.js';
import { getFreePort } from '../testbed/ports.js';

function addCredential(name: string, cwd: string, env: Record<string, string>) {
  return runCli(
    ['credential', 'add', name, '--provider', 'generic', '--client-id', 'app', '--email', `${name}@example.test`, '--authorization-url', 'https://login.example.test/authorize', '--token-url', 'https://login.example.test/token', '--client-secret-env', 'SECRET'],
    { cwd, env: { ...env, SECRET: `${name}-client-secret` } },
  );
}

async function credentialNames(cwd: string, env: Record<string, string>): Promise<string[]> {
  const listed = await runCli(['credential', 'list', '--json'], { cwd, env });
  expect(listed.code, listed.stderr).toBe(0);
  return (JSON.parse(listed.stdout) as Array<{ name: string }>).map((c) => c.name).sort();
}

describe('mailgate backup and restore', () => {
  it('copies the database while serve runs, refuses to restore under it, and restores once it is stopped', async () => {
    const cwd = tempDir();
    const port = await getFreePort();
    const env = { MAILGATE_LISTEN: `127.0.0.1:${port}` };
    const serve = await startServe({ cwd, port });
    let serving = true;
    try {
      expect((await addCredential('alarms', cwd, env)).code).toBe(0);

      const backupFile = path.join(cwd, 'backups', 'mailgate-1.db');
      fs.mkdirSync(path.dirname(backupFile));
      const backup = await runCli(['backup', backupFile], { cwd, env });
      expect(backup.code, backup.stderr).toBe(0);
      expect(backup.stdout).toContain(`backed up to ${backupFile}: 1 credential, 0 outbox messages`);
      expect(backup.stdout).toContain(`keep a copy of ${path.join(cwd, 'data', 'master.key')} apart from it`);
      expect(fs.statSync(backupFile).mode & 0o777).toBe(0o600);
      expect(fs.existsSync(`${backupFile}.partial`)).toBe(false);

      const again = await runCli(['backup', backupFile], { cwd, env });
      expect(again.code).toBe(2);
      expect(again.stderr).toBe(`mailgate: ${backupFile} exists already: choose another name, or add --force to replace it\n`);

      const underServe = await runCli(['restore', backupFile], { cwd, env });
      expect(underServe.code).toBe(2);
      expect(underServe.stderr).toContain(`a Mailgate answers on 127.0.0.1:${port} and has the database open: stop it first`);

      // After the backup: one more credential, which the restore must take away again
      expect((await addCredential('later', cwd, env)).code).toBe(0);
      expect(await serve.stop('SIGTERM')).toBe(0);
      serving = false;
      expect(await credentialNames(cwd, env)).toEqual(['alarms', 'later']);

      const wrongKey = await runCli(['restore', backupFile], { cwd, env: { ...env, MAILGATE_MASTER_KEY: generateMasterKey() } });
      expect(wrongKey.code).toBe(2);
      expect(wrongKey.stderr).toMatch(/^mailgate: wrong master key: MAILGATE_MASTER_KEY holds key k[0-9a-f]+, but this store was set up with key k[0-9a-f]+/);
      expect(await credentialNames(cwd, env)).toEqual(['alarms', 'later']); // nothing replaced

      const notABackup = path.join(cwd, 'notes.txt');
      fs.writeFileSync(notABackup, 'not a database\n'.repeat(100));
      const garbage = await runCli(['restore', notABackup], { cwd, env });
      expect(garbage.code).toBe(2);
      expect(garbage.stderr).toBe(`mailgate: ${notABackup} is not a usable SQLite database: file is not a database\n`);

      const restored = await runCli(['restore', backupFile], { cwd, env });
      expect(restored.code, restored.stderr).toBe(0);
      expect(restored.stdout).toContain(`restored ${path.join(cwd, 'data', 'mailgate.db')} from ${backupFile}: 1 credential`);
      const kept = fs.readdirSync(path.join(cwd, 'data')).filter((f) => f.startsWith('mailgate.db.before-restore-'));
      expect(kept.filter((f) => !f.endsWith('-wal') && !f.endsWith('-shm'))).toHaveLength(1);
      expect(restored.stdout).toContain(`the database it replaced is kept as ${path.join(cwd, 'data', kept.find((f) => !/-(wal|shm)$/.test(f))!)}`);
      expect(await credentialNames(cwd, env)).toEqual(['alarms']);
      // the backup file itself is untouched by the restore (migrations ran on a copy)
      expect(fs.existsSync(`${backupFile}-wal`)).toBe(false);

      // The restored database opens with this master key: serve starts on it and is ready
      const again2 = await startServe({ cwd, port });
      try {
        expect((await fetch(`${again2.url}/readyz`)).status).toBe(200);
      } finally {
        expect(await again2.stop('SIGTERM')).toBe(0);
      }
    } finally {
      if (serving) await serve.stop('SIGTERM');
    }
  }, 120_000);
});
