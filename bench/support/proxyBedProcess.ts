// Bench helper process: the test bed (oidc-provider + Dovecot) for the IMAP proxy bench: alice's folders Big (N × ~50 KB)
// and Small (N × ~1 KB), a token, Dovecot's session limits raised for the idle-session round. Args: <messages per folder>
import { execFile } from 'node:child_process';
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { ImapFlow } from 'imapflow';
import { startAuthServer } from '../../test/testbed/authServer.js';
import { startMailServer } from '../../test/testbed/mailServer.js';
import { obtainTokens } from '../../test/testbed/providerLogin.js';

const perFolder = Number(process.argv[2] ?? 1000);
const SESSIONS = 400;
const run = promisify(execFile);
const auth = await startAuthServer({ accessTokenTtl: 3600 });
const client = auth.addClient({ clientId: 'bench-proxy', clientSecret: 'bench-proxy-secret', redirectUris: ['http://127.0.0.1:9/callback'] });
const mail = await startMailServer({ ...auth.introspection });
const doveconf = path.join(mail.dir, 'etc', 'dovecot.conf');
await appendFile(doveconf, `\n# raised by bench/support/proxyBedProcess.ts\nmail_max_userip_connections = ${SESSIONS}\nservice imap-login {\n  process_limit = ${SESSIONS + 50}\n}\nservice imap {\n  process_limit = ${SESSIONS + 50}\n}\n`);
await run('doveadm', ['-c', doveconf, 'reload']);
await new Promise((r) => setTimeout(r, 1000));
const tokens = await obtainTokens(auth, { user: auth.users.alice, client, layout: 'microsoft' });

/** A message of about `size` bytes, its body lines of printable text. */
function message(i: number, size: number): string {
  const line = `${String(i).padStart(6, '0')} ${'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(2)}`;
  const body = Array.from({ length: Math.max(1, Math.round(size / (line.length + 2))) }, () => line).join('\r\n');
  return ['From: bench@example.test', 'To: alice@example.test', `Subject: bench ${i}`, `Message-ID: <bench-${size}-${i}@example.test>`, '', body, ''].join('\r\n');
}

const imap = new ImapFlow({ host: '127.0.0.1', port: mail.ports.imaps, secure: true, tls: { ca: [mail.caPem] }, auth: { user: auth.users.alice.email, accessToken: tokens.access_token }, logger: false });
await imap.connect();
for (const [folder, size] of [['Big', 50_000], ['Small', 1_000]] as const) {
  const queue = Array.from({ length: perFolder }, (_, i) => i);
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let i = queue.shift(); i !== undefined; i = queue.shift()) await mail.deliver(message(i, size), auth.users.alice.email);
    }),
  );
  await imap.mailboxCreate(folder);
  await imap.mailboxOpen('INBOX');
  await imap.messageMove('1:*', folder);
}
await imap.logout();

process.stdout.write(`${JSON.stringify({ imapsPort: mail.ports.imaps, caPem: mail.caPem, issuer: auth.issuer, authority: auth.microsoft.authority, tenant: auth.microsoft.tenant, client, user: auth.users.alice.email, access: tokens.access_token, refresh: tokens.refresh_token })}\n`);
process.on('SIGTERM', () => {
  void mail
    .stop()
    .then(() => auth.stop())
    .finally(() => process.exit(0));
});
