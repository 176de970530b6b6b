// Proves the Microsoft cloud presets: --cloud picks the sign-in authority and the Exchange Online scopes of that cloud, and an authority alone keeps its cloud's scopes.
import { describe, expect, it } from 'vitest';
import { resolveCredentialInput } from './input.js';
import { microsoftCloudOf } from './presets.js';

const noDiscovery = async () => {
  throw new Error('discovery must not be called here');
};
const TENANT = '6a1b2c3d-0000-4000-8000-000000000001';
const ms = { name: 'gov', provider: 'microsoft', tenant: TENANT, clientId: 'app-id', email: 'alerts@example.gov', clientSecret: 's3cret', protocols: ['smtp', 'imap', 'pop3'] };

async function problemsOf(input: Record<string, unknown>): Promise<string> {
  const err = await resolveCredentialInput(input, noDiscovery).then(
    () => undefined,
    (e: unknown) => e as { code: string; message: string },
  );
  expect(err?.code).toBe('INPUT_INVALID');
  return err!.message;
}

describe('Microsoft cloud presets', () => {
  it('stores the US Government authority and the outlook.office365.us scopes for cloud usgov', async () => {
    const { settings } = await resolveCredentialInput({ ...ms, cloud: 'usgov' }, noDiscovery);
    expect(settings.authority).toBe('https://login.microsoftonline.us');
    expect(settings.tokenUrl).toBe(`https://login.microsoftonline.us/${TENANT}/oauth2/v2.0/token`);
    expect(settings.issuer).toBe(`https://login.microsoftonline.us/${TENANT}/v2.0`);
    expect(settings.scopes).toEqual([
      'https://outlook.office365.us/SMTP.Send',
      'https://outlook.office365.us/IMAP.AccessAsUser.All',
      'https://outlook.office365.us/POP.AccessAsUser.All',
      'openid',
      'email',
      'profile',
      'offline_access',
    ]);
  });

  it('stores the 21Vianet authority and partner.outlook.cn scopes for cloud china, and its app-only scope', async () => {
    const { settings } = await resolveCredentialInput({ ...ms, cloud: 'china', protocols: ['imap', 'graph'] }, noDiscovery);
    expect(settings.authority).toBe('https://login.partner.microsoftonline.cn');
    expect(settings.scopes.slice(0, 2)).toEqual(['https://partner.outlook.cn/IMAP.AccessAsUser.All', 'https://microsoftgraph.chinacloudapi.cn/Mail.Send']);
    const appOnly = await resolveCredentialInput({ ...ms, cloud: 'china', grant: 'client_credentials' }, noDiscovery);
    expect(appOnly.settings.scopes).toEqual(['https://partner.outlook.cn/.default']);
  });

  it('leaves the global cloud as the default: no authority stored, outlook.office.com scopes', async () => {
    const { settings } = await resolveCredentialInput({ ...ms, cloud: 'Global' }, noDiscovery);
    expect(settings.authority).toBeUndefined();
    expect(settings.scopes[0]).toBe('https://outlook.office.com/SMTP.Send');
  });

  it('keeps a cloud\'s scopes for its authority given alone (also the older China host), and for a proxy named with the cloud', async () => {
    const byAuthority = await resolveCredentialInput({ ...ms, authority: 'https://login.microsoftonline.us/' }, noDiscovery);
    expect(byAuthority.settings.authority).toBe('https://login.microsoftonline.us');
    expect(byAuthority.settings.scopes[0]).toBe('https://outlook.office365.us/SMTP.Send');
    expect(microsoftCloudOf('https://login.chinacloudapi.cn')).toBe('china');
    // the older China host signs in there, but its ID tokens name the cloud's own issuer host
    const olderChina = await resolveCredentialInput({ ...ms, authority: 'https://login.chinacloudapi.cn' }, noDiscovery);
    expect(olderChina.settings.tokenUrl).toBe(`https://login.chinacloudapi.cn/${TENANT}/oauth2/v2.0/token`);
    expect(olderChina.settings.issuer).toBe(`https://login.partner.microsoftonline.cn/${TENANT}/v2.0`);
    expect(olderChina.settings.scopes[0]).toBe('https://partner.outlook.cn/SMTP.Send');
    expect(microsoftCloudOf('https://login.example.net')).toBeUndefined();
    const proxied = await resolveCredentialInput({ ...ms, cloud: 'usgov', authority: 'https://entra-proxy.example.net' }, noDiscovery);
    expect(proxied.settings.authority).toBe('https://entra-proxy.example.net');
    expect(proxied.settings.scopes[0]).toBe('https://outlook.office365.us/SMTP.Send');
  });

  it('names an unknown cloud, a cloud on another provider, and an authority of another cloud', async () => {
    expect(await problemsOf({ ...ms, cloud: 'germany' })).toContain('cloud: unknown cloud "germany": expected global, usgov (US Government, GCC High) or china');
    expect(await problemsOf({ name: 'g', provider: 'google', cloud: 'usgov', clientId: 'c', clientSecret: 's', email: 'a@example.com' })).toContain('cloud: only Microsoft credentials have a cloud');
    expect(await problemsOf({ ...ms, cloud: 'china', authority: 'https://login.microsoftonline.us' })).toContain('authority: https://login.microsoftonline.us belongs to the usgov cloud, not china');
  });

  it('warns with the cloud\'s own SMTP scope and server when explicit scopes leave SMTP.Send out', async () => {
    const { warnings } = await resolveCredentialInput({ ...ms, cloud: 'usgov', scopes: ['https://outlook.office365.us/IMAP.AccessAsUser.All'] }, noDiscovery);
    expect(warnings.find((w) => w.code === 'SCOPE_SMTP_SEND_MISSING')?.message).toBe('the scopes lack https://outlook.office365.us/SMTP.Send, so sending through smtp.office365.us will be refused');
  });
});
