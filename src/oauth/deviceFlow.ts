// The device authorization grant (RFC 8628) for servers with no browser: show a code, poll the token endpoint, then accept the grant.
import * as oidc from 'openid-client';
import { ErrorCode, MailgateError } from '../errors.js';
import { settingsOf, type CredentialRepository } from '../credentials/repository.js';
import type { Logger } from '../log.js';
import { clientConfiguration } from './clientConfig.js';
import { classifyGrantError } from './grantErrors.js';
import { acceptUserGrant, type GrantOutcome } from './userGrant.js';

export interface DeviceCodePrompt {
  verificationUri: string;
  verificationUriComplete: string | undefined;
  userCode: string;
  expiresAt: string;
}

/**
 * Starts the device flow for `name`, tells `show` what the person must open and type, then polls until they
 * have signed in (or the code expires, or `signal` aborts).
 * @see https://www.rfc-editor.org/rfc/rfc8628#section-3.4
 */
export async function runDeviceFlow(repo: CredentialRepository, logger: Logger, name: string, show: (prompt: DeviceCodePrompt) => void, signal?: AbortSignal): Promise<GrantOutcome> {
  const row = await repo.get(name);
  const settings = settingsOf(row);
  if (settings.grant !== 'device_code') throw new MailgateError(ErrorCode.INPUT_INVALID, `credential ${name} uses the ${settings.grant} grant, not device_code`);
  const config = await clientConfiguration(settings, repo.clientAuthOf(row));
  let started: oidc.DeviceAuthorizationResponse;
  try {
    started = await oidc.initiateDeviceAuthorization(config, { scope: settings.scopes.join(' '), ...settings.authParams });
  } catch (err) {
    const failure = await classifyGrantError(err);
    throw new MailgateError(ErrorCode.TOKEN_REQUEST_REFUSED, `credential ${name}: the device authorization request failed: ${failure.message}`, { cause: err });
  }
  show({
    verificationUri: started.verification_uri,
    verificationUriComplete: started.verification_uri_complete,
    userCode: started.user_code,
    expiresAt: new Date(Date.now() + started.expires_in * 1000).toISOString(),
  });
  let response: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;
  try {
    response = await oidc.pollDeviceAuthorizationGrant(config, started, undefined, signal ? { signal } : undefined);
  } catch (err) {
    const failure = await classifyGrantError(err);
    const message = err instanceof oidc.ResponseBodyError && err.error === 'expired_token' ? 'the code expired before anyone signed in: run the command again' : err instanceof oidc.ResponseBodyError && err.error === 'access_denied' ? 'the sign-in was declined' : failure.message;
    await repo.recordError(name, `device sign-in failed: ${message}`);
    return { ok: false, code: ErrorCode.OAUTH_PROVIDER_ERROR, credential: name, title: 'Device sign-in failed', message };
  }
  return acceptUserGrant(repo, logger, await repo.get(name), config, response);
}
