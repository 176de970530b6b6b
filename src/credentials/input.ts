// Validates credential input from the CLI and the API, fills provider presets, and names the field and the fix for each problem.
import { z } from 'zod';
import { ErrorCode, MailgateError } from '../errors.js';
import type { CredentialSettings, CredentialWarning } from './model.js';
import { isLoopbackHost } from '../loopback.js';
import { parseClientCertificate, parseServiceAccountKey } from '../oauth/assertions.js';
import { GRANTS, google, IDENTITY_SCOPES, microsoft, MICROSOFT_AUTHORITY, MICROSOFT_CLOUD_PRESETS, MICROSOFT_CLOUDS, microsoftCloudOf, PROTOCOLS, PROVIDERS, type Endpoints, type MicrosoftCloud, type Protocol, type Provider } from './presets.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const EMAIL = /^[^\s@<>()",;]+@[^\s@<>()",;]+\.[^\s@<>()",;]+$/;

/** The fields an admin may send; URLs left out are filled from the provider's preset. */
export const credentialInputSchema = z.strictObject({
  name: z.string(),
  provider: z.string(),
  grant: z.string().optional(),
  tenant: z.string().optional(),
  clientId: z.string().optional(),
  clientSecret: z.string().optional(),
  /** Google service account (domain-wide delegation): the JSON key file's text. */
  serviceAccountKey: z.string().optional(),
  /** Entra ID certificate credential: the certificate and its private key, PEM. */
  clientCertificate: z.string().optional(),
  email: z.string(),
  protocols: z.array(z.string()).optional(),
  scopes: z.array(z.string()).optional(),
  authority: z.string().optional(),
  /** Microsoft: the Entra ID cloud (global, usgov, china): its sign-in host and its Exchange Online scopes. */
  cloud: z.string().optional(),
  authorizationUrl: z.string().optional(),
  tokenUrl: z.string().optional(),
  issuer: z.string().optional(),
  deviceAuthorizationUrl: z.string().optional(),
  revocationUrl: z.string().optional(),
  userinfoUrl: z.string().optional(),
  authParams: z.record(z.string(), z.string()).optional(),
  clientSecretExpiresAt: z.string().optional(),
});
export type CredentialInput = z.infer<typeof credentialInputSchema>;

/**
 * PATCH: every field optional, the name not changeable; an empty clientSecret means "unchanged". No cloud: the stored
 * scopes would stay the old cloud's; a new authority with the protocols moves both (scopes follow the authority's cloud).
 */
export const credentialPatchSchema = credentialInputSchema.omit({ name: true, cloud: true }).partial();
export type CredentialPatch = z.infer<typeof credentialPatchSchema>;

export interface ResolvedCredential {
  settings: CredentialSettings;
  clientSecret: string | undefined;
  warnings: CredentialWarning[];
}

/** Parameters a user must never override: they carry the flow's own security values. */
const RESERVED_AUTH_PARAMS = new Set(['client_id', 'redirect_uri', 'response_type', 'state', 'code_challenge', 'code_challenge_method', 'nonce', 'scope']);

/**
 * Checks one credential's input and fills its preset. Throws INPUT_INVALID naming every bad field at once.
 * `discover` fetches an issuer's metadata when a generic credential names only its issuer.
 */
