// Benchmark: outbox throughput of one `mailgate serve` on SQLite beside one, two and three sharing a PostgreSQL database, and a refresh storm on PostgreSQL beside SQLite, in one run.
// Run: npx tsx bench/instances.ts [messages=3000] [credentials=1000] [http-concurrency=20]   (builds dist/ first)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Secret } from '../src/secrets/secret.js';
import { generateMasterKey } from '../src/secrets/keyring.js';
import { RefreshScheduler } from '../src/tokens/refreshScheduler.js';
import { REPO_ROOT, startServe, tempDir, type ServeProcess } from '../test/support/cli.js';
import { startPostgresCluster, type PostgresCluster } from '../test/setup/postgres.js';
import { getFreePort } from '../test/testbed/ports.js';
import { freshDatabase, openServices, peekOutbox, postgresActivity, type Kind, type PostgresActivity, type OpenedServices } from './support/benchDatabase.js';
import { startBenchChild, type BenchChild } from './support/childProcess.js';
import { busyFraction, machineSample, postmasterPid, processCpuMs, treeCpuMs } from './support/procCpu.js';

const MESSAGES = Number(process.argv[2] ?? 3000);
const CREDENTIALS = Number(process.argv[3] ?? 1000);
const HTTP_CONCURRENCY = Number(process.argv[4] ?? 20);
const CONNECTIONS = 5;
const WORKER_CONCURRENCY = 16;
const WARMUP = 100;
const REFRESH_CONCURRENCY = 10;
/** No round may run longer than this (a stuck outbox ends the bench with an error instead of hanging). */
const ROUND_LIMIT_MS = 240_000;
const BODY = 'x'.repeat(900) + '\n'; // about 1 KB messages

// Everything started is stopped in reverse order at the end, on failure and on Ctrl-C.
const cleanups: (() => Promise<unknown>)[] = [];
const later = (fn: () => Promise<unknown>) => cleanups.push(fn);
async function cleanUp(): Promise<void> {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch((err: unknown) => console.error(`cleanup: ${String(err)}`));
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void cleanUp().finally(() => process.exit(130)));
}

async function pool(count: number, concurrency: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (let i = next++; i < count; i = next++) await work(i);
  }));
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface OutboxResult {
  label: string;
  messages: number;
  acceptSeconds: number;
  sentSeconds: number;
  /** CPU ms per message, by process group. */
  cpu: { serve: number; postgres: number; sink: number; client: number };
  busy: number;
  /** The bench's own processes (serves, postgres, sink, client) as a fraction of all cores over the round. */
  share: number;
}

let cluster: PostgresCluster | undefined;
let sink: BenchChild<{ port: number }> | undefined;

