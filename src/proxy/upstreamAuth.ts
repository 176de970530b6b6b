// What the proxies need from the token core to log in upstream: the XOAUTH2 string, and token failures turned into words a mail client's user can act on.
import { ErrorCode, isMailgateError } from '../errors.js';
import type { TokenManager } from '../tokens/tokenManager.js';

/** Why the upstream login cannot happen; `unavailable` may pass by itself, `needs_sign_in` needs an admin. */
export type UpstreamLoginFailure = { kind: 'needs_sign_in' | 'unavailable' | 'refused'; message: string };

/**
 * SASL XOAUTH2 initial response, base64: `user=<user>^Aauth=Bearer <token>^A^A`.
 * @see https://developers.google.com/gmail/imap/xoauth2-protocol
 */
export function xoauth2Response(user: string, accessToken: string): string {
  return Buffer.from(`user=${user}\x01auth=Bearer ${accessToken}\x01\x01`, 'utf8').toString('base64');
}

/** A token for the credential (forced refresh after an upstream refusal), or the failure in a mail client's words. */
export async function upstreamToken(tokens: TokenManager, credential: string, forceRefresh: boolean): Promise<{ ok: true; token: string } | { ok: false; failure: UpstreamLoginFailure }> {
  try {
    const token = await tokens.getAccessToken(credential, { forceRefresh });
    return { ok: true, token: token.accessToken.reveal() };
  } catch (err) {
    return { ok: false, failure: tokenFailure(credential, err) };
  }
}

function tokenFailure(credential: string, err: unknown): UpstreamLoginFailure {
  if (isMailgateError(err)) {
    switch (err.code) {
      case ErrorCode.CREDENTIAL_NEEDS_REAUTHORIZATION:
      case ErrorCode.CREDENTIAL_NOT_CONNECTED:
        return { kind: 'needs_sign_in', message: `Mailgate needs a new sign-in for this mailbox: an admin must reconnect credential ${credential} in Mailgate` };
      case ErrorCode.CREDENTIAL_CLIENT_SECRET_INVALID:
        return { kind: 'needs_sign_in', message: `Mailgate's app registration for this mailbox was refused (client secret): an admin must update credential ${credential}` };
      case ErrorCode.CREDENTIAL_DISABLED:
        return { kind: 'refused', message: `credential ${credential} is disabled in Mailgate` };
      case ErrorCode.TOKEN_REQUEST_REFUSED:
        return { kind: 'refused', message: `the provider refused a token for credential ${credential}: an admin must check it in Mailgate` };
      case ErrorCode.TOKEN_REFRESH_FAILED:
        return { kind: 'unavailable', message: 'the sign-in provider cannot be reached just now: try again in a minute' };
      default:
        break;
    }
  }
  return { kind: 'unavailable', message: 'Mailgate cannot get a token for this mailbox just now: try again in a minute' };
}
