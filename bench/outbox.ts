// Benchmark: messages through Mailgate's API and durable outbox to a local XOAUTH2 SMTP sink, beside raw nodemailer (pooled) sending the same messages to the same sink, same run.
// Run: npx tsx bench/outbox.ts [messages=10000] [http-concurrency=20]
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import Database from 'better-sqlite3';
import nodemailer from 'nodemailer';
import { Secret } from '../src/secrets/secret.js';
import { generateMasterKey } from '../src/secrets/keyring.js';
import { openTestServices } from '../test/support/services.js';
import { getFreePort } from '../test/testbed/ports.js';
import { startBenchChild } from './support/childProcess.js';
import { busyFraction, machineSample, processCpuMs } from './support/procCpu.js';

const TOTAL = Number(process.argv[2] ?? 10_000);
const HTTP_CONCURRENCY = Number(process.argv[3] ?? 20);
const CONNECTIONS = 5;
/** The outbox worker's concurrency (messages in flight); BENCH_OUTBOX_CONCURRENCY overrides. */
const WORKER_CONCURRENCY = Number(process.env.BENCH_OUTBOX_CONCURRENCY ?? 16);
const BODY = 'x'.repeat(900) + '\n'; // about 1 KB messages

const sink = await startBenchChild<{ port: number }>('bench/support/smtpSinkProcess.ts');

// Mailgate's data: a credential with a stored token (the sink accepts any), a server, a sender, an API key.
const masterKey = generateMasterKey();
const prepared = await openTestServices({ masterKey, configure: (c) => ({ ...c, outbox: { ...c.outbox, connectionsPerServer: CONNECTIONS, concurrency: WORKER_CONCURRENCY } }) });
await prepared.credentials.add({ name: 'bench', provider: 'google', clientId: 'bench', clientSecret: 'bench', email: 'alerts@example.com' });
await prepared.credentialRepo.saveTokens('bench', { accessToken: new Secret('ya29.bench'), refreshToken: new Secret('1//bench'), tokenType: 'Bearer', expiresAt: new Date(Date.now() + 6 * 3_600_000).toISOString(), grantedScopes: undefined }, { reason: 'bench' });
await prepared.servers.add({ name: 'sink', protocol: 'smtp', host: '127.0.0.1', port: sink.info.port, security: 'none', username: 'alerts@example.com', auth: { type: 'oauth2', credential: 'bench' } });
await prepared.senders.add({ name: 'alerts', primary: 'sink', from: 'alerts@example.com' });
const key = (await prepared.apiKeys.create('bench', ['send'])).key.reveal();
// Drain-only: messages already in the outbox when the gateway starts, so its worker sends with no HTTP load beside it.
const DRAIN = Number(process.env.BENCH_DRAIN ?? Math.min(2000, Math.floor(TOTAL / 2)));
for (let i = 0; i < DRAIN; i++) await prepared.messages.accept({ sender: 'alerts', to: 'ops@example.com', subject: `drain ${i}`, text: BODY }, 'cli');
const cwd = prepared.cwd;
await prepared.close();
fs.writeFileSync(path.join(cwd, 'mailgate.yaml'), JSON.stringify({ outbox: { connectionsPerServer: CONNECTIONS, concurrency: WORKER_CONCURRENCY } }));
const gateway = await startBenchChild<{ url: string }>('bench/support/gatewayProcess.ts', [cwd, masterKey, `127.0.0.1:${await getFreePort()}`]);
const db = new Database(path.join(cwd, 'data', 'mailgate.db'), { readonly: true });
let drainCpuMs = 0;
{
  // The gateway's CPU from its first 250 to the end of the drain (its start-up left out).
  const sentCount = db.prepare(`select count(*) as n from outbox where status = 'sent'`);
  while ((sentCount.get() as { n: number }).n === 0) await new Promise((r) => setTimeout(r, 5));
  const cpuBefore = processCpuMs(gateway.child.pid);
  const pendingDrain = db.prepare(`select count(*) as n from outbox where status in ('queued','sending')`);
  while ((pendingDrain.get() as { n: number }).n > 0) await new Promise((r) => setTimeout(r, 20));
  drainCpuMs = processCpuMs(gateway.child.pid) - cpuBefore;
}
// From the first to the last 250 of the pre-filled messages, by the outbox's own records (the first send marks the start).
const drained = db.prepare(`select min(sent_at) as first, max(sent_at) as last, count(*) as n from outbox where status = 'sent'`).get() as { first: string; last: string; n: number };
const drainRate = (drained.n - 1) / ((Date.parse(drained.last) - Date.parse(drained.first)) / 1000);