/** One round: a fresh database, `instances` serve processes on it, a warm-up, then `count` messages POSTed round-robin and timed until the last is sent. */
async function outboxRound(kind: Kind, instances: number, count: number): Promise<OutboxResult> {
  const label = `${kind === 'sqlite' ? 'SQLite' : 'PostgreSQL'}, ${instances} × serve`;
  const database = await freshDatabase(kind, cluster?.adminUrl);
  const masterKey = generateMasterKey();
  const serves: ServeProcess[] = [];
  const folders: string[] = [];
  let before: PostgresActivity | undefined;
  /** The bench's own sequential scans of the outbox (its polls), left out of PostgreSQL's counters below. */
  let benchScans = { count: 0, rows: 0 };
  try {
    // The installation, set up in process: a credential with a stored token (the sink takes any XOAUTH2 token), the sink as server, a sender, an API key.
    const setup = await openServices(database, masterKey);
    await setup.credentials.add({ name: 'bench', provider: 'google', clientId: 'bench', clientSecret: 'bench', email: 'alerts@example.com' });
    await setup.credentialRepo.saveTokens('bench', { accessToken: new Secret('ya29.bench'), refreshToken: new Secret('1//bench'), tokenType: 'Bearer', expiresAt: new Date(Date.now() + 6 * 3_600_000).toISOString(), grantedScopes: undefined }, { reason: 'bench' });
    await setup.servers.add({ name: 'sink', protocol: 'smtp', host: '127.0.0.1', port: sink!.info.port, security: 'none', username: 'alerts@example.com', auth: { type: 'oauth2', credential: 'bench' } });
    await setup.senders.add({ name: 'alerts', primary: 'sink', from: 'alerts@example.com' });
    const key = (await setup.apiKeys.create('bench', ['send'])).key.reveal();
    await setup.close();
    if (kind === 'postgres') before = await postgresActivity(database);

    for (let i = 0; i < instances; i++) {
      const cwd = i === 0 ? database.cwd : tempDir('mailgate-bench-serve-');
      if (i > 0) folders.push(cwd);
      fs.writeFileSync(path.join(cwd, 'mailgate.yaml'), JSON.stringify({ outbox: { connectionsPerServer: CONNECTIONS, concurrency: WORKER_CONCURRENCY } }));
      serves.push(await startServe({ cwd, port: await getFreePort(), env: { MAILGATE_DATABASE_URL: database.url, MAILGATE_MASTER_KEY: masterKey } }));
    }
    const peek = await peekOutbox(database);
    try {
      const post = async (i: number, subject: string) => {
        const res = await fetch(`${serves[i % instances]!.url}/api/v1/messages`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ sender: 'alerts', to: 'ops@example.com', subject, text: BODY }),
        });
        if (res.status !== 202) throw new Error(`${label}: POST answered ${res.status}: ${await res.text()}`);
        await res.arrayBuffer();
      };
      const drained = async (total: number, started: number) => {
        for (;;) {
          const c = await peek.counts();
          if (c.failed > 0) throw new Error(`${label}: ${c.failed} messages failed (see the serve output)`);
          if (c.sent >= total && c.pending === 0) return;
          if (Date.now() - started > ROUND_LIMIT_MS) throw new Error(`${label}: only ${c.sent}/${total} sent after ${ROUND_LIMIT_MS / 1000} s`);
          await sleep(50);
        }
      };
      // Warm-up: every serve process sends some before the clock runs (JIT, pools, SMTP connections).
      const warmStart = Date.now();
      await pool(WARMUP, HTTP_CONCURRENCY, (i) => post(i, `warm ${i}`));
      await drained(WARMUP, warmStart);

      const since = new Date().toISOString();
      const postmaster = cluster && kind === 'postgres' ? postmasterPid(path.join(cluster.dir, 'data')) : undefined;
      const cpuNow = () => ({
        serve: serves.reduce((sum, s) => sum + processCpuMs(s.child.pid), 0),
        postgres: postmaster ? treeCpuMs(postmaster) : 0,
        sink: processCpuMs(sink!.child.pid),
        client: (() => {
          const u = process.cpuUsage();
          return (u.user + u.system) / 1000;
        })(),
      });
      const cpu0 = cpuNow();
      const machine0 = machineSample();
      const start = Date.now();
      await pool(count, HTTP_CONCURRENCY, (i) => post(i, `bench ${i}`));
      const acceptSeconds = (Date.now() - start) / 1000;
      await drained(WARMUP + count, start);
      const cpu1 = cpuNow();
      const wallMs = Date.now() - start;
      const busy = busyFraction(machine0, machineSample());
      const last = await peek.lastSent(since);
      peek.scans.rows += WARMUP;
      if (last.n !== count || !last.last) throw new Error(`${label}: expected ${count} timed messages in the outbox, found ${last.n}`);
      const sentSeconds = (Date.parse(last.last) - start) / 1000;
      const per = (k: keyof typeof cpu0) => (cpu1[k] - cpu0[k]) / count;
      const cpu = { serve: per('serve'), postgres: per('postgres'), sink: per('sink'), client: per('client') };
      const share = ((cpu.serve + cpu.postgres + cpu.sink + cpu.client) * count) / (wallMs * os.cpus().length);
      const result: OutboxResult = { label, messages: count, acceptSeconds, sentSeconds, cpu, busy, share };
      console.log(
        `  ${label.padEnd(18)}: ${count} accepted in ${acceptSeconds.toFixed(2)} s (${(count / acceptSeconds).toFixed(0)}/s), all sent after ${sentSeconds.toFixed(2)} s (${(count / sentSeconds).toFixed(0)} msgs/s); ` +
          `CPU ms/msg serve ${result.cpu.serve.toFixed(2)}, postgres ${result.cpu.postgres.toFixed(2)}, sink ${result.cpu.sink.toFixed(2)}, client ${result.cpu.client.toFixed(2)}; machine ${(busy * 100).toFixed(0)} % busy, the bench's processes ${(share * 100).toFixed(0)} % of all cores`,
      );
      return result;
    } finally {
      benchScans = peek.scans;
      await peek.close();
    }
  } finally {
    for (const serve of serves) {
      const code = await serve.stop('SIGTERM');
      if (code !== 0) console.error(`  ${label}: serve exited with ${code}; its output ends:\n${serve.output().slice(-2000)}`);
    }
    const baseline = before;
    if (baseline && serves.length === instances) {
      // What PostgreSQL did for the whole round (start, warm-up, timed messages, stop), per message sent.
      await sleep(300); // the backends report their counters as they exit
      const after = await postgresActivity(database);
      const total = WARMUP + count;
      const per = (v: number) => (v / total).toFixed(2);
      const tables = after.tables.slice(0, 4).map((t) => {
        const b = baseline.tables.find((x) => x.table === t.table);
        const own = t.table === 'outbox' ? benchScans : { count: 0, rows: 0 };
        return `${t.table} seq scans ${per(t.seqScans - (b?.seqScans ?? 0) - own.count)} (rows ${per(t.seqRows - (b?.seqRows ?? 0) - own.rows)}), index scans ${per(t.idxScans - (b?.idxScans ?? 0))} (rows ${per(t.idxRows - (b?.idxRows ?? 0))}), ins ${per(t.inserted - (b?.inserted ?? 0))}, upd ${per(t.updated - (b?.updated ?? 0))}`;
      });
      console.log(`      postgres per message (whole round, the bench's own polls left out): ${per(after.commits - baseline.commits - benchScans.count)} commits; ${tables.join('; ')}`);
    }
    await database.drop();
    for (const folder of folders) fs.rmSync(folder, { recursive: true, force: true });
  }
}

