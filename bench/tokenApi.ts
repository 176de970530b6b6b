// Benchmark: requests per second and p99 of GET /api/v1/credentials/:name/access-token beside a bare route on the same server, same run.
// Run: npx tsx bench/tokenApi.ts [seconds=5] [connections=10]
import autocannon from 'autocannon';
import { startBenchChild } from './support/childProcess.js';

const SECONDS = Number(process.argv[2] ?? 5);
const CONNECTIONS = Number(process.argv[3] ?? 10);

const server = await startBenchChild<{ url: string; key: string }>('bench/support/tokenApiProcess.ts');

async function load(path: string, headers: Record<string, string> = {}) {
  const result = await autocannon({ url: `${server.info.url}${path}`, connections: CONNECTIONS, duration: SECONDS, headers });
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${path}: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
  return { rps: result.requests.average, p99: result.latency.p99, total: result.requests.total };
}

// Warm both routes up (JIT, statement cache), then measure in ABBA order.
await load('/bare');
await load('/api/v1/credentials/bench/access-token', { authorization: `Bearer ${server.info.key}` });
const runs = { bare: [] as Awaited<ReturnType<typeof load>>[], token: [] as Awaited<ReturnType<typeof load>>[] };
runs.bare.push(await load('/bare'));
runs.token.push(await load('/api/v1/credentials/bench/access-token', { authorization: `Bearer ${server.info.key}` }));
runs.token.push(await load('/api/v1/credentials/bench/access-token', { authorization: `Bearer ${server.info.key}` }));
runs.bare.push(await load('/bare'));
await server.stop();

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const bare = { rps: mean(runs.bare.map((r) => r.rps)), p99: Math.max(...runs.bare.map((r) => r.p99)) };
const token = { rps: mean(runs.token.map((r) => r.rps)), p99: Math.max(...runs.token.map((r) => r.p99)) };
console.log(`token API, ${CONNECTIONS} connections, ${SECONDS} s per run, ABBA order, Node ${process.version}`);
console.log(`  bare route        : ${bare.rps.toFixed(0)} req/s, p99 ${bare.p99} ms`);
console.log(`  GET access-token  : ${token.rps.toFixed(0)} req/s, p99 ${token.p99} ms`);
console.log(`  ratio token / bare: ${(token.rps / bare.rps).toFixed(2)} (target >= 0.6)`);
