// The credential as Mailgate keeps it (stored record) and as it shows it (public view, never a secret).
import type { Grant, Protocol, Provider } from './presets.js';

/** configuration_error: the provider refuses the token request itself (invalid_scope, unsupported_grant_type, invalid_request), which signing in again cannot fix. */
export const CREDENTIAL_STATUSES = ['pending', 'active', 'refresh_failing', 'needs_reauthorization', 'client_secret_invalid', 'configuration_error', 'disabled'] as const;
export type CredentialStatus = (typeof CREDENTIAL_STATUSES)[number];

export interface CredentialWarning {
  code: string;
  message: string;
}

export interface SignedInIdentity {
  email: string | undefined;
  subject: string | undefined;
  name: string | undefined;
}

/** What the client authenticates with at the token endpoint; the material itself is sealed. */
export type ClientAuthKind = 'secret' | 'certificate' | 'service_account';

/** Settings an admin chooses; everything here but the client secret may be shown. */
export interface CredentialSettings {
  name: string;
  clientAuth: ClientAuthKind;
  provider: Provider;
  grant: Grant;
  tenant: string | undefined;
  clientId: string;
  email: string;
  protocols: Protocol[];
  scopes: string[];
  authority: string | undefined;
  authorizationUrl: string | undefined;
  tokenUrl: string;
  issuer: string | undefined;
  deviceAuthorizationUrl: string | undefined;
  revocationUrl: string | undefined;
  userinfoUrl: string | undefined;
  authParams: Record<string, string>;
  clientSecretExpiresAt: string | undefined;
}

/** What `credential show`, the API and the UI present: settings, state, and never a secret. */
export interface CredentialView extends CredentialSettings {
  hasClientSecret: boolean;
  hasRefreshToken: boolean;
  status: CredentialStatus;
  statusReason: string | undefined;
  statusChangedAt: string;
  expiresAt: string | undefined;
  grantedScopes: string[] | undefined;
  identity: SignedInIdentity | undefined;
  lastRefreshedAt: string | undefined;
  lastUsedAt: string | undefined;
  lastError: string | undefined;
  warnings: CredentialWarning[];
  redirectUri: string;
  createdAt: string;
  updatedAt: string;
}