interface AuthInfo {
  issuer: string;
  authority: string;
  tenant: string;
  tokenUrl: string;
  client: { clientId: string; clientSecret: string };
  refreshTokens: string[];
}

interface StormSide {
  kind: Kind;
  services: OpenedServices;
  scheduler: RefreshScheduler;
  seconds: number;
  refreshed: number;
  failed: number;
  cpuMs: number;
  postgresMs: number;
}

/** N credentials with stored refresh tokens on a fresh database of `kind`, and a scheduler over them. */
async function stormSide(kind: Kind, auth: AuthInfo, tokens: string[]): Promise<StormSide> {
  const database = await freshDatabase(kind, cluster?.adminUrl);
  later(() => database.drop());
  const services = await openServices(database, generateMasterKey());
  later(() => services.close());
  const expiresLater = new Date(Date.now() + 3_600_000).toISOString();
  for (const [i, refreshToken] of tokens.entries()) {
    const added = await services.credentials.add({ name: `bench-${String(i).padStart(5, '0')}`, provider: 'microsoft', tenant: auth.tenant, authority: auth.authority, issuer: auth.issuer, clientId: auth.client.clientId, clientSecret: auth.client.clientSecret, email: i % 2 === 0 ? 'alice@example.test' : 'bob@example.test' });
    await services.credentialRepo.saveTokens(added.name, { accessToken: new Secret('not-yet-refreshed'), refreshToken: new Secret(refreshToken), tokenType: 'bearer', expiresAt: expiresLater, grantedScopes: undefined }, { reason: 'bench setup' });
  }
  const scheduler = new RefreshScheduler(services.credentialRepo, services.tokens, services.logger, { intervalMs: 60_000, aheadMs: 10 * 60_000, keepAliveMs: 7 * 86_400_000, concurrency: REFRESH_CONCURRENCY });
  return { kind, services, scheduler, seconds: 0, refreshed: 0, failed: 0, cpuMs: 0, postgresMs: 0 };
}

/** Makes credentials [from, to) due and lets the scheduler refresh them. */
async function stormRound(side: StormSide, from: number, to: number): Promise<void> {
  const name = (i: number) => `bench-${String(i).padStart(5, '0')}`;
  await side.services.store.db.updateTable('credentials').set({ expires_at: new Date(Date.now() - 1000).toISOString() }).where('name', '>=', name(from)).where('name', '<', name(to)).execute();
  const postmaster = cluster && side.kind === 'postgres' ? postmasterPid(path.join(cluster.dir, 'data')) : undefined;
  const pg0 = postmaster ? treeCpuMs(postmaster) : 0;
  const cpu = process.cpuUsage();
  const start = performance.now();
  const result = await side.scheduler.runOnce();
  side.seconds += (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu);
  side.cpuMs += (used.user + used.system) / 1000;
  side.postgresMs += postmaster ? treeCpuMs(postmaster) - pg0 : 0;
  side.refreshed += result.refreshed;
  side.failed += result.failed;
}

const rate = (rounds: OutboxResult[]) => rounds.reduce((s, r) => s + r.messages, 0) / rounds.reduce((s, r) => s + r.sentSeconds, 0);
const acceptRate = (rounds: OutboxResult[]) => rounds.reduce((s, r) => s + r.messages, 0) / rounds.reduce((s, r) => s + r.acceptSeconds, 0);
const mean = (rounds: OutboxResult[], f: (r: OutboxResult) => number) => rounds.reduce((s, r) => s + f(r), 0) / rounds.length;

