// Proves `mailgate credential add --cloud` as an operator runs it: usgov stores the US Government sign-in host and its
// Exchange Online scopes, and an unknown cloud is refused naming the choices.
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli, tempDir } from '../support/cli.js';

const TENANT = '3f6c1e2a-5b7d-4e8f-9a0b-1c2d3e4f5a6b';
let cwd: string;
const env = { GOV_SECRET: 'gov-client-secret-value' };

beforeAll(() => {
  cwd = tempDir();
});

const addArgs = (name: string, cloud: string) => ['credential', 'add', name, '--provider', 'microsoft', '--cloud', cloud, '--tenant', TENANT, '--client-id', 'gov-app', '--email', 'alerts@agency.example', '--protocols', 'smtp,imap', '--client-secret-env', 'GOV_SECRET'];

describe('mailgate credential add --cloud', () => {
  it('stores the usgov authority, endpoints and outlook.office365.us scopes', async () => {
    const added = await runCli(addArgs('gcc-high', 'usgov'), { cwd, env, timeoutMs: 60_000 });
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    const shown = await runCli(['credential', 'show', 'gcc-high', '--json'], { cwd, env, timeoutMs: 60_000 });
    expect(shown.code).toBe(0);
    const view = JSON.parse(shown.stdout);
    expect(view).toMatchObject({
      authority: 'https://login.microsoftonline.us',
      authorizationUrl: `https://login.microsoftonline.us/${TENANT}/oauth2/v2.0/authorize`,
      issuer: `https://login.microsoftonline.us/${TENANT}/v2.0`,
    });
    expect(view.scopes).toEqual(expect.arrayContaining(['https://outlook.office365.us/SMTP.Send', 'https://outlook.office365.us/IMAP.AccessAsUser.All', 'offline_access']));
    expect(shown.stdout + added.stdout).not.toContain(env.GOV_SECRET);
  });

  it('refuses an unknown cloud, naming the ones there are', async () => {
    const refused = await runCli(addArgs('moon', 'moon'), { cwd, env, timeoutMs: 60_000 });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('cloud: unknown cloud "moon": expected global, usgov (US Government, GCC High) or china (operated by 21Vianet)');
  });
});
