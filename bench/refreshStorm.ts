// Benchmark: a refresh storm of N credentials due at once through Mailgate's scheduler, beside a plain openid-client loop doing the same refreshes in the same run.
// Run: npx tsx bench/refreshStorm.ts [credentials=2000] [concurrency=10]; BENCH_CPU_PROFILE=file.cpuprofile profiles Mailgate's rounds.
import * as oidc from 'openid-client';
import { CredentialRepository } from '../src/credentials/repository.js';
import { createLogger } from '../src/log.js';
import { Secret } from '../src/secrets/secret.js';
import { RefreshScheduler } from '../src/tokens/refreshScheduler.js';
import { openTestServices } from '../test/support/services.js';
import { startBenchChild } from './support/childProcess.js';

const N = Number(process.argv[2] ?? 2000);
const CONCURRENCY = Number(process.argv[3] ?? 10);

interface AuthInfo {
  issuer: string;
  authority: string;
  tenant: string;
  tokenUrl: string;
  client: { clientId: string; clientSecret: string };
  refreshTokens: string[];
}

const setupStart = Date.now();
// Twice N tokens: one set for the raw loop, one for Mailgate, so neither inherits the other's rotated tokens.
const auth = await startBenchChild<AuthInfo>('bench/support/authServerProcess.ts', [String(2 * N)]);
console.log(`setup: ${2 * N} refresh tokens obtained through the login page in ${((Date.now() - setupStart) / 1000).toFixed(1)} s`);
const { client } = auth.info;
const rawTokens = auth.info.refreshTokens.slice(0, N);
const gatewayTokens = auth.info.refreshTokens.slice(N);

async function pool<T>(items: T[], work: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await work(item);
  }));
}

const config = new oidc.Configuration({ issuer: auth.info.issuer, token_endpoint: auth.info.tokenUrl }, client.clientId, undefined, oidc.ClientSecretBasic(client.clientSecret));
oidc.allowInsecureRequests(config);
let rawFailures = 0;
/** The raw baseline: openid-client's refreshTokenGrant over the tokens, CONCURRENCY at a time. */
let rawCpuMs = 0;
let gatewayCpuMs = 0;
const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;
async function rawRound(tokens: string[]): Promise<number> {
  const cpu = process.cpuUsage();
  const start = performance.now();
  await pool(tokens, async (rt) => {
    try {
      await oidc.refreshTokenGrant(config, rt);
    } catch {
      rawFailures += 1;
    }
  });
  rawCpuMs += cpuMs(process.cpuUsage(cpu));
  return (performance.now() - start) / 1000;
}

// Mailgate: N credentials with stored (sealed) refresh tokens; a round makes some of them due and lets the scheduler run.
const services = await openTestServices({ logger: createLogger('warn') });
const repo = new CredentialRepository(services.store, services.keyring);
const expired = new Date(Date.now() - 1000).toISOString();
const later = new Date(Date.now() + 3_600_000).toISOString();
for (let i = 0; i < N; i++) {
  const added = await services.credentials.add({
    name: `bench-${String(i).padStart(5, '0')}`,
    provider: 'microsoft',
    tenant: auth.info.tenant,
    authority: auth.info.authority,
    issuer: auth.info.issuer,
    clientId: client.clientId,
    clientSecret: client.clientSecret,
    email: i % 2 === 0 ? 'alice@example.test' : 'bob@example.test',
  });
  await repo.saveTokens(added.name, { accessToken: new Secret('not-yet-refreshed'), refreshToken: new Secret(gatewayTokens[i]!), tokenType: 'bearer', expiresAt: later, grantedScopes: undefined }, { reason: 'bench setup' });
}
const scheduler = new RefreshScheduler(repo, services.tokens, services.logger, { intervalMs: 60_000, aheadMs: 10 * 60_000, keepAliveMs: 7 * 86_400_000, concurrency: CONCURRENCY });
let gatewayRefreshed = 0;
let gatewayFailed = 0;
// BENCH_CPU_PROFILE=file.cpuprofile: a CPU profile of this process during Mailgate's rounds only (the provider is another process).
const profileFile = process.env.BENCH_CPU_PROFILE;
const session = profileFile ? new (await import('node:inspector/promises')).Session() : undefined;
if (session) {
  session.connect();
  await session.post('Profiler.enable');
}
async function gatewayRound(from: number, to: number): Promise<number> {
  await session?.post('Profiler.start');
  try {
    return await timedGatewayRound(from, to);
  } finally {
    if (session) {
      const { profile } = await session.post('Profiler.stop');
      const file = `${profileFile!.replace(/\.cpuprofile$/, '')}-${from}.cpuprofile`;
      (await import('node:fs')).writeFileSync(file, JSON.stringify(profile));
      console.log(`  CPU profile of Mailgate's round from ${from}: ${file}`);
    }
  }
}
async function timedGatewayRound(from: number, to: number): Promise<number> {
  await services.store.db.updateTable('credentials').set({ expires_at: expired }).where('name', '>=', `bench-${String(from).padStart(5, '0')}`).where('name', '<', `bench-${String(to).padStart(5, '0')}`).execute();
  const cpu = process.cpuUsage();
  const start = performance.now();
  const result = await scheduler.runOnce();
  gatewayCpuMs += cpuMs(process.cpuUsage(cpu));
  gatewayRefreshed += result.refreshed;
  gatewayFailed += result.failed;
  return (performance.now() - start) / 1000;
}

// ABBA order, so that neither side always meets the provider fresher (its in-memory store grows with every grant).
const half = Math.floor(N / 2);
let rawSeconds = await rawRound(rawTokens.slice(0, half));
let gatewaySeconds = await gatewayRound(0, half);
gatewaySeconds += await gatewayRound(half, N);
rawSeconds += await rawRound(rawTokens.slice(half));

// Afterwards every credential must still refresh: its rotated refresh token was stored.
const second = { refreshed: 0, failed: 0 };
await services.store.db.updateTable('credentials').set({ expires_at: expired }).execute();
Object.assign(second, await scheduler.runOnce());
const statuses = await services.store.db.selectFrom('credentials').select(['status']).execute();
const active = statuses.filter((s) => s.status === 'active').length;

const rawRate = N / rawSeconds;
const gatewayRate = gatewayRefreshed / gatewaySeconds;
console.log(`\nrefresh storm, ${N} credentials, concurrency ${CONCURRENCY}, Node ${process.version} (ABBA order: raw, mailgate, mailgate, raw)`);
console.log(`  raw openid-client loop : ${rawRate.toFixed(0)} refreshes/s (${rawFailures} failed)`);
console.log(`  mailgate scheduler     : ${gatewayRate.toFixed(0)} refreshes/s (${gatewayFailed} failed)`);
console.log(`  client CPU per refresh : raw ${(rawCpuMs / N).toFixed(2)} ms, mailgate ${(gatewayCpuMs / N).toFixed(2)} ms`);
console.log(`  ratio mailgate / raw   : ${(gatewayRate / rawRate).toFixed(2)} (target >= 0.9)`);
console.log(`  second storm afterwards: ${second.refreshed}/${N} refreshed, ${second.failed} failed; ${active}/${N} credentials active`);
await services.close();
await auth.stop();
if (rawFailures > 0 || gatewayFailed > 0 || second.refreshed !== N || active !== N) process.exitCode = 1;
