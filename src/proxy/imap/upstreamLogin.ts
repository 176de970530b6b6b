// Logs a proxy account in at its IMAP server with XOAUTH2: one forced token refresh after a refusal, and every failure as the NO a mail client shows.
import type net from 'node:net';
import type { Logger } from '../../log.js';
import type { ResolvedServer } from '../../servers/model.js';
import type { Services } from '../../services.js';
import { UpstreamError } from '../upstream.js';
import { upstreamToken } from '../upstreamAuth.js';
import { show, UpstreamImap } from './upstreamSession.js';

export type UpstreamLogin =
  /** `capabilities`: the server's list after login, for the client's `OK [CAPABILITY …]`. */
  | { ok: true; socket: net.Socket; leftover: Buffer; capabilities: string[] }
  /** `reply` is the client's NO without its tag (`NO [CODE] text`); `detail` goes to the log (the server's words, never a token). */
  | { ok: false; reply: string; detail: string; outcome: 'upstream_failed' };

const fail = (reply: string, detail: string = reply): UpstreamLogin => ({ ok: false, reply, detail, outcome: 'upstream_failed' });

/** The account's server, resolved, or the NO that says what an admin must fix. */
export async function accountServer(services: Services, account: { name: string; server: string }): Promise<{ ok: true; server: ResolvedServer; credential: string; user: string } | { ok: false; reply: string }> {
  const row = await services.serverRepo.find(account.server);
  if (!row) return { ok: false, reply: `NO [CONTACTADMIN] The mail server of this account (${account.server}) no longer exists in Mailgate: an admin must fix proxy account ${account.name}` };
  if (row.protocol !== 'imap') return { ok: false, reply: `NO [CONTACTADMIN] This account reads mail from a ${row.protocol.toUpperCase()} server: use Mailgate's ${row.protocol.toUpperCase()} proxy for it` };
  const server = services.serverRepo.resolve(row);
  if (server.auth.type !== 'oauth2') return { ok: false, reply: `NO [CONTACTADMIN] Server ${server.name} has no OAuth2 credential in Mailgate: an admin must give it one` };
  if (!server.username) return { ok: false, reply: `NO [CONTACTADMIN] Server ${server.name} has no username in Mailgate: an admin must set it to the mailbox address` };
  return { ok: true, server, credential: server.auth.credential, user: server.username };
}

/** Where a login reports the capabilities the server listed (the proxy's capability cache). */
export interface CapabilitySink {
  learned(server: ResolvedServer, capabilities: string[]): void;
}

export async function loginUpstream(services: Services, account: { name: string; server: string }, cache: CapabilitySink, logger: Logger): Promise<UpstreamLogin> {
  const resolved = await accountServer(services, account);
  if (!resolved.ok) return fail(resolved.reply);
  const { server, credential, user } = resolved;

  let refusal = '';
  for (const forceRefresh of [false, true]) {
    const token = await upstreamToken(services.tokens, credential, forceRefresh);
    if (!token.ok) {
      const code = token.failure.kind === 'unavailable' ? 'UNAVAILABLE' : 'CONTACTADMIN';
      return fail(`NO [${code}] ${capitalize(token.failure.message)}`);
    }
    let upstream: UpstreamImap | undefined;
    try {
      upstream = await UpstreamImap.open(server);
      cache.learned(server, await upstream.capabilityList());
      const outcome = await upstream.authenticateXOAuth2(user, token.token);
      if (outcome.ok) {
        // Dovecot says its post-login capabilities in the OK; a server that does not is asked.
        const capabilities = outcome.capabilities ?? (await afterLoginCapabilities(upstream));
        const { socket, leftover } = upstream.detach();
        return { ok: true, socket, leftover, capabilities };
      }
      upstream.logout();
      const detail = `${server.name} refused XOAUTH2: ${show(outcome.reply.line)}${outcome.challenge ? ` (XOAUTH2 status ${outcome.challenge})` : ''}`;
      // RFC 5530: the server is busy or down; a fresh token would not help.
      if (outcome.reply.code && /^(UNAVAILABLE|INUSE|LIMIT)$/i.test(outcome.reply.code)) {
        return fail(`NO [${outcome.reply.code.toUpperCase()}] ${show(outcome.reply.text) || 'The mail server refused the login for now'}`, detail);
      }
      refusal = detail;
      if (!forceRefresh) logger.info({ server: server.name, credential, refusal: detail }, 'IMAP server refused the token: refreshing once and retrying');
    } catch (err) {
      upstream?.close();
      if (!(err instanceof UpstreamError)) throw err;
      return fail('NO [UNAVAILABLE] The mail server cannot be reached just now: try again in a minute', `${server.name}: ${err.message}`);
    }
  }
  return fail(`NO [AUTHENTICATIONFAILED] The mail server refused Mailgate's token for this mailbox, also after a refresh: an admin must check credential ${credential} in Mailgate`, refusal);
}

async function afterLoginCapabilities(upstream: UpstreamImap): Promise<string[]> {
  upstream.capabilities = undefined;
  return upstream.capabilityList();
}

const capitalize = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);
