// Credential operations shared by the CLI and the API: add, change, remove, list and show, always through validation.
import * as oidc from 'openid-client';
import { ErrorCode, MailgateError } from '../errors.js';
import { credentialPatchSchema, resolveCredentialInput, type CredentialInput } from './input.js';
import { isLoopbackHost } from '../loopback.js';
import type { CredentialSettings, CredentialView } from './model.js';
import { google, microsoft, MICROSOFT_AUTHORITY, type Endpoints } from './presets.js';
import { settingsOf, type CredentialRepository } from './repository.js';

/** Changing any of these means the stored grant belongs to something else: the tokens are dropped. */
const IDENTITY_FIELDS = ['provider', 'grant', 'tenant', 'clientId', 'email', 'authority', 'tokenUrl', 'issuer', 'clientAuth'] as const;

export class CredentialService {
  constructor(
    private readonly repo: CredentialRepository,
    readonly redirectUri: string,
    /** Told when a credential's settings change or it goes, so caches of its tokens drop it at once. */
    private readonly onChange: (name: string) => void = () => undefined,
  ) {}

  async add(raw: unknown): Promise<CredentialView> {
    const { settings, clientSecret, warnings } = await resolveCredentialInput(raw, discoverEndpoints);
    await this.repo.insert(settings, clientSecret, warnings);
    return this.show(settings.name);
  }

  async update(name: string, rawPatch: unknown): Promise<CredentialView> {
    const parsed = credentialPatchSchema.safeParse(rawPatch);
    if (!parsed.success) {
      throw new MailgateError(ErrorCode.INPUT_INVALID, parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.code === 'unrecognized_keys' ? `unknown field ${i.keys.join(', ')}` : i.message}`).join('; '));
    }
    const patch = parsed.data;
    const row = await this.repo.get(name);
    const before = settingsOf(row);
    // An empty secret in a form means "leave it as it is".
    const { clientSecret, ...rest } = patch;
    const merged: CredentialInput = { ...inputOf(before), ...rest, name };
    if (patch.provider !== undefined || patch.tenant !== undefined || patch.authority !== undefined) {
      // The preset's URLs follow the new provider/tenant unless pasted explicitly in this patch.
      for (const field of ['authorizationUrl', 'tokenUrl', 'issuer', 'deviceAuthorizationUrl', 'revocationUrl', 'userinfoUrl'] as const) {
        if (rest[field] === undefined) delete merged[field];
      }
    }
    if (patch.protocols !== undefined && patch.scopes === undefined) delete merged.scopes;
    const { serviceAccountKey, clientCertificate } = patch;
    const newMaterial = clientSecret || serviceAccountKey || clientCertificate;
    const materialField = serviceAccountKey ? 'serviceAccountKey' : clientCertificate ? 'clientCertificate' : clientSecret ? 'clientSecret' : before.clientAuth === 'service_account' ? 'serviceAccountKey' : before.clientAuth === 'certificate' ? 'clientCertificate' : 'clientSecret';
    const material = newMaterial || this.repo.clientSecretOf(row)?.reveal();
    delete merged.serviceAccountKey;
    delete merged.clientCertificate;
    const resolved = await resolveCredentialInput({ ...merged, ...(material ? { [materialField]: material } : {}) }, discoverEndpoints);
    const dropTokens = IDENTITY_FIELDS.some((f) => JSON.stringify(resolved.settings[f]) !== JSON.stringify(before[f]));
    await this.repo.updateSettings(resolved.settings, newMaterial || undefined, resolved.warnings, dropTokens);
    this.onChange(name);
    if (newMaterial && !dropTokens && row.status === 'client_secret_invalid') {
      // The fix for a refused client secret is a new one: let the next refresh try it.
      await this.repo.setStatus(name, { status: row.refresh_token || row.grant_type === 'client_credentials' ? 'active' : 'pending', reason: 'client secret replaced', failureCount: 0, nextAttemptAt: null });
    }
    return this.show(name);
  }

  async remove(name: string): Promise<void> {
    await this.repo.remove(name);
    this.onChange(name);
  }

  async list(): Promise<CredentialView[]> {
    return (await this.repo.list()).map((row) => this.repo.toView(row, this.redirectUri));
  }

  async show(name: string): Promise<CredentialView> {
    return this.repo.toView(await this.repo.get(name), this.redirectUri);
  }

  events(name: string) {
    return this.repo.events(name);
  }
}

/** Settings back to input form, leaving out URLs that merely repeat the preset (so a new tenant moves them). */
function inputOf(s: CredentialSettings): CredentialInput {
  let preset: Partial<Endpoints> = {};
  if (s.provider === 'microsoft' && s.tenant) preset = microsoft.endpoints(s.authority ?? MICROSOFT_AUTHORITY, s.tenant);
  if (s.provider === 'google') preset = google.endpoints;
  const own = <K extends keyof Endpoints>(key: K) => (s[key] !== undefined && s[key] !== preset[key] ? { [key]: s[key] } : {});
  return {
    name: s.name,
    provider: s.provider,
    grant: s.grant,
    ...(s.tenant ? { tenant: s.tenant } : {}),
    clientId: s.clientId,
    email: s.email,
    protocols: s.protocols,
    scopes: s.scopes,
    ...(s.authority ? { authority: s.authority } : {}),
    ...own('authorizationUrl'),
    ...own('tokenUrl'),
    ...own('issuer'),
    ...own('deviceAuthorizationUrl'),
    ...own('revocationUrl'),
    ...own('userinfoUrl'),
    authParams: s.authParams,
    ...(s.clientSecretExpiresAt ? { clientSecretExpiresAt: s.clientSecretExpiresAt } : {}),
  };
}

/** OpenID Connect / RFC 8414 discovery for a generic provider given by its issuer. */
export async function discoverEndpoints(issuer: string): Promise<Endpoints> {
  const url = new URL(issuer);
  try {
    const config = await oidc.discovery(url, 'mailgate-discovery', undefined, undefined, {
      timeout: 15,
      ...(url.protocol === 'http:' && isLoopbackHost(url.hostname) ? { execute: [oidc.allowInsecureRequests] } : {}),
    });
    const m = config.serverMetadata();
    return {
      issuer: m.issuer,
      tokenUrl: m.token_endpoint ?? '',
      ...(m.authorization_endpoint ? { authorizationUrl: m.authorization_endpoint } : {}),
      ...(m.device_authorization_endpoint ? { deviceAuthorizationUrl: m.device_authorization_endpoint } : {}),
      ...(m.revocation_endpoint ? { revocationUrl: m.revocation_endpoint } : {}),
      ...(m.userinfo_endpoint ? { userinfoUrl: m.userinfo_endpoint } : {}),
    };
  } catch (cause) {
    throw new MailgateError(ErrorCode.INPUT_INVALID, `issuer: discovery at ${issuer}/.well-known/openid-configuration failed (${(cause as Error).message}): check the issuer URL, or paste --authorization-url and --token-url instead`, { cause });
  }
}