let failed = false;
try {
  console.log(`instances bench: ${MESSAGES} messages per configuration, ${CREDENTIALS} credentials per storm side, Node ${process.version}, ${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: REPO_ROOT, stdio: 'inherit' });
  cluster = await startPostgresCluster();
  later(() => cluster!.stop());
  sink = await startBenchChild<{ port: number }>('bench/support/smtpSinkProcess.ts');
  later(() => sink!.stop());

  // 1. Outbox: each configuration twice with half the messages, in mirrored order (A B C D D C B A), a fresh database per round.
  console.log(`\noutbox: ~1 KB messages via POST /api/v1/messages (${HTTP_CONCURRENCY} concurrent clients, round-robin over the instances) to an SMTP sink; per serve ${CONNECTIONS} SMTP connections, worker concurrency ${WORKER_CONCURRENCY}`);
  const configs: [Kind, number][] = [['sqlite', 1], ['postgres', 1], ['postgres', 2], ['postgres', 3]];
  const results = new Map<string, OutboxResult[]>();
  const halves = [Math.floor(MESSAGES / 2), MESSAGES - Math.floor(MESSAGES / 2)];
  for (const [pass, order] of [configs, [...configs].reverse()].entries()) {
    for (const [kind, n] of order) {
      const r = await outboxRound(kind, n, halves[pass]!);
      results.set(`${kind}-${n}`, [...(results.get(`${kind}-${n}`) ?? []), r]);
    }
  }

  // 2. Refresh storm: SQLite and PostgreSQL stores in this process against the test bed's authorization server, ABBA.
  const setupStart = Date.now();
  const auth = await startBenchChild<AuthInfo>('bench/support/authServerProcess.ts', [String(2 * CREDENTIALS)]);
  later(() => auth.stop());
  console.log(`\nrefresh storm: ${2 * CREDENTIALS} refresh tokens obtained in ${((Date.now() - setupStart) / 1000).toFixed(1)} s; ${CREDENTIALS} credentials per side, concurrency ${REFRESH_CONCURRENCY}`);
  const sqlite = await stormSide('sqlite', auth.info, auth.info.refreshTokens.slice(0, CREDENTIALS));
  const postgres = await stormSide('postgres', auth.info, auth.info.refreshTokens.slice(CREDENTIALS));
  const half = Math.floor(CREDENTIALS / 2);
  await stormRound(sqlite, 0, half);
  await stormRound(postgres, 0, half);
  await stormRound(postgres, half, CREDENTIALS);
  await stormRound(sqlite, half, CREDENTIALS);

  // Summary.
  const r = (key: string) => rate(results.get(key)!);
  console.log(`\nsummary (${MESSAGES} messages per configuration, two mirrored rounds each; rate = messages / (first POST -> last 250))`);
  for (const [kind, n] of configs) {
    const rounds = results.get(`${kind}-${n}`)!;
    console.log(
      `  ${rounds[0]!.label.padEnd(18)}: accepted→sent ${rate(rounds).toFixed(0)} msgs/s (rounds ${rounds.map((x) => (x.messages / x.sentSeconds).toFixed(0)).join(' / ')}), accept ${acceptRate(rounds).toFixed(0)}/s; ` +
        `CPU ms/msg serve ${mean(rounds, (x) => x.cpu.serve).toFixed(2)} + postgres ${mean(rounds, (x) => x.cpu.postgres).toFixed(2)} + sink ${mean(rounds, (x) => x.cpu.sink).toFixed(2)} + client ${mean(rounds, (x) => x.cpu.client).toFixed(2)}; machine ${(mean(rounds, (x) => x.busy) * 100).toFixed(0)} % busy, ${(mean(rounds, (x) => x.share) * 100).toFixed(0)} % of all cores the bench's`,
    );
  }
  const pg1 = r('postgres-1');
  console.log(`  PG-1 / SQLite-1: ${(pg1 / r('sqlite-1')).toFixed(2)} (target >= 0.8)`);
  console.log(`  PG-2 / PG-1    : ${(r('postgres-2') / pg1).toFixed(2)} (target >= 1.3)`);
  console.log(`  PG-3 / PG-1    : ${(r('postgres-3') / pg1).toFixed(2)}`);
  const stormRate = (s: StormSide) => s.refreshed / s.seconds;
  for (const side of [sqlite, postgres]) {
    console.log(`  refresh storm ${side.kind.padEnd(8)}: ${stormRate(side).toFixed(0)} refreshes/s (${side.refreshed} refreshed, ${side.failed} failed); CPU per refresh: bench process ${(side.cpuMs / CREDENTIALS).toFixed(2)} ms${side.kind === 'postgres' ? `, postgres ${(side.postgresMs / CREDENTIALS).toFixed(2)} ms` : ''}`);
  }
  console.log(`  refresh storm PG / SQLite: ${(stormRate(postgres) / stormRate(sqlite)).toFixed(2)}`);
  if (sqlite.failed + postgres.failed > 0 || sqlite.refreshed !== CREDENTIALS || postgres.refreshed !== CREDENTIALS) failed = true;
} catch (err) {
  failed = true;
  console.error(err);
} finally {
  await cleanUp();
}
if (failed) process.exitCode = 1;
