// Builds the openid-client Configuration (server endpoints + client authentication) for one credential.
import * as oidc from 'openid-client';
import { ErrorCode, MailgateError } from '../errors.js';
import type { CredentialSettings } from '../credentials/model.js';
import { isLoopbackHost } from '../loopback.js';
import { microsoft, MICROSOFT_AUTHORITY } from '../credentials/presets.js';
import type { ClientAuthMaterial } from '../credentials/repository.js';
import { certificateClientAuth, parseClientCertificate } from './assertions.js';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Seconds a token request may take before it counts as a network failure (and is retried). */
const REQUEST_TIMEOUT_SECONDS = 15;

/**
 * The openid-client view of a credential. Microsoft credentials on the preset endpoints whose ID-token issuer cannot be
 * written down in advance go through the tenant's discovery document at their authority, whatever the authority: a
 * tenant given by domain (its issuer names the tenant GUID) and "organizations"/"common" (Entra's `{tenantid}`
 * template, filled from each token's own `tid`).
 */
export async function clientConfiguration(settings: CredentialSettings, clientAuth: ClientAuthMaterial | undefined): Promise<oidc.Configuration> {
  const auth = !clientAuth
    ? oidc.None()
    : clientAuth.kind === 'certificate'
      ? certificateClientAuth(parseClientCertificate(clientAuth.material.reveal()))
      : oidc.ClientSecretBasic(clientAuth.material.reveal());

  let config: oidc.Configuration;
  const entraAuthority = entraDiscoveryAuthority(settings);
  if (entraAuthority !== undefined) {
    config = await discoverEntraTenant(entraAuthority, settings.tenant!, settings.clientId, auth);
  } else {
    const server: oidc.ServerMetadata = {
      issuer: settings.issuer ?? new URL(settings.tokenUrl).origin,
      token_endpoint: settings.tokenUrl,
      ...(settings.authorizationUrl ? { authorization_endpoint: settings.authorizationUrl } : {}),
      ...(settings.deviceAuthorizationUrl ? { device_authorization_endpoint: settings.deviceAuthorizationUrl } : {}),
      ...(settings.revocationUrl ? { revocation_endpoint: settings.revocationUrl } : {}),
      ...(settings.userinfoUrl ? { userinfo_endpoint: settings.userinfoUrl } : {}),
    };
    config = new oidc.Configuration(server, settings.clientId, undefined, auth);
  }
  config.timeout = REQUEST_TIMEOUT_SECONDS;
  const endpoints = [settings.tokenUrl, settings.authorizationUrl, settings.deviceAuthorizationUrl, settings.revocationUrl, settings.userinfoUrl];
  // Plain http is accepted at input only for loopback (test servers, a local proxy); allow exactly that here.
  if (endpoints.some((u) => u !== undefined && new URL(u).protocol === 'http:' && isLoopbackHost(new URL(u).hostname))) {
    oidc.allowInsecureRequests(config);
  }
  return config;
}

/**
 * The authority to discover a Microsoft credential's tenant at, or undefined when its settings say everything: endpoints
 * or an issuer pasted over the preset are used as given, and a tenant GUID has the preset issuer `{authority}/{GUID}/v2.0`
 * (login.chinacloudapi.cn's: login.partner.microsoftonline.cn, see presets.ts; a proxy that forwards Entra's tokens needs
 * --issuer, and the refusal of a first ID token says so and names the issuer it carried). Without discovery, an app-only
 * credential behind a proxy that serves only the token endpoint keeps working.
 */
function entraDiscoveryAuthority(settings: CredentialSettings): string | undefined {
  if (settings.provider !== 'microsoft' || settings.tenant === undefined) return undefined;
  const authority = (settings.authority ?? MICROSOFT_AUTHORITY).replace(/\/+$/, '');
  const preset = microsoft.endpoints(authority, settings.tenant);
  const asPreset =
    (settings.issuer === undefined || settings.issuer === preset.issuer) &&
    settings.tokenUrl === preset.tokenUrl &&
    (settings.authorizationUrl === undefined || settings.authorizationUrl === preset.authorizationUrl) &&
    (settings.deviceAuthorizationUrl === undefined || settings.deviceAuthorizationUrl === preset.deviceAuthorizationUrl);
  return asPreset && !GUID.test(settings.tenant) ? authority : undefined;
}

/**
 * Discovery of `{authority}/{tenant}/v2.0`. Entra ID's document names the issuer `{authority}/{tenantid}/v2.0` for
 * "organizations"/"common", and openid-client then checks each ID token's `iss` against that template filled with the
 * token's own `tid` — but it recognises Entra ID only by the origin https://login.microsoftonline.com (handleEntraId in
 * openid-client 6). National clouds (login.microsoftonline.us, login.partner.microsoftonline.cn) and proxies serve the
 * same template, so discovery is asked of that origin and its one request is sent to the credential's authority; every
 * later request goes to the endpoints the document names. Tests against an Entra-shaped oidc-provider on loopback
 * (test/oauth/entraAuthority.test.ts) fail if a new openid-client stops doing this.
 * @see https://learn.microsoft.com/entra/identity-platform/access-tokens#validate-the-issuer
 */
async function discoverEntraTenant(authority: string, tenant: string, clientId: string, auth: oidc.ClientAuth): Promise<oidc.Configuration> {
  const tenantPath = `/${encodeURIComponent(tenant)}/v2.0`;
  const asked = `${MICROSOFT_AUTHORITY}${tenantPath}/.well-known/openid-configuration`;
  const actual = `${authority}${tenantPath}/.well-known/openid-configuration`;
  const fetchFromAuthority: oidc.CustomFetch = (url, options) => fetch(url === asked ? actual : url, options);
  try {
    return await oidc.discovery(new URL(`${MICROSOFT_AUTHORITY}${tenantPath}`), clientId, undefined, auth, {
      timeout: REQUEST_TIMEOUT_SECONDS,
      ...(authority === MICROSOFT_AUTHORITY ? {} : { [oidc.customFetch]: fetchFromAuthority }),
    });
  } catch (err) {
    throw await unknownTenant(err, authority, tenant);
  }
}

/**
 * Entra ID answers discovery for a tenant it does not know with 400 and AADSTS90002 — also when the tenant exists in
 * another cloud. That is the credential's setting, not a passing failure: TOKEN_REQUEST_REFUSED says what to change.
 * Anything else (no answer, 5xx) is passed on as it came, to be retried.
 */
async function unknownTenant(err: unknown, authority: string, tenant: string): Promise<unknown> {
  const response = (err as { cause?: unknown })?.cause;
  if (!(err instanceof oidc.ClientError) || !(response instanceof Response) || response.status < 400 || response.status >= 500) return err;
  let codes: number[] = [];
  try {
    const body = (await response.clone().json()) as { error_codes?: unknown };
    codes = Array.isArray(body.error_codes) ? body.error_codes.filter((c): c is number => typeof c === 'number') : [];
  } catch {
    codes = [];
  }
  const which = codes.includes(90002) ? ' (AADSTS90002)' : ` (HTTP ${response.status})`;
  return new MailgateError(
    ErrorCode.TOKEN_REQUEST_REFUSED,
    `Entra ID at ${authority} does not know the tenant ${JSON.stringify(tenant)}${which}: check --tenant (the Directory (tenant) ID, a verified domain, or "organizations"); a tenant in a national cloud needs --cloud usgov or --cloud china`,
    { cause: err, details: { authority, tenant, microsoftCodes: codes } },
  );
}
