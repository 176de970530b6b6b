// Proves `mailgate apikey create|list|revoke` as an operator runs them: the key is printed once, never listed, and revocation sticks.
import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { runCli, tempDir } from '../support/cli.js';

const KEY = /mgk_[A-Za-z0-9_-]{43}/;

describe('mailgate apikey', () => {
  it('create prints the key once with a note that it cannot be shown again; list shows name and scopes but no key; revoke marks it revoked', async () => {
    const cwd = tempDir();
    const created = await runCli(['apikey', 'create', '--name', 'alarm-system', '--scope', 'send', '--scope', 'token:m365'], { cwd });
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    const lines = created.stdout.trim().split('\n');
    expect(lines[0]).toMatch(new RegExp(`^${KEY.source}$`));
    const key = lines[0]!;
    expect(created.stdout.split(key)).toHaveLength(2); // printed exactly once
    expect(created.stdout).toContain('cannot be shown again');

    // Only the hash is in the database, in the default place.
    const db = path.join(cwd, 'data', 'mailgate.db');
    const raw = new SQLite(db, { readonly: true });
    const rows = raw.prepare('select name, key_hash, scopes, revoked_at from api_keys').all() as { name: string; key_hash: string; scopes: string; revoked_at: string | null }[];
    raw.close();
    expect(rows).toEqual([{ name: 'alarm-system', key_hash: expect.stringMatching(/^[0-9a-f]{64}$/), scopes: '["send","token:m365"]', revoked_at: null }]);

    const listed = await runCli(['apikey', 'list'], { cwd });
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/alarm-system\s+send,token:m365\s/);
    expect(listed.stdout).toContain('active');
    expect(listed.stdout).not.toMatch(KEY);
    expect(listed.stdout).not.toContain(rows[0]!.key_hash);

    const json = await runCli(['apikey', 'list', '--json'], { cwd });
    expect(JSON.parse(json.stdout)).toEqual([
      { id: expect.any(String), name: 'alarm-system', scopes: ['send', 'token:m365'], createdAt: expect.any(String), lastUsedAt: null, revokedAt: null },
    ]);

    const revoked = await runCli(['apikey', 'revoke', 'alarm-system'], { cwd });
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toContain('revoked API key "alarm-system"');
    const after = await runCli(['apikey', 'list', '--json'], { cwd });
    expect(JSON.parse(after.stdout)[0].revokedAt).toEqual(expect.any(String));
    expect(fs.existsSync(path.join(cwd, 'data', 'master.key'))).toBe(false); // hashed, not sealed: no master key needed
  });

  it('refuses a bad scope, a duplicate name and an unknown name with one line and exit code 2', async () => {
    const cwd = tempDir();
    const bad = await runCli(['apikey', 'create', '--name', 'x', '--scope', 'sned'], { cwd });
    expect(bad.code).toBe(2);
    expect(bad.stdout).toBe('');
    expect(bad.stderr.trim()).toBe('mailgate: scopes[0]: expected "admin", "send", "send:<sender>", "metrics", "token:<credential>" or "token:*", got "sned"');

    expect((await runCli(['apikey', 'create', '--name', 'x', '--scope', 'admin'], { cwd })).code).toBe(0);
    const dup = await runCli(['apikey', 'create', '--name', 'x', '--scope', 'send'], { cwd });
    expect(dup.code).toBe(2);
    expect(dup.stdout).toBe('');
    expect(dup.stderr).toContain('an API key named "x" exists already');

    const unknown = await runCli(['apikey', 'revoke', 'nobody'], { cwd });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no API key named "nobody"');
  });
});
