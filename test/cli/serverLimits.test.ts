// Proves sending limits from the command line and the config file: presets by host, --limit overrides and "none", what `server show` prints, and bad limits refused with exit 2 naming the key.
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { runCli, tempDir } from '../support/cli.js';

let cwd: string;
const cli = (args: string[]) => runCli(args, { cwd });

beforeAll(() => {
  cwd = tempDir();
  fs.writeFileSync(
    path.join(cwd, 'mailgate.yaml'),
    stringify({ servers: { 'file-gmail': { protocol: 'smtp', host: 'smtp.gmail.com', port: 465, security: 'tls', username: 'someone@gmail.com', auth: { type: 'none' }, limits: { messagesPerDay: null } } } }),
  );
});

describe('mailgate server --limit', () => {
  it('adds a Microsoft 365 server with its preset, one limit changed and one switched off, and shows what applies and what is left', async () => {
    const added = await cli(['server', 'add', 'm365', '--protocol', 'smtp', '--host', 'smtp.office365.com', '--port', '587', '--security', 'starttls', '--limit', 'messagesPerMinute=10', '--limit', 'connections=none']);
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    const shown = await cli(['server', 'show', 'm365']);
    expect(shown.stdout).toContain('limits: messagesPerMinute=10, recipientsPerDay=10000 (preset microsoft-365, changed: messagesPerMinute=10, connections=none)');
    expect(shown.stdout).toContain('sent: 0 messages / 0 recipients in the last minute, 0 / 0 in the last 24 hours; left: messagesPerMinute=10, recipientsPerDay=10000');
  });

  it('changes one limit with `server update` and keeps the others', async () => {
    const updated = await cli(['server', 'update', 'm365', '--limit', 'recipientsPerDay=500']);
    expect(updated.code).toBe(0);
    expect(updated.stdout).toContain('limits: messagesPerMinute=10, recipientsPerDay=500 (preset microsoft-365, changed: messagesPerMinute=10, recipientsPerDay=500, connections=none)');
    expect((await cli(['server', 'resume', 'm365'])).stdout).toContain('server m365 was not paused');
  });

  it('refuses an unknown limit and a limit under 1 with exit 2 naming the key, and changes nothing', async () => {
    const unknown = await cli(['server', 'update', 'm365', '--limit', 'perHour=5']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('limits: unknown field "perHour"');
    const zero = await cli(['server', 'update', 'm365', '--limit', 'messagesPerMinute=0']);
    expect(zero.code).toBe(2);
    expect(zero.stderr).toContain('limits.messagesPerMinute: expected a whole number of at least 1, or null (no limit)');
    expect((await cli(['server', 'show', 'm365', '--json'])).stdout).toContain('"messagesPerMinute": 10');
  });

  it('takes limits from mailgate.yaml: personal Gmail preset, its daily message limit switched off', async () => {
    const shown = await cli(['server', 'show', 'file-gmail', '--json']);
    expect(JSON.parse(shown.stdout)).toMatchObject({ limits: { messagesPerDay: null }, limitPreset: { name: 'gmail' }, effectiveLimits: { recipientsPerDay: 500 } });
    expect(JSON.parse(shown.stdout).effectiveLimits.messagesPerDay).toBeUndefined();
  });
});
