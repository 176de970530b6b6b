// Proves, as an operator runs `mailgate`, that every config problem comes in one run with exit 2 (one line each naming the key), and that `serve` refuses a file whose removals would break relay accounts, writing nothing.
import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { describe, expect, it, vi } from 'vitest';
import { stringify } from 'yaml';
import { runCli, tempDir } from '../support/cli.js';
import { getFreePort } from '../testbed/ports.js';

// Each command is a fresh Node process opening the store: a few seconds apiece on a loaded 2-core machine.
vi.setConfig({ testTimeout: 120_000 });

const server = (host: string) => ({ protocol: 'smtp', host, port: 587, security: 'starttls', username: 'relay@example.test', auth: { type: 'password', password: 'file-password' } });

function query<T>(cwd: string, sql: string): T[] {
  const db = new SQLite(path.join(cwd, 'data', 'mailgate.db'), { readonly: true });
  try {
    return db.prepare(sql).all() as T[];
  } finally {
    db.close();
  }
}

describe('config problems at the command line', () => {
  it('reports a bad databaseUrl, a sender naming a missing server and a type error in one run: exit 2, one line each naming the key, nothing created', async () => {
    const cwd = tempDir();
    fs.writeFileSync(
      path.join(cwd, 'mailgate.yaml'),
      stringify({ databaseUrl: 'mysql://root:hunter2@db/mailgate', shutdownTimeoutSeconds: 'soon', servers: { 'file-smtp': server('smtp.example.test') }, senders: { alarms: { primary: 'file-smpt', from: 'alarms@example.test' } } }),
    );
    const result = await runCli(['server', 'list'], { cwd });
    expect(result.code).toBe(2);
    const lines = result.stderr.trimEnd().split('\n');
    expect(lines[0]).toBe(`mailgate: invalid configuration (config file ${path.join(cwd, 'mailgate.yaml')}), 3 problems:`);
    expect(lines.slice(1).map((l) => /^ {2}([^:]+):/.exec(l)?.[1]).sort()).toEqual(['databaseUrl', 'senders.alarms.primary', 'shutdownTimeoutSeconds']);
    expect(result.stderr).toContain('senders.alarms.primary: no server named "file-smpt" in this file');
    expect(result.stderr).not.toContain('hunter2');
    expect(result.stdout).toBe('');
    expect(fs.existsSync(path.join(cwd, 'data'))).toBe(false);
  });

  it('serve refuses a file that drops a sender a relay account still sends through, naming the account, with every other problem and nothing written; other commands warn and run', async () => {
    const cwd = tempDir();
    const file = path.join(cwd, 'mailgate.yaml');
    fs.writeFileSync(file, stringify({ servers: { 'file-smtp': server('smtp.example.test'), 'backup-smtp': server('backup.example.test') }, senders: { alarms: { primary: 'file-smtp', backups: ['backup-smtp'], from: 'alarms@example.test' } } }));
    const added = await runCli(['relay-account', 'add', 'scanner', '--sender', 'alarms', '--generate-password'], { cwd });
    expect(added.code, added.stderr).toBe(0);

    // The operator deletes the sender, edits a server and adds a sender with a typo in its server's name.
    fs.writeFileSync(file, stringify({ servers: { 'file-smtp': server('smtp.example.test'), 'backup-smtp': server('moved.example.test') }, senders: { reports: { primary: 'file-smpt', from: 'reports@example.test' } } }));
    const serve = await runCli(['serve'], { cwd, env: { MAILGATE_LISTEN: `127.0.0.1:${await getFreePort()}` } });
    expect(serve.code).toBe(2);
    expect(serve.stderr.trimEnd().split('\n')).toEqual([
      `mailgate: the config file's servers and senders cannot be applied (config file ${file}); nothing was changed, 2 problems:`,
      '  senders.reports.primary: no server named "file-smpt" in the file or the store: add it under servers:, or create it with `mailgate server add file-smpt …`',
      '  senders.alarms: removed from the file, but relay account scanner still sends through it: put it back under senders:, or give it another sender (PATCH /api/v1/relay-accounts/NAME) or remove it (`mailgate relay-account remove NAME`) first',
    ]);
    expect(query(cwd, "select name from senders order by name")).toEqual([{ name: 'alarms' }]);
    expect(query(cwd, "select host from servers where name = 'backup-smtp'")).toEqual([{ host: 'backup.example.test' }]);

    // A command may be the fix: it runs, says the same, and leaves the store as it was.
    const list = await runCli(['sender', 'list'], { cwd });
    expect(list.code).toBe(0);
    expect(list.stderr).toContain("warning: the config file's servers and senders cannot be applied");
    expect(list.stderr).toContain('senders.alarms: removed from the file, but relay account scanner still sends through it');
    expect(list.stdout).toContain('alarms');
    const removed = await runCli(['relay-account', 'remove', 'scanner'], { cwd });
    expect(removed.code, removed.stderr).toBe(0);

    // With the account gone and the typo fixed, the file applies: the sender goes, the server's edit lands.
    fs.writeFileSync(file, stringify({ servers: { 'file-smtp': server('smtp.example.test'), 'backup-smtp': server('moved.example.test') }, senders: { reports: { primary: 'file-smtp', from: 'reports@example.test' } } }));
    const applied = await runCli(['sender', 'list'], { cwd });
    expect(applied.code).toBe(0);
    expect(applied.stderr).toBe('');
    expect(query(cwd, "select name from senders order by name")).toEqual([{ name: 'reports' }]);
    expect(query(cwd, "select host from servers where name = 'backup-smtp'")).toEqual([{ host: 'moved.example.test' }]);
  });
});
