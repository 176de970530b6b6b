// Benchmark: Python imaplib reading the test bed's Dovecot through Mailgate's IMAP proxy (the real gateway, its own
// process, implicit TLS to the client and TLS upstream) beside the same client talking TLS to Dovecot directly, in one
// run: bulk FETCH of N × ~50 KB and N × ~1 KB, one FETCH per message, connect + login + SELECT, memory per idle session.
// A bare Node TLS pipe (accept TLS, dial TLS, pipe) runs beside them as the floor for any proxy written in Node, and the
// per-command round is repeated with the server 5 ms away each way (a delaying TCP relay), as a real provider is.
// Run: npx tsx bench/proxy.ts [messages=1000] [sessions=200]
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { generateMasterKey } from '../src/secrets/keyring.js';
import { Secret } from '../src/secrets/secret.js';
import { openTestServices } from '../test/support/services.js';
import { getFreePort } from '../test/testbed/ports.js';
import { startBenchChild, type BenchChild } from './support/childProcess.js';

const MESSAGES = Number(process.argv[2] ?? 1000);
const SESSIONS = Number(process.argv[3] ?? 200);
/** One-way delay of the "provider across a network" round, and how many FETCHes it makes. */
const FAR_ONE_WAY_MS = 5;
const FAR_FETCHES = 200;
const run = promisify(execFile);
const CLIENT = path.join(path.dirname(new URL(import.meta.url).pathname), 'support', 'proxyClient.py');

interface BedInfo { imapsPort: number; caPem: string; issuer: string; authority: string; tenant: string; client: { clientId: string; clientSecret: string }; user: string; access: string; refresh: string | undefined }
interface GatewayInfo { url: string; control: string; certFile: string }

const started = Date.now();
const bed = await startBenchChild<BedInfo>('bench/support/proxyBedProcess.ts', [String(MESSAGES)], 600_000);
console.log(`bed ready in ${((Date.now() - started) / 1000).toFixed(1)} s (${MESSAGES} × ~50 KB in Big, ${MESSAGES} × ~1 KB in Small)`);