/** CPU ms per message of each process of a round (bench = this process: the HTTP client, or raw nodemailer), and how busy the machine was. */
interface RoundCpu { bench: number; gateway: number; sink: number; busy: number }
const cpuTotals = { raw: { bench: 0, gateway: 0, sink: 0, busy: 0, n: 0 }, gateway: { bench: 0, gateway: 0, sink: 0, busy: 0, n: 0 } };
function cpuMeter(): () => RoundCpu & { count(side: 'raw' | 'gateway', messages: number): void } {
  const bench = process.cpuUsage();
  const gw = processCpuMs(gateway.child.pid);
  const sk = processCpuMs(sink.child.pid);
  const machine = machineSample();
  return () => {
    const used = process.cpuUsage(bench);
    const r = { bench: (used.user + used.system) / 1000, gateway: processCpuMs(gateway.child.pid) - gw, sink: processCpuMs(sink.child.pid) - sk, busy: busyFraction(machine, machineSample()) };
    return {
      ...r,
      count(side, messages) {
        const t = cpuTotals[side];
        t.bench += r.bench / messages; t.gateway += r.gateway / messages; t.sink += r.sink / messages; t.busy += r.busy; t.n += 1;
      },
    };
  };
}

/**
 * The API client: node:http with keep-alive (BENCH_HTTP_CLIENT=fetch: the global fetch instead). The client shares the
 * two cores with the gateway and the sink, and fetch costs about as much CPU per request as raw nodemailer per message;
 * a real client runs elsewhere, so the bench uses the lighter one (as tokenApi.ts uses autocannon).
 */
const HTTP_CLIENT = process.env.BENCH_HTTP_CLIENT === 'fetch' ? 'fetch' : 'http';
const agent = new http.Agent({ keepAlive: true, maxSockets: HTTP_CONCURRENCY });
async function postMessage(body: string): Promise<{ status: number; text: string }> {
  if (HTTP_CLIENT === 'fetch') {
    const res = await fetch(`${gateway.info.url}/api/v1/messages`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body });
    return { status: res.status, text: await res.text() };
  }
  return new Promise((resolve, reject) => {
    const request = http.request(`${gateway.info.url}/api/v1/messages`, { method: 'POST', agent, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    request.on('error', reject);
    request.end(body);
  });
}

async function pool(count: number, concurrency: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (let i = next++; i < count; i = next++) await work(i);
  }));
}

/** Mailgate: POST each message (202 = stored durably), then wait until the worker has sent them all. */
async function gatewayRound(count: number, round: string): Promise<{ seconds: number; acceptedAt: Map<string, number> }> {
  const acceptedAt = new Map<string, number>();
  const meter = cpuMeter();
  const start = Date.now();
  await pool(count, HTTP_CONCURRENCY, async (i) => {
    const res = await postMessage(JSON.stringify({ sender: 'alerts', to: 'ops@example.com', subject: `bench ${round} ${i}`, text: BODY }));
    if (res.status !== 202) throw new Error(`POST answered ${res.status}: ${res.text}`);
    acceptedAt.set((JSON.parse(res.text) as { id: string }).id, Date.now());
  });
  const acceptSeconds = (Date.now() - start) / 1000;
  const pending = db.prepare(`select count(*) as n from outbox where status in ('queued','sending')`);
  while ((pending.get() as { n: number }).n > 0) await new Promise((r) => setTimeout(r, 20));
  const seconds = (Date.now() - start) / 1000;
  const cpu = meter();
  if (round !== 'warm') cpu.count('gateway', count);
  console.log(`  round ${round}: ${count} accepted in ${acceptSeconds.toFixed(2)} s (${(count / acceptSeconds).toFixed(0)}/s), all sent after ${seconds.toFixed(2)} s (${(count / seconds).toFixed(0)}/s); ${describeCpu(cpu, count)}`);
  return { seconds, acceptedAt };
}

