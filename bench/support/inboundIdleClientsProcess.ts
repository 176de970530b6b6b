// Bench helper process: the raw side of the idle-watcher memory bench. Opens N imapflow sessions with the watcher's
// options (STARTTLS, INBOX selected, auto-IDLE after 250 ms), then reports this process's memory before and after (GC'd).
// Args: <JSON: { count, imapPort, caPem, ca: 'roots+bed' | 'bed' | 'none', logins: ({ user, accessToken } | { user, pass })[] }>
import tls from 'node:tls';
import v8 from 'node:v8';
import vm from 'node:vm';
import { ImapFlow } from 'imapflow';

interface Options {
  count: number;
  imapPort: number;
  caPem: string;
  ca: 'roots+bed' | 'bed' | 'none';
  logins: ({ user: string; accessToken: string } | { user: string; pass: string })[];
}
const options = JSON.parse(process.argv[2]!) as Options;
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const usage = async () => {
  await new Promise((r) => setTimeout(r, 5000));
  gc();
  gc();
  return process.memoryUsage();
};

const before = await usage();
// As the watcher builds its TLS options: a CA list when the server has tlsCa (Node's roots plus that CA), else none.
const tlsOptions = {
  ...(options.ca === 'roots+bed' ? { ca: [...tls.rootCertificates, options.caPem] } : options.ca === 'bed' ? { ca: [options.caPem] } : {}),
  rejectUnauthorized: options.ca !== 'none',
  minVersion: 'TLSv1.2' as const,
};
const clients: ImapFlow[] = [];
for (let i = 0; i < options.count; i++) {
  const client = new ImapFlow({
    host: '127.0.0.1',
    port: options.imapPort,
    secure: false,
    doSTARTTLS: true,
    tls: tlsOptions,
    auth: options.logins[i % options.logins.length]!,
    logger: false,
    maxIdleTime: 5 * 60_000,
    autoIdleDelay: 250,
  } as ConstructorParameters<typeof ImapFlow>[0]);
  client.on('error', () => undefined);
  clients.push(client);
}
await Promise.all(
  clients.map(async (client) => {
    await client.connect();
    await client.mailboxOpen('INBOX');
  }),
);
const after = await usage();
process.stdout.write(`${JSON.stringify({ before, after, connected: clients.filter((c) => c.usable).length })}\n`);
process.on('SIGTERM', () => void Promise.allSettled(clients.map((c) => c.logout())).then(() => process.exit(0)));
