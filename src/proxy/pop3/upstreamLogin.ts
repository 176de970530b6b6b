// Logs a proxy account in at its POP3 server with XOAUTH2: one forced token refresh after a refusal, and every failure as the -ERR line a mail client shows.
import type net from 'node:net';
import type { Logger } from '../../log.js';
import type { Services } from '../../services.js';
import { showLine } from '../../inbound/pop3/wire.js';
import { UpstreamError } from '../upstream.js';
import { upstreamToken } from '../upstreamAuth.js';
import { UpstreamPop3 } from './upstreamSession.js';

export type UpstreamLogin =
  | { ok: true; socket: net.Socket; leftover: Buffer; reply: string }
  /** `reply` goes to the client as is; `detail` to the log (the server's words, never a token). */
  | { ok: false; reply: string; detail: string };

/**
 * RFC 3206 codes of an upstream refusal that are not about the token: the mailbox is busy (IN-USE), logins come too
 * often (LOGIN-DELAY), the server has a problem (SYS/*). The client gets them as the server said them, and a fresh
 * token would not help, so none is fetched.
 */
const PASSED_CODES = new Set(['IN-USE', 'LOGIN-DELAY', 'SYS/TEMP', 'SYS/PERM']);

const fail = (reply: string, detail: string = reply): UpstreamLogin => ({ ok: false, reply, detail });

export async function loginUpstream(services: Services, account: { name: string; server: string }, logger: Logger): Promise<UpstreamLogin> {
  const row = await services.serverRepo.find(account.server);
  if (!row) return fail(`-ERR [SYS/PERM] The mail server of this account (${account.server}) no longer exists in Mailgate: an admin must fix proxy account ${account.name}`);
  if (row.protocol !== 'pop3') return fail(`-ERR [SYS/PERM] This account reads mail from an ${row.protocol.toUpperCase()} server: use Mailgate's ${row.protocol.toUpperCase()} proxy for it`);
  const server = services.serverRepo.resolve(row);
  if (server.auth.type !== 'oauth2') return fail(`-ERR [SYS/PERM] Server ${server.name} has no OAuth2 credential in Mailgate: an admin must give it one`);
  if (!server.username) return fail(`-ERR [SYS/PERM] Server ${server.name} has no username in Mailgate: an admin must set it to the mailbox address`);
  const credential = server.auth.credential;

  let refusal = '';
  for (const forceRefresh of [false, true]) {
    const token = await upstreamToken(services.tokens, credential, forceRefresh);
    if (!token.ok) {
      const code = token.failure.kind === 'unavailable' ? 'SYS/TEMP' : 'SYS/PERM';
      return fail(`-ERR [${code}] ${capitalize(token.failure.message)}`);
    }
    let upstream: UpstreamPop3 | undefined;
    try {
      upstream = await UpstreamPop3.open(server);
      const outcome = await upstream.authXOAuth2(server.username, token.token);
      if (outcome.ok) {
        const { socket, leftover } = upstream.detach();
        return { ok: true, socket, leftover, reply: outcome.reply };
      }
      upstream.quit();
      const said = outcome.status ? `-ERR${outcome.status.responseCode ? ` [${outcome.status.responseCode}]` : ''} ${outcome.status.text}` : showLine(outcome.reply);
      const detail = `${server.name} refused XOAUTH2: ${showLine(said)}${outcome.xoauth2 ? ` (XOAUTH2 status ${outcome.xoauth2.raw})` : ''}`;
      if (outcome.status?.responseCode && PASSED_CODES.has(outcome.status.responseCode)) {
        return fail(`-ERR [${outcome.status.responseCode}] ${showLine(outcome.status.text) || 'The mail server refused the login for now'}`, detail);
      }
      refusal = detail;
      if (!forceRefresh) logger.info({ server: server.name, credential, refusal: detail }, 'POP3 server refused the token: refreshing once and retrying');
    } catch (err) {
      upstream?.close();
      if (!(err instanceof UpstreamError)) throw err;
      return fail('-ERR [SYS/TEMP] The mail server cannot be reached just now: try again in a minute', `${server.name}: ${err.message}`);
    }
  }
  return fail(`-ERR [AUTH] The mail server refused Mailgate's token for this mailbox, also after a refresh: an admin must check credential ${credential} in Mailgate`, refusal);
}

const capitalize = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);