export async function resolveCredentialInput(raw: unknown, discover: (issuer: string) => Promise<Endpoints>): Promise<ResolvedCredential> {
  const shape = credentialInputSchema.safeParse(raw);
  if (!shape.success) throw invalid(shape.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.code === 'unrecognized_keys' ? `unknown field ${i.keys.map((k) => JSON.stringify(k)).join(', ')}` : i.message}`));
  const input = shape.data;
  const problems: string[] = [];
  const warnings: CredentialWarning[] = [];

  if (input.name.trim() === '') problems.push('name: required: a short name you choose, e.g. m365-alerts (letters, digits, ".", "_" or "-")');
  else if (!NAME.test(input.name)) problems.push(`name: expected 1-100 letters, digits, ".", "_" or "-" starting with a letter or digit, got ${JSON.stringify(input.name)}`);
  if (!(PROVIDERS as readonly string[]).includes(input.provider)) problems.push(`provider: unknown provider ${JSON.stringify(input.provider)}: expected microsoft, google or generic`);
  const provider = input.provider as Provider;
  // A service-account key or a certificate is app-only by nature: client credentials unless said otherwise.
  const grant = (input.grant ?? (input.serviceAccountKey || input.clientCertificate ? 'client_credentials' : 'authorization_code')) as CredentialSettings['grant'];
  let clientAuth: CredentialSettings['clientAuth'] = 'secret';
  let clientId = input.clientId?.trim() ?? '';
  let material = input.clientSecret || undefined;
  if (input.serviceAccountKey !== undefined) {
    clientAuth = 'service_account';
    material = input.serviceAccountKey;
    if (provider !== 'google' && provider !== 'generic') problems.push('serviceAccountKey: service accounts are Google\'s: use provider google');
    if (grant !== 'client_credentials') problems.push('serviceAccountKey: a service account signs in by itself: use grant client_credentials');
    if (input.clientSecret || input.clientCertificate) problems.push('serviceAccountKey: give a service-account key, a certificate or a client secret, not several');
    try {
      const key = parseServiceAccountKey(input.serviceAccountKey);
      if (!clientId) clientId = key.clientId ?? key.clientEmail;
    } catch (err) {
      problems.push(`serviceAccountKey: ${(err as Error).message}`);
    }
  } else if (input.clientCertificate !== undefined) {
    clientAuth = 'certificate';
    material = input.clientCertificate;
    if (grant !== 'client_credentials') problems.push('clientCertificate: certificate credentials are supported for app-only access: use grant client_credentials');
    if (input.clientSecret) problems.push('clientCertificate: give a certificate or a client secret, not both');
    try {
      parseClientCertificate(input.clientCertificate);
    } catch (err) {
      problems.push(`clientCertificate: ${(err as Error).message}`);
    }
  }
  if (!(GRANTS as readonly string[]).includes(grant)) problems.push(`grant: unknown grant ${JSON.stringify(input.grant)}: expected authorization_code, client_credentials or device_code`);
  if (clientId === '') problems.push('clientId: required: the Application (client) ID from the app registration');
  if (input.email.trim() === '') problems.push('email: required: the mailbox address that will sign in (e.g. alerts@example.com)');
  else if (!EMAIL.test(input.email)) problems.push(`email: expected the mailbox address that will sign in (e.g. alerts@example.com), got ${JSON.stringify(input.email)}`);
  const tenant = input.tenant?.trim() || undefined;
  if (provider === 'microsoft' && !tenant) problems.push('tenant: required for Microsoft: the Directory (tenant) ID from the app\'s Overview page in the Entra admin center (or "organizations")');
  if (provider !== 'microsoft' && tenant) problems.push('tenant: only Microsoft credentials have a tenant');
  const cloud = input.cloud?.trim().toLowerCase() || undefined;
  if (cloud !== undefined && !(MICROSOFT_CLOUDS as readonly string[]).includes(cloud)) problems.push(`cloud: unknown cloud ${JSON.stringify(input.cloud)}: expected global, usgov (US Government, GCC High) or china (operated by 21Vianet)`);
  else if (cloud !== undefined && provider !== 'microsoft') problems.push('cloud: only Microsoft credentials have a cloud (the Entra ID national clouds)');
  else if (cloud !== undefined && input.authority !== undefined && ![cloud, undefined].includes(microsoftCloudOf(input.authority))) {
    problems.push(`authority: ${input.authority} belongs to the ${microsoftCloudOf(input.authority)} cloud, not ${cloud}: give one of them (--authority is for a proxy or a test server in front of the cloud)`);
  }
  if (grant === 'client_credentials' && !material) problems.push('clientSecret: required for the client_credentials grant (app-only access authenticates the app itself): a client secret, a clientCertificate or (Google) a serviceAccountKey');

  const protocols = (input.protocols ?? ['smtp', 'imap']).map((p) => p.trim().toLowerCase());
  for (const p of protocols) if (!(PROTOCOLS as readonly string[]).includes(p)) problems.push(`protocols: unknown protocol ${JSON.stringify(p)}: expected smtp, imap, pop3, ews or graph`);

  for (const [key, value] of Object.entries(input.authParams ?? {})) {
    if (RESERVED_AUTH_PARAMS.has(key)) problems.push(`authParams: ${key} is set by Mailgate itself and cannot be overridden`);
    if (/[\r\n]/.test(value)) problems.push(`authParams: ${key} contains a line break`);
  }
  let clientSecretExpiresAt: string | undefined;
  if (input.clientSecretExpiresAt !== undefined) {
    const t = Date.parse(input.clientSecretExpiresAt);
    if (Number.isNaN(t)) problems.push(`clientSecretExpiresAt: expected a date such as 2027-05-31, got ${JSON.stringify(input.clientSecretExpiresAt)}`);
    else clientSecretExpiresAt = new Date(t).toISOString();
  }

  const urlFields = ['authority', 'authorizationUrl', 'tokenUrl', 'issuer', 'deviceAuthorizationUrl', 'revocationUrl', 'userinfoUrl'] as const;
  for (const field of urlFields) {
    const value = input[field];
    if (value !== undefined) {
      const problem = checkEndpointUrl(value);
      if (problem) problems.push(`${field}: ${problem}`);
    }
  }
  if (problems.length > 0) throw invalid(problems);

  // Endpoints: the preset, then whatever the admin pasted on top.
  let preset: Partial<Endpoints> = {};
  // A national cloud's sign-in host is stored as the authority; the global one stays the default (none stored).
  const authority = input.authority?.replace(/\/+$/, '') ?? (cloud !== undefined && cloud !== 'global' ? MICROSOFT_CLOUD_PRESETS[cloud as MicrosoftCloud].authority : undefined);
  // Scopes follow the cloud: named, or the one the authority belongs to (a proxy or test server: global).
  const microsoftCloud = (cloud as MicrosoftCloud | undefined) ?? microsoftCloudOf(authority) ?? 'global';
  if (provider === 'microsoft') preset = microsoft.endpoints(authority ?? MICROSOFT_AUTHORITY, tenant!);
  else if (provider === 'google') preset = google.endpoints;
  else if (input.issuer && !(input.tokenUrl && (input.authorizationUrl || grant !== 'authorization_code'))) preset = await discover(input.issuer.replace(/\/+$/, ''));
  const endpoints = {
    authorizationUrl: input.authorizationUrl ?? preset.authorizationUrl,
    tokenUrl: input.tokenUrl ?? preset.tokenUrl,
    issuer: input.issuer?.replace(/\/+$/, '') ?? preset.issuer,
    deviceAuthorizationUrl: input.deviceAuthorizationUrl ?? preset.deviceAuthorizationUrl,
    revocationUrl: input.revocationUrl ?? preset.revocationUrl,
    userinfoUrl: input.userinfoUrl ?? preset.userinfoUrl,
  };
  if (!endpoints.tokenUrl) problems.push('tokenUrl: required for a generic provider (paste the token URL, or give --issuer for discovery)');
  if (grant === 'authorization_code' && !endpoints.authorizationUrl) problems.push('authorizationUrl: required for the authorization_code grant with a generic provider (paste it, or give --issuer for discovery)');
  if (grant === 'device_code' && !endpoints.deviceAuthorizationUrl) problems.push('deviceAuthorizationUrl: required for the device_code grant with a generic provider');

  const scopes = resolveScopes(provider, grant, protocols as Protocol[], input.scopes, microsoftCloud);
  if (grant === 'device_code' && provider === 'google' && scopes.includes(google.mailScope)) {
    problems.push('grant: Google does not allow the Gmail scope (https://mail.google.com/) in the device code flow: use authorization_code (Connect in a browser) or a service account');
  }
  if (problems.length > 0) throw invalid(problems);

  if (provider === 'microsoft' && grant !== 'client_credentials' && protocols.includes('smtp') && !scopes.some((s) => /SMTP\.Send$/i.test(s))) {
    const cloudPreset = MICROSOFT_CLOUD_PRESETS[microsoftCloud];
    warnings.push({ code: 'SCOPE_SMTP_SEND_MISSING', message: `the scopes lack ${cloudPreset.outlook}/SMTP.Send, so sending through ${cloudPreset.servers.smtp.split(':')[0]} will be refused` });
  }
  if (clientSecretExpiresAt === undefined && clientAuth === 'secret' && input.clientSecret && provider === 'microsoft') {
    warnings.push({ code: 'CLIENT_SECRET_EXPIRY_UNKNOWN', message: 'set clientSecretExpiresAt (the "Expires" column under Certificates & secrets) so Mailgate warns 30, 7 and 1 days before the secret stops working' });
  }

  return {
    settings: {
      name: input.name,
      clientAuth,
      provider,
      grant,
      tenant,
      clientId,
      email: input.email.trim().toLowerCase(),
      protocols: protocols as Protocol[],
      scopes,
      authority,
      authorizationUrl: endpoints.authorizationUrl,
      tokenUrl: endpoints.tokenUrl!,
      issuer: endpoints.issuer,
      deviceAuthorizationUrl: endpoints.deviceAuthorizationUrl,
      revocationUrl: endpoints.revocationUrl,
      userinfoUrl: endpoints.userinfoUrl,
      authParams: input.authParams ?? {},
      clientSecretExpiresAt,
    },
    clientSecret: material,
    warnings,
  };
}

/** The scopes to ask for: explicit ones, or the preset's per protocol; plus identity and offline access where they apply. */
function resolveScopes(provider: Provider, grant: string, protocols: Protocol[], explicit: string[] | undefined, cloud: MicrosoftCloud): string[] {
  if (grant === 'client_credentials') {
    if (explicit?.length) return dedupe(explicit);
    return provider === 'microsoft' ? [MICROSOFT_CLOUD_PRESETS[cloud].appOnlyScope] : provider === 'google' ? [google.mailScope] : [];
  }
  const base = explicit?.length
    ? explicit
    : provider === 'microsoft'
      ? protocols.map((p) => microsoft.scopesFor(cloud)[p])
      : provider === 'google'
        ? [google.mailScope]
        : [];
  // Google refuses offline_access as a scope: it uses access_type=offline (in its authParams) instead.
  const offline = provider === 'google' ? [] : ['offline_access'];
  return dedupe([...base, ...IDENTITY_SCOPES, ...offline]);
}

function dedupe(values: string[]): string[] {
  return [...new Set(values.map((v) => v.trim()).filter((v) => v !== ''))];
}

/** https anywhere; plain http only to this machine (test servers, a local proxy). */
export function checkEndpointUrl(value: string): string | undefined {
  if (!URL.canParse(value)) return `expected a URL, got ${JSON.stringify(value)}`;
  const url = new URL(value);
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) return undefined;
  return `expected an https:// URL (plain http is allowed only on loopback), got ${JSON.stringify(value)}`;
}

function invalid(problems: string[]): MailgateError {
  return new MailgateError(ErrorCode.INPUT_INVALID, problems.join('; '), { details: { problems } });
}