/** Raw nodemailer: a pooled transport with the same connection count, the same messages, the same sink. */
async function rawRound(count: number, round: string): Promise<number> {
  const transport = nodemailer.createTransport({ pool: true, host: '127.0.0.1', port: sink.info.port, secure: false, ignoreTLS: true, maxConnections: CONNECTIONS, maxMessages: 1000, auth: { type: 'OAuth2', user: 'alerts@example.com', accessToken: 'ya29.bench' } });
  const meter = cpuMeter();
  const start = Date.now();
  await pool(count, HTTP_CONCURRENCY, async (i) => {
    await transport.sendMail({ from: 'alerts@example.com', to: 'ops@example.com', subject: `raw ${round} ${i}`, text: BODY });
  });
  const seconds = (Date.now() - start) / 1000;
  const cpu = meter();
  if (round !== 'warm') cpu.count('raw', count);
  console.log(`  round ${round} (raw): ${count} sent in ${seconds.toFixed(2)} s (${(count / seconds).toFixed(0)}/s); ${describeCpu(cpu, count)}`);
  transport.close();
  return seconds;
}

function describeCpu(cpu: RoundCpu, count: number): string {
  const per = (ms: number) => (ms / count).toFixed(2);
  return `CPU ms per message: bench ${per(cpu.bench)}, gateway ${per(cpu.gateway)}, sink ${per(cpu.sink)}, sum ${per(cpu.bench + cpu.gateway + cpu.sink)}; machine ${(cpu.busy * 100).toFixed(0)} % busy`;
}

// Warm-up, then ABBA with half the messages per round.
await rawRound(200, 'warm');
await gatewayRound(200, 'warm');
const half = Math.floor(TOTAL / 2);
let rawSeconds = await rawRound(half, 'a');
const g1 = await gatewayRound(half, 'b');
const g2 = await gatewayRound(TOTAL - half, 'c');
rawSeconds += await rawRound(TOTAL - half, 'd');

// 202 → 250: from the client's receipt of 202 to the outbox's record of the server's 250.
const sentAt = db.prepare('select sent_at from outbox where id = ?');
const latencies: number[] = [];
for (const accepted of [g1.acceptedAt, g2.acceptedAt]) {
  for (const [id, at] of accepted) latencies.push(Date.parse((sentAt.get(id) as { sent_at: string }).sent_at) - at);
}
latencies.sort((a, b) => a - b);
const failed = (db.prepare(`select count(*) as n from outbox where status = 'failed'`).get() as { n: number }).n;
const quantile = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
const rawRate = TOTAL / rawSeconds;
const gatewayRate = TOTAL / (g1.seconds + g2.seconds);
console.log(`outbox, ${TOTAL} messages of ~1 KB, ${CONNECTIONS} SMTP connections, worker concurrency ${WORKER_CONCURRENCY}, ${HTTP_CONCURRENCY} concurrent API clients (${HTTP_CLIENT}) / sendMail calls, ABBA, Node ${process.version}`);
console.log(`  raw nodemailer (pooled)      : ${rawRate.toFixed(0)} msgs/s`);
console.log(`  mailgate API + durable outbox: ${gatewayRate.toFixed(0)} msgs/s (${failed} failed)`);
console.log(`  ratio mailgate / raw         : ${(gatewayRate / rawRate).toFixed(2)} (target >= 0.8)`);
console.log(`  worker alone (drain of ${DRAIN} pre-filled, no HTTP load): ${drainRate.toFixed(0)} msgs/s, ratio to raw ${(drainRate / rawRate).toFixed(2)}`);
for (const side of ['raw', 'gateway'] as const) {
  const t = cpuTotals[side];
  console.log(`  CPU ms per message, ${side === 'raw' ? 'raw       ' : 'mailgate  '}: bench ${(t.bench / t.n).toFixed(2)}, gateway ${(t.gateway / t.n).toFixed(2)}, sink ${(t.sink / t.n).toFixed(2)}, sum ${((t.bench + t.gateway + t.sink) / t.n).toFixed(2)} (machine ${((t.busy / t.n) * 100).toFixed(0)} % busy)`);
}
console.log(`  CPU ms per message, worker alone: gateway ${(drainCpuMs / DRAIN).toFixed(2)}`);
console.log(`  202 -> 250                   : p50 ${quantile(0.5)} ms, p99 ${quantile(0.99)} ms, max ${latencies.at(-1)} ms`);
db.close();
agent.destroy();
await gateway.stop();
await sink.stop();
if (failed > 0) process.exitCode = 1;
