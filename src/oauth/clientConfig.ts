// Builds the openid-client Configuration (server endpoints + client authentication) for one credential.
import * as oidc from 'openid-client';
import type { CredentialSettings } from '../credentials/model.js';
import { isLoopbackHost } from '../credentials/input.js';
import { MICROSOFT_AUTHORITY } from '../credentials/presets.js';
import type { ClientAuthMaterial } from '../credentials/repository.js';
import { certificateClientAuth, parseClientCertificate } from './assertions.js';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Seconds a token request may take before it counts as a network failure (and is retried). */
const REQUEST_TIMEOUT_SECONDS = 15;

/**
 * The openid-client view of a credential. Microsoft tenants given by domain or as "organizations"/"common"
 * sign ID tokens with the tenant GUID as issuer, so those go through discovery, which openid-client
 * understands for Entra ID (it checks `iss` against the token's own `tid`).
 */
export async function clientConfiguration(settings: CredentialSettings, clientAuth: ClientAuthMaterial | undefined): Promise<oidc.Configuration> {
  const auth = !clientAuth
    ? oidc.None()
    : clientAuth.kind === 'certificate'
      ? certificateClientAuth(parseClientCertificate(clientAuth.material.reveal()))
      : oidc.ClientSecretBasic(clientAuth.material.reveal());
  const usesDefaultMicrosoftEndpoints =
    settings.provider === 'microsoft' && (settings.authority ?? MICROSOFT_AUTHORITY) === MICROSOFT_AUTHORITY && settings.tenant !== undefined && !GUID.test(settings.tenant);

  let config: oidc.Configuration;
  if (usesDefaultMicrosoftEndpoints) {
    config = await oidc.discovery(new URL(`${MICROSOFT_AUTHORITY}/${encodeURIComponent(settings.tenant!)}/v2.0`), settings.clientId, undefined, auth, { timeout: REQUEST_TIMEOUT_SECONDS });
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