let gateway: BenchChild<GatewayInfo> | undefined;
let pipe: BenchChild<{ port: number }> | undefined;
let shim: BenchChild<{ port: number }> | undefined;
try {
  // Mailgate's data: alice's credential with the bed's tokens, her IMAP server (TLS), a proxy account with a generated password.
  const masterKey = generateMasterKey();
  const prepared = await openTestServices({ masterKey });
  await prepared.credentials.add({ name: 'alice', provider: 'microsoft', tenant: bed.info.tenant, authority: bed.info.authority, issuer: bed.info.issuer, clientId: bed.info.client.clientId, clientSecret: bed.info.client.clientSecret, email: bed.info.user, protocols: ['imap'] });
  await prepared.credentialRepo.saveTokens('alice', { accessToken: new Secret(bed.info.access), refreshToken: new Secret(bed.info.refresh ?? ''), tokenType: 'Bearer', expiresAt: new Date(Date.now() + 3_500_000).toISOString(), grantedScopes: undefined }, { reason: 'bench' });
  await prepared.servers.add({ name: 'dovecot', protocol: 'imap', host: '127.0.0.1', port: bed.info.imapsPort, security: 'tls', tlsCa: bed.info.caPem, username: bed.info.user, auth: { type: 'oauth2', credential: 'alice' } });
  const { generatedPassword } = await prepared.proxyAccounts.add({ name: 'bench', server: 'dovecot', generatePassword: true });
  // The same Dovecot as a provider 5 ms away each way (a delaying TCP relay between them), for the per-command round.
  const shimPort = await getFreePort();
  shim = await startBenchChild<{ port: number }>('bench/support/delayShimProcess.ts', [String(shimPort), String(bed.info.imapsPort), String(FAR_ONE_WAY_MS)]);
  await prepared.servers.add({ name: 'dovecot-far', protocol: 'imap', host: '127.0.0.1', port: shimPort, security: 'tls', tlsCa: bed.info.caPem, username: bed.info.user, auth: { type: 'oauth2', credential: 'alice' } });
  const far = await prepared.proxyAccounts.add({ name: 'bench-far', server: 'dovecot-far', generatePassword: true });
  const cwd = prepared.cwd;
  await prepared.close();

  const proxyPort = await getFreePort();
  const gw = await startBenchChild<GatewayInfo>('bench/support/proxyGatewayProcess.ts', [cwd, masterKey, `127.0.0.1:${await getFreePort()}`, String(proxyPort)]);
  gateway = gw;
  const bedCa = path.join(cwd, 'bed-ca.pem');
  fs.writeFileSync(bedCa, bed.info.caPem);
  // The floor: a bare Node TLS pipe (no login, no parsing) to the same Dovecot, with the same certificate as the proxy.
  const pipePort = await getFreePort();
  const keyFile = gw.info.certFile.replace(/listener-cert\.pem$/, 'listener-key.pem');
  pipe = await startBenchChild<{ port: number }>('bench/support/tlsPipeProcess.ts', [String(pipePort), gw.info.certFile, keyFile, String(bed.info.imapsPort), bedCa]);
  const targets = {
    direct: { MODE: 'direct', PORT: String(bed.info.imapsPort), CA: bedCa, USER: bed.info.user, TOKEN: bed.info.access },
    proxy: { MODE: 'proxy', PORT: String(proxyPort), CA: gw.info.certFile, USER: 'bench', PASS: generatedPassword! },
    pipe: { MODE: 'direct', PORT: String(pipePort), CA: gw.info.certFile, USER: bed.info.user, TOKEN: bed.info.access },
    directFar: { MODE: 'direct', PORT: String(shimPort), CA: bedCa, USER: bed.info.user, TOKEN: bed.info.access },
    proxyFar: { MODE: 'proxy', PORT: String(proxyPort), CA: gw.info.certFile, USER: 'bench-far', PASS: far.generatedPassword! },
  };

  async function client(target: keyof typeof targets, round: string, extra: Record<string, string> = {}): Promise<Record<string, number>> {
    const { stdout } = await run('python3', [CLIENT], { env: { ...process.env, ...targets[target], ROUND: round, ...extra }, timeout: 600_000, maxBuffer: 16 * 1024 * 1024 });
    return JSON.parse(stdout) as Record<string, number>;
  }

  /** ABBA rounds (direct, proxy, proxy, direct): the sum of each side's two rounds. */
  /** The bare Node TLS pipe joins as a third side: direct, pipe, proxy, proxy, pipe, direct. */
  async function abba(round: string, value: (r: Record<string, number>) => number): Promise<{ direct: number; proxy: number; pipe: number }> {
    const sums = { direct: 0, proxy: 0, pipe: 0 };
    for (const target of ['direct', 'pipe', 'proxy', 'proxy', 'pipe', 'direct'] as const) sums[target] += value(await client(target, round));
    return sums;
  }
  await client('proxy', 'login', { COUNT: '3' }); // warm-up: token in memory, capability cache, TLS session setup paths
  await client('direct', 'login', { COUNT: '3' });
  const results: string[] = [];
  for (const folder of ['Big', 'Small']) {
    const { direct, proxy, pipe: bare } = await abba(`bulk-${folder}`, (r) => r.bytes! / r.seconds!);
    results.push(`bulk FETCH 1:* of ${MESSAGES} × ~${folder === 'Big' ? '50' : '1'} KB: direct ${(direct / 2 / 1e6).toFixed(1)} MB/s, proxy ${(proxy / 2 / 1e6).toFixed(1)} MB/s, ratio ${(proxy / direct).toFixed(2)} (target ≥ 0.85); bare Node TLS pipe ${(bare / direct).toFixed(2)} of direct`);
    console.log(results.at(-1));
  }
  {
    const { direct, proxy, pipe: bare } = await abba('each', (r) => r.messages! / r.seconds!);
    results.push(`one FETCH per message × ${MESSAGES} (~1 KB): direct ${(direct / 2).toFixed(0)} /s, proxy ${(proxy / 2).toFixed(0)} /s, ratio ${(proxy / direct).toFixed(2)} (target ≥ 0.8); bare Node TLS pipe ${(bare / 2).toFixed(0)} /s, ${(bare / direct).toFixed(2)} of direct`);
    console.log(results.at(-1));
  }
  {
    const sums = { directFar: 0, proxyFar: 0 };
    for (const target of ['directFar', 'proxyFar', 'proxyFar', 'directFar'] as const) {
      const r = await client(target, 'each', { LIMIT: String(FAR_FETCHES) });
      sums[target] += r.messages! / r.seconds!;
    }
    results.push(`one FETCH per message × ${FAR_FETCHES}, server ${FAR_ONE_WAY_MS} ms away each way: direct ${(sums.directFar / 2).toFixed(1)} /s, proxy ${(sums.proxyFar / 2).toFixed(1)} /s, ratio ${(sums.proxyFar / sums.directFar).toFixed(2)}`);
    console.log(results.at(-1));
  }
  {
    const { direct, proxy } = await abba('login', (r) => r.medianMs!);
    results.push(`connect + login + SELECT, median of 4 × 30: direct ${(direct / 2).toFixed(1)} ms, proxy ${(proxy / 2).toFixed(1)} ms, difference ${((proxy - direct) / 2).toFixed(1)} ms (target ≤ 20 ms)`);
    console.log(results.at(-1));
  }

  // Memory per idle proxied session: SESSIONS clients log in, SELECT INBOX and stay; the gateway's memory after a GC.
  const usage = async () => (await (await fetch(gw.info.control)).json()) as NodeJS.MemoryUsage;
  const before = await usage();
  const sockets: tls.TLSSocket[] = [];
  const deadline = Date.now() + 120_000;
  const queue = Array.from({ length: SESSIONS }, (_, i) => i);
  await Promise.all(
    Array.from({ length: 10 }, async () => {
      for (let i = queue.shift(); i !== undefined && Date.now() < deadline; i = queue.shift()) {
        const socket = tls.connect({ host: '127.0.0.1', port: proxyPort, ca: fs.readFileSync(gw.info.certFile), servername: 'localhost' });
        socket.on('error', () => undefined);
        let said = '';
        let sent = false;
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`session ${i} not logged in: ${said.slice(-200)}`)), 30_000);
          socket.on('data', (chunk: Buffer) => {
            said += chunk.toString();
            if (!sent && said.includes('\r\n')) {
              sent = true;
              socket.write(`a1 LOGIN bench ${generatedPassword}\r\na2 SELECT INBOX\r\n`);
            }
            if (/a2 (OK|NO|BAD)/.test(said)) {
              clearTimeout(timer);
              if (!/a2 OK/.test(said)) reject(new Error(`session ${i}: ${said.slice(-200)}`));
              else resolve();
            }
          });
        });
        sockets.push(socket);
      }
    }),
  );
  await new Promise((r) => setTimeout(r, 2000));
  const after = await usage();
  const perSession = (key: keyof NodeJS.MemoryUsage) => ((after[key] - before[key]) / sockets.length / 1024 / 1024).toFixed(3);
  results.push(`${sockets.length} idle proxied sessions (logged in, INBOX selected): rss +${perSession('rss')} MB, heapUsed +${perSession('heapUsed')} MB, external +${perSession('external')} MB per session (target < 0.1 MB)`);
  console.log(results.at(-1));
  for (const socket of sockets) socket.destroy();
  console.log(`\n${new Date().toISOString().slice(0, 10)}, Node ${process.versions.node}:\n${results.map((r) => `- ${r}`).join('\n')}`);
} finally {
  await gateway?.stop();
  await pipe?.stop();
  await shim?.stop();
  await bed.stop();
}
