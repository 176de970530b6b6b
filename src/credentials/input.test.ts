// Proves credential validation and provider presets: each bad field is named with its fix, presets fill endpoints and scopes.
import { describe, expect, it } from 'vitest';
import { resolveCredentialInput } from './input.js';

const noDiscovery = async () => {
  throw new Error('discovery must not be called here');
};

async function problemsOf(input: Record<string, unknown>): Promise<string> {
  try {
    await resolveCredentialInput(input, noDiscovery);
  } catch (err) {
    expect((err as { code: string }).code).toBe('INPUT_INVALID');
    return (err as Error).message;
  }
  throw new Error('expected INPUT_INVALID');
}

const ms = { name: 'm365', provider: 'microsoft', tenant: '6a1b2c3d-0000-4000-8000-000000000001', clientId: 'app-id', email: 'Alerts@Example.com', clientSecret: 's3cret' };

describe('resolveCredentialInput', () => {
  it('fills the Microsoft preset: tenant URLs, Outlook scopes per protocol, identity scopes and offline_access', async () => {
    const { settings, clientSecret, warnings } = await resolveCredentialInput({ ...ms, protocols: ['smtp', 'imap', 'pop3'] }, noDiscovery);
    expect(settings.authorizationUrl).toBe('https://login.microsoftonline.com/6a1b2c3d-0000-4000-8000-000000000001/oauth2/v2.0/authorize');
    expect(settings.tokenUrl).toBe('https://login.microsoftonline.com/6a1b2c3d-0000-4000-8000-000000000001/oauth2/v2.0/token');
    expect(settings.issuer).toBe('https://login.microsoftonline.com/6a1b2c3d-0000-4000-8000-000000000001/v2.0');
    expect(settings.scopes).toEqual([
      'https://outlook.office.com/SMTP.Send',
      'https://outlook.office.com/IMAP.AccessAsUser.All',
      'https://outlook.office.com/POP.AccessAsUser.All',
      'openid',
      'email',
      'profile',
      'offline_access',
    ]);
    expect(settings.email).toBe('alerts@example.com');
    expect(clientSecret).toBe('s3cret');
    expect(warnings.map((w) => w.code)).toContain('CLIENT_SECRET_EXPIRY_UNKNOWN');
  });

  it('fills the Google preset without offline_access as a scope (Google uses access_type=offline)', async () => {
    const { settings } = await resolveCredentialInput({ name: 'gmail', provider: 'google', clientId: 'x.apps.googleusercontent.com', email: 'me@gmail.com' }, noDiscovery);
    expect(settings.authorizationUrl).toBe('https://accounts.google.com/o/oauth2/v2/auth');
    expect(settings.tokenUrl).toBe('https://oauth2.googleapis.com/token');
    expect(settings.revocationUrl).toBe('https://oauth2.googleapis.com/revoke');
    expect(settings.scopes).toEqual(['https://mail.google.com/', 'openid', 'email', 'profile']);
  });

  it('uses the app-only .default scope for Microsoft client credentials', async () => {
    const { settings } = await resolveCredentialInput({ ...ms, grant: 'client_credentials' }, noDiscovery);
    expect(settings.scopes).toEqual(['https://outlook.office365.com/.default']);
  });

  it('lets tests and proxies override endpoints, but only with https or loopback http', async () => {
    const { settings } = await resolveCredentialInput({ ...ms, authority: 'http://127.0.0.1:9999/' }, noDiscovery);
    expect(settings.tokenUrl).toBe('http://127.0.0.1:9999/6a1b2c3d-0000-4000-8000-000000000001/oauth2/v2.0/token');
    expect(await problemsOf({ ...ms, tokenUrl: 'http://login.example.com/token' })).toContain('tokenUrl: expected an https:// URL (plain http is allowed only on loopback)');
  });

  it('names each bad field with its fix, all at once', async () => {
    const text = await problemsOf({ name: 'bad name', provider: 'yahoo', clientId: ' ', email: 'not-an-address' });
    expect(text).toContain('name: expected 1-100 letters');
    expect(text).toContain('provider: unknown provider "yahoo": expected microsoft, google or generic');
    expect(text).toContain('clientId: required');
    expect(text).toContain('email: expected the mailbox address');
  });

  it('says "required" for an empty name or mailbox instead of quoting an empty value', async () => {
    const text = await problemsOf({ name: '', provider: 'google', clientId: 'x', email: ' ' });
    expect(text).toContain('name: required: a short name you choose');
    expect(text).toContain('email: required: the mailbox address that will sign in');
    expect(text).not.toContain('got ""');
  });

  it('requires a tenant for Microsoft and a secret for client credentials', async () => {
    expect(await problemsOf({ ...ms, tenant: undefined })).toContain("tenant: required for Microsoft: the Directory (tenant) ID");
    expect(await problemsOf({ ...ms, grant: 'client_credentials', clientSecret: undefined })).toContain('clientSecret: required for the client_credentials grant');
  });

  it('requires pasted URLs (or an issuer) for a generic provider', async () => {
    const text = await problemsOf({ name: 'g', provider: 'generic', clientId: 'c', email: 'a@b.example' });
    expect(text).toContain('tokenUrl: required for a generic provider');
    expect(text).toContain('authorizationUrl: required for the authorization_code grant');
  });

  it('refuses the device code flow for Gmail scopes up front', async () => {
    expect(await problemsOf({ name: 'g', provider: 'google', grant: 'device_code', clientId: 'c', email: 'a@gmail.com' })).toContain('Google does not allow the Gmail scope');
  });

  it('refuses authorization parameters that carry the flow\'s own security values', async () => {
    expect(await problemsOf({ ...ms, authParams: { state: 'x' } })).toContain('authParams: state is set by Mailgate itself');
    const { settings } = await resolveCredentialInput({ ...ms, authParams: { prompt: 'consent', domain_hint: 'example.com' } }, noDiscovery);
    expect(settings.authParams).toEqual({ prompt: 'consent', domain_hint: 'example.com' });
  });

  it('rejects unknown fields instead of ignoring them', async () => {
    expect(await problemsOf({ ...ms, clientSecretValue: 'x' })).toContain('unknown field "clientSecretValue"');
  });
});
