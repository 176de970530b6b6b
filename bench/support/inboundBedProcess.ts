// Bench helper process: the test bed (oidc-provider + Dovecot, one process, as the bed wants it) for the inbound bench.
// Fills alice's and bob's mailboxes over LMTP with the same messages (one folder per bench round), hands out tokens,
// and answers a small control API: Dovecot's IMAP sessions (doveadm who) and, on request, higher connection limits.
// Args: <messages per folder> <alice's folders, comma-separated> <bob's folders, comma-separated>
import { execFile } from 'node:child_process';
import { appendFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { ImapFlow } from 'imapflow';
import { startAuthServer } from '../../test/testbed/authServer.js';
import { startMailServer, type MailServer } from '../../test/testbed/mailServer.js';
import { getFreePort } from '../../test/testbed/ports.js';
import { obtainTokens } from '../../test/testbed/providerLogin.js';
import { inboundMessage } from './inboundMessage.js';

const perFolder = Number(process.argv[2] ?? 1000);
const aliceFolders = (process.argv[3] ?? 'A').split(',');
const bobFolders = (process.argv[4] ?? 'B').split(',');
const DELIVERY_CONCURRENCY = 16;
const run = promisify(execFile);

const auth = await startAuthServer({ accessTokenTtl: 3600 });
const client = auth.addClient({ clientId: 'bench-inbound', clientSecret: 'bench-inbound-secret', redirectUris: ['http://127.0.0.1:9/callback'] });
const mail: MailServer = await startMailServer({ ...auth.introspection });
const doveconf = path.join(mail.dir, 'etc', 'dovecot.conf');
const tokens = {
  alice: await obtainTokens(auth, { user: auth.users.alice, client, layout: 'microsoft' }),
  bob: await obtainTokens(auth, { user: auth.users.bob, client, layout: 'microsoft' }),
};

async function imapAs(user: string, accessToken: string): Promise<ImapFlow> {
  const imap = new ImapFlow({ host: '127.0.0.1', port: mail.ports.imap, secure: false, doSTARTTLS: true, tls: { ca: [mail.caPem] }, auth: { user, accessToken }, logger: false });
  await imap.connect();
  return imap;
}

// Setup, not measured: each batch goes to both users at once (one LMTP transaction, two recipients), then each user's
// INBOX is moved into that batch's folder, so every round reads its own folder of identical messages.
const setupStart = Date.now();
const alice = await imapAs(auth.users.alice.email, tokens.alice.access_token);
const bob = await imapAs(auth.users.bob.email, tokens.bob.access_token);
let sequence = 0;
for (let batch = 0; batch < Math.max(aliceFolders.length, bobFolders.length); batch++) {
  const queue = Array.from({ length: perFolder }, () => sequence++);
  await Promise.all(
    Array.from({ length: DELIVERY_CONCURRENCY }, async () => {
      for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
        await mail.deliver(inboundMessage(i, 'alice@example.test, bob@example.test'), [auth.users.alice.email, auth.users.bob.email]);
      }
    }),
  );
  for (const [imap, folder] of [[alice, aliceFolders[batch]], [bob, bobFolders[batch]]] as const) {
    if (!folder) continue;
    await imap.mailboxCreate(folder);
    await imap.mailboxOpen('INBOX');
    await imap.messageMove('1:*', folder);
    const status = await imap.status(folder, { messages: true, unseen: true });
    if (!status || status.messages !== perFolder || status.unseen !== perFolder) throw new Error(`${folder}: ${status && status.messages} messages, ${status && status.unseen} unseen; expected ${perFolder}`);
  }
}
await alice.logout();
await bob.logout();
const setupSeconds = (Date.now() - setupStart) / 1000;

/** IMAP sessions Dovecot holds now, by user. */
async function sessions(): Promise<Record<string, number>> {
  const { stdout } = await run('doveadm', ['-c', doveconf, 'who', '-1']);
  const byUser: Record<string, number> = {};
  for (const line of stdout.split('\n').slice(1)) {
    // with -1, one line per session: username, protocol, pid, ip
    const [user, protocol] = line.trim().split(/\s+/);
    if (user && protocol === 'imap') byUser[user] = (byUser[user] ?? 0) + 1;
  }
  return byUser;
}

/**
 * The bed allows 10 IMAP sessions per user and IP (Dovecot's default mail_max_userip_connections) and 100 imap-login
 * processes (default_process_limit; with STARTTLS each session keeps its login process as TLS proxy). This raises both
 * in this bed's generated config (a temp dir; test/testbed itself is unchanged) and reloads Dovecot.
 */
async function raiseLimits(connections: number): Promise<string> {
  await appendFile(
    doveconf,
    `\n# raised by bench/support/inboundBedProcess.ts for the idle-watcher memory bench\nmail_max_userip_connections = ${connections}\nservice imap-login {\n  process_limit = ${connections + 50}\n}\nservice imap {\n  process_limit = ${connections + 50}\n}\n`,
  );
  await run('doveadm', ['-c', doveconf, 'reload']);
  await new Promise((r) => setTimeout(r, 1000));
  const { stdout } = await run('doveconf', ['-c', doveconf, '-f', 'protocol=imap', 'mail_max_userip_connections']);
  return stdout.trim();
}

const controlPort = await getFreePort();
const control = createServer((req, res) => {
  const answer = (value: unknown, status = 200) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(value));
  };
  const url = new URL(req.url ?? '/', 'http://x');
  const work = url.pathname === '/sessions' ? sessions() : url.pathname === '/raise-limits' ? raiseLimits(Number(url.searchParams.get('connections') ?? 500)) : Promise.reject(new Error('no such route'));
  work.then(answer, (err: Error) => answer({ error: err.message }, 500));
});
await new Promise<void>((resolve) => control.listen(controlPort, '127.0.0.1', () => resolve()));

process.stdout.write(
  `${JSON.stringify({
    control: `http://127.0.0.1:${controlPort}`,
    imapPort: mail.ports.imap,
    caPem: mail.caPem,
    issuer: auth.issuer,
    authority: auth.microsoft.authority,
    tenant: auth.microsoft.tenant,
    client,
    users: { alice: auth.users.alice.email, bob: auth.users.bob.email, carol: mail.passwordUser },
    tokens: { alice: { access: tokens.alice.access_token, refresh: tokens.alice.refresh_token }, bob: { access: tokens.bob.access_token, refresh: tokens.bob.refresh_token } },
    setupSeconds,
  })}\n`,
);
process.on('SIGTERM', () => {
  control.close();
  void mail
    .stop()
    .then(() => auth.stop())
    .finally(() => process.exit(0));
});
