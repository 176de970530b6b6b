// Benchmark: inbound mail from the test bed's Dovecot to a local webhook sink through Mailgate's IMAP watcher (the real
// gateway, its own process), beside a raw imapflow fetch loop doing the same work in the same run; then the memory of
// idle watchers (IDLE on their INBOX) in a fresh gateway process.
// Run: npx tsx bench/inbound.ts [messages=10000] [watchers=200] (watchers 0: throughput only, no memory part)
import http from 'node:http';
import path from 'node:path';
import tls from 'node:tls';
import { ImapFlow, type FetchMessageObject } from 'imapflow';
import { simpleParser, type AddressObject } from 'mailparser';
import { generateMasterKey } from '../src/secrets/keyring.js';
import { Secret } from '../src/secrets/secret.js';
import { openTestServices } from '../test/support/services.js';
import { getFreePort } from '../test/testbed/ports.js';
import { startBenchChild, type BenchChild } from './support/childProcess.js';
import { inboundMessage } from './support/inboundMessage.js';
import { summarizeProfile } from './support/inboundProfile.js';

const TOTAL = Number(process.argv[2] ?? 10_000);
const WATCHERS = Number(process.argv[3] ?? 200);
const HALF = Math.floor(TOTAL / 2);
const RAW_FOLDERS = ['RawA', 'RawD'];
const GATEWAY_FOLDERS = ['GwB', 'GwC'];
const PER_MESSAGE_LIMIT = 2000; // the per-message diagnosis round reads at most this many
const SEEN_BATCH = 500; // the raw loop marks \Seen per 500 messages (one STORE each)
const PER_USER_LIMIT = 10; // Dovecot's default mail_max_userip_connections, which the bed keeps
const SECRET = 'whsec-bench-0123456789abcdef';

interface BedInfo {
  control: string;
  imapPort: number;
  caPem: string;
  issuer: string;
  authority: string;
  tenant: string;
  client: { clientId: string; clientSecret: string };
  users: { alice: string; bob: string; carol: { email: string; password: string } };
  tokens: Record<'alice' | 'bob', { access: string; refresh: string | undefined }>;
  setupSeconds: number;
}
interface GatewayInfo {
  url: string;
  control: string;
  pid: number;
}
interface Usage {
  cpuMs: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}
interface SinkStats {
  count: number;
  distinct: number;
  bad: number;
  bytes: number;
  firstAt: number;
  lastAt: number;
}

const getJson = async <T>(url: string): Promise<T> => {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as T;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mb = (bytes: number) => bytes / 1_048_576;

// If the bench fails halfway, its helper processes must not outlive it (the bed's SIGTERM handler stops Dovecot).
const children: BenchChild<unknown>[] = [];
process.on('exit', () => {
  for (const c of children) if (c.child.exitCode === null) c.child.kill('SIGTERM');
});
const setupStart = Date.now();
const bed = await startBenchChild<BedInfo>('bench/support/inboundBedProcess.ts', [String(HALF), RAW_FOLDERS.join(','), GATEWAY_FOLDERS.join(',')], 900_000);
children.push(bed);
const sink = await startBenchChild<{ url: string }>('bench/support/inboundSinkProcess.ts');
children.push(sink);
console.log(`setup: ${2 * HALF} messages delivered over LMTP to alice and bob (${HALF} per folder) in ${bed.info.setupSeconds.toFixed(1)} s; bed ready after ${((Date.now() - setupStart) / 1000).toFixed(1)} s`);

// Mailgate's data: alice's and bob's Microsoft credentials with the bed's tokens, an IMAP server for each (STARTTLS,
// XOAUTH2) and one for carol (password), an admin API key.
const masterKey = generateMasterKey();
const prepared = await openTestServices({ masterKey });
const expiresAt = new Date(Date.now() + 3_500_000).toISOString();
for (const who of ['alice', 'bob'] as const) {
  await prepared.credentials.add({
    name: who,
    provider: 'microsoft',
    tenant: bed.info.tenant,
    authority: bed.info.authority,
    issuer: bed.info.issuer,
    clientId: bed.info.client.clientId,
    clientSecret: bed.info.client.clientSecret,
    email: bed.info.users[who],
    protocols: ['imap'],
  });
  await prepared.credentialRepo.saveTokens(who, { accessToken: new Secret(bed.info.tokens[who].access), refreshToken: new Secret(bed.info.tokens[who].refresh ?? ''), tokenType: 'Bearer', expiresAt, grantedScopes: undefined }, { reason: 'bench' });
}
const imapServer = { protocol: 'imap', host: '127.0.0.1', port: bed.info.imapPort, security: 'starttls', tlsCa: bed.info.caPem } as const;
await prepared.servers.add({ ...imapServer, name: 'alice-imap', username: bed.info.users.alice, auth: { type: 'oauth2', credential: 'alice' } });
await prepared.servers.add({ ...imapServer, name: 'bob-imap', username: bed.info.users.bob, auth: { type: 'oauth2', credential: 'bob' } });
await prepared.servers.add({ ...imapServer, name: 'carol-imap', username: bed.info.users.carol.email, auth: { type: 'password', password: bed.info.users.carol.password } });
// The same three without tlsCa (and so without verification): the TLS options a public provider's server gets.
const noCa = { protocol: 'imap', host: '127.0.0.1', port: bed.info.imapPort, security: 'starttls', tlsRejectUnauthorized: false } as const;
await prepared.servers.add({ ...noCa, name: 'alice-imap-noca', username: bed.info.users.alice, auth: { type: 'oauth2', credential: 'alice' } });
await prepared.servers.add({ ...noCa, name: 'bob-imap-noca', username: bed.info.users.bob, auth: { type: 'oauth2', credential: 'bob' } });
await prepared.servers.add({ ...noCa, name: 'carol-imap-noca', username: bed.info.users.carol.email, auth: { type: 'password', password: bed.info.users.carol.password } });
const adminKey = (await prepared.apiKeys.create('bench', ['admin'])).key.reveal();
const cwd = prepared.cwd;
await prepared.close();

async function startGatewayProcess(profiling: 'profile' | 'noprofile'): Promise<BenchChild<GatewayInfo>> {
  const gw = await startBenchChild<GatewayInfo>('bench/support/inboundGatewayProcess.ts', [cwd, masterKey, `127.0.0.1:${await getFreePort()}`, profiling]);
  children.push(gw);
  return gw;
}

async function api(gateway: BenchChild<GatewayInfo>, method: string, route: string, body?: unknown): Promise<any> {
  const res = await fetch(`${gateway.info.url}${route}`, {
    method,
    headers: { authorization: `Bearer ${adminKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${route} answered ${res.status}: ${text}`);
  return text ? JSON.parse(text) : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Throughput
// ---------------------------------------------------------------------------------------------------------------

const addresses = (value: AddressObject | AddressObject[] | undefined) =>
  (value === undefined ? [] : Array.isArray(value) ? value : [value]).flatMap((a) => a.value).map((v) => ({ name: v.name ?? '', address: v.address ?? '' }));

function rawClient(user: 'alice' | 'bob' = 'alice'): ImapFlow {
  const client = new ImapFlow({
    host: '127.0.0.1',
    port: bed.info.imapPort,
    secure: false,
    doSTARTTLS: true,
    // as the watcher does for a server with tlsCa
    tls: { ca: [...tls.rootCertificates, bed.info.caPem], minVersion: 'TLSv1.2' },
    auth: { user: bed.info.users[user], accessToken: bed.info.tokens[user].access },
    logger: false,
  });
  client.on('error', () => undefined);
  return client;
}

/** The HTTP client of the watcher (node:http, one kept-open connection), for the raw loop's "same client" rounds. */
const httpAgent = new http.Agent({ keepAlive: true, timeout: 4000 });
const httpPost = (url: string, body: string) =>
  new Promise<number>((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent: httpAgent, headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });

/**
 * Parse with mailparser, POST the JSON to the sink (`fetch`, keep-alive; or node:http as the watcher does): what the
 * watcher does with each message, minus signing and bookkeeping.
 */
async function postMessage(source: Buffer, mailbox: { folder: string; uid: number; uidValidity: string }, round: string, client: 'fetch' | 'http' = 'fetch'): Promise<void> {
  const parsed = await simpleParser(source, { skipImageLinks: true, skipTextToHtml: true, skipTextLinks: true });
  const headers: Record<string, string> = {};
  for (const line of parsed.headerLines) headers[line.key] = line.line.slice(line.line.indexOf(':') + 1).trim();
  const body = JSON.stringify({
    event: 'message',
    watcher: 'raw',
    mailbox,
    message: {
      messageId: parsed.messageId ?? null,
      date: parsed.date?.toISOString() ?? null,
      subject: parsed.subject ?? null,
      from: addresses(parsed.from),
      to: addresses(parsed.to),
      cc: addresses(parsed.cc),
      inReplyTo: parsed.inReplyTo ?? null,
      headers,
      text: parsed.text ?? null,
      html: typeof parsed.html === 'string' ? parsed.html : null,
      attachments: parsed.attachments.map((a) => ({ filename: a.filename ?? null, contentType: a.contentType, size: a.size, content: a.content.toString('base64') })),
      size: source.length,
    },
  });
  if (client === 'http') {
    const status = await httpPost(`${sink.info.url}/hook/${round}`, body);
    if (status !== 200) throw new Error(`sink answered ${status}`);
    return;
  }
  const res = await fetch(`${sink.info.url}/hook/${round}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  await res.body?.cancel();
  if (res.status !== 200) throw new Error(`sink answered ${res.status}`);
}

interface RawResult {
  seconds: number;
  cpuMs: number;
  count: number;
}
const finish = (start: number, cpu: NodeJS.CpuUsage, count: number): RawResult => {
  const used = process.cpuUsage(cpu);
  return { seconds: (performance.now() - start) / 1000, cpuMs: (used.user + used.system) / 1000, count };
};

/**
 * The raw baseline: one imapflow session, FETCH the folder (500 messages per command, streamed), parse and POST each
 * message, then mark those 500 \Seen with one STORE. "fetch-only" fetches and does nothing else.
 */
async function rawRound(folder: string, round: string, work: 'full' | 'fetch-only', poster: 'fetch' | 'http' = 'fetch'): Promise<RawResult> {
  const cpu = process.cpuUsage();
  const start = performance.now();
  const client = rawClient();
  await client.connect();
  const mailbox = await client.mailboxOpen(folder);
  let count = 0;
  for (let from = 1; from <= mailbox.exists; from += SEEN_BATCH) {
    const uids: number[] = [];
    for await (const msg of client.fetch(`${from}:${Math.min(mailbox.exists, from + SEEN_BATCH - 1)}`, { source: true, uid: true }) as AsyncIterable<FetchMessageObject>) {
      count += 1;
      if (work === 'fetch-only') continue;
      await postMessage(msg.source!, { folder, uid: msg.uid, uidValidity: String(mailbox.uidValidity) }, round, poster);
      uids.push(msg.uid);
    }
    if (uids.length > 0) await client.messageFlagsAdd(uids.join(','), ['\\Seen'], { uid: true });
  }
  await client.logout();
  return finish(start, cpu, count);
}

/**
 * The raw loop in the watcher's pattern: UID SEARCH UNSEEN, then per message one UID FETCH, parse + POST, one UID STORE
 * (three round trips per message, nothing pipelined). Run on a folder whose \Seen flags were cleared, up to `limit`.
 */
async function rawPerMessageRound(folder: string, round: string, limit: number): Promise<RawResult> {
  await markUnseen(folder);
  const cpu = process.cpuUsage();
  const start = performance.now();
  const client = rawClient();
  await client.connect();
  const mailbox = await client.mailboxOpen(folder);
  const uids = ((await client.search({ seen: false }, { uid: true })) || []).sort((x, y) => x - y).slice(0, limit);
  for (const uid of uids) {
    const msg = (await client.fetchOne(String(uid), { source: true, size: true }, { uid: true })) as FetchMessageObject | false;
    if (!msg || !msg.source) throw new Error(`uid ${uid} vanished`);
    await postMessage(msg.source, { folder, uid, uidValidity: String(mailbox.uidValidity) }, round);
    await client.messageFlagsAdd(String(uid), ['\\Seen'], { uid: true });
  }
  await client.logout();
  return finish(start, cpu, uids.length);
}

/** Clears \\Seen on a raw folder, so that a round can run on it again (not timed). */
async function markUnseen(folder: string): Promise<void> {
  const reset = rawClient();
  await reset.connect();
  await reset.mailboxOpen(folder);
  await reset.messageFlagsRemove('1:*', ['\\Seen']);
  await reset.logout();
}

async function unseenIn(user: 'alice' | 'bob', folder: string): Promise<number> {
  const client = new ImapFlow({ host: '127.0.0.1', port: bed.info.imapPort, secure: false, doSTARTTLS: true, tls: { ca: [bed.info.caPem] }, auth: { user: bed.info.users[user], accessToken: bed.info.tokens[user].access }, logger: false });
  await client.connect();
  try {
    const status = await client.status(folder, { unseen: true });
    return status ? (status.unseen ?? -1) : -1;
  } finally {
    await client.logout();
  }
}

/** Mailgate: a watcher on bob's folder, added through the API of the running gateway; timed until the sink has them all. */
async function gatewayRound(gateway: BenchChild<GatewayInfo>, folder: string, round: string): Promise<{ seconds: number; firstSeconds: number; cpuMs: number; stats: SinkStats }> {
  const before = await getJson<Usage>(`${gateway.info.control}/usage`);
  const start = Date.now();
  await api(gateway, 'POST', '/api/v1/watchers', { name: `bench-${round}`, server: 'bob-imap', folder, after: 'seen', webhook: { url: `${sink.info.url}/hook/${round}`, secret: SECRET } });
  const deadline = start + Math.max(120_000, HALF * 20);
  let stats = await getJson<SinkStats>(`${sink.info.url}/stats/${round}`);
  for (let polls = 0; stats.count < HALF; polls++) {
    if (Date.now() > deadline) throw new Error(`round ${round}: only ${stats.count}/${HALF} webhooks after ${(Date.now() - start) / 1000} s`);
    await sleep(20);
    stats = await getJson<SinkStats>(`${sink.info.url}/stats/${round}`);
    if (polls % 250 === 249) {
      const view = await api(gateway, 'GET', `/api/v1/watchers/bench-${round}`);
      if (view.status.lastError) console.log(`  round ${round}: watcher ${view.status.state}: ${view.status.lastError}`);
    }
  }
  const after = await getJson<Usage>(`${gateway.info.control}/usage`);
  // The sink's clock and ours are the same machine's; lastAt is when the last webhook arrived.
  const seconds = (stats.lastAt - start) / 1000;
  await sleep(300); // the last \Seen and delivery record land after the last webhook
  const view = await api(gateway, 'GET', `/api/v1/watchers/bench-${round}`);
  if (view.status.delivered !== HALF) console.log(`  round ${round}: watcher reports ${view.status.delivered} delivered, ${view.status.pending} pending, ${view.status.parked} parked`);
  await api(gateway, 'DELETE', `/api/v1/watchers/bench-${round}`);
  return { seconds, firstSeconds: (stats.firstAt - start) / 1000, cpuMs: after.cpuMs - before.cpuMs, stats };
}

const gateway = await startGatewayProcess('profile');
// Warm-up on both sides: a few messages each, so neither side pays first-use costs (JIT, module loading) in its round.
// (A small folder "Warm" per user, filled through IMAP APPEND.)
{
  const warm = 50;
  for (const user of ['alice', 'bob'] as const) {
    const client = new ImapFlow({ host: '127.0.0.1', port: bed.info.imapPort, secure: false, doSTARTTLS: true, tls: { ca: [bed.info.caPem] }, auth: { user: bed.info.users[user], accessToken: bed.info.tokens[user].access }, logger: false });
    await client.connect();
    await client.mailboxCreate('Warm');
    for (let i = 0; i < warm; i++) await client.append('Warm', inboundMessage(1_000_000 + i, bed.info.users[user]));
    await client.logout();
  }
  await rawRound('Warm', 'warm-raw', 'full');
  await markUnseen('Warm');
  await rawRound('Warm', 'warm-raw-http', 'full', 'http');
  const start = Date.now();
  await api(gateway, 'POST', '/api/v1/watchers', { name: 'bench-warm', server: 'bob-imap', folder: 'Warm', after: 'seen', webhook: { url: `${sink.info.url}/hook/warm-gw`, secret: SECRET } });
  while ((await getJson<SinkStats>(`${sink.info.url}/stats/warm-gw`)).count < warm) {
    if (Date.now() - start > 60_000) throw new Error('warm-up: the watcher did not deliver');
    await sleep(50);
  }
  await sleep(300);
  await api(gateway, 'DELETE', '/api/v1/watchers/bench-warm');
}

// ABBA: raw, Mailgate, Mailgate, raw, each over its own folder of HALF identical messages. After each raw round the
// same folder is fetched once more without parsing or posting: the ceiling of IMAP fetching alone.
// Each raw folder also serves a round of the raw loop POSTing with node:http, the watcher's client (its \\Seen cleared
// first): a, a-http | b, c | d-http, d.
const a = await rawRound(RAW_FOLDERS[0]!, 'a', 'full');
const a2 = await rawRound(RAW_FOLDERS[0]!, 'a-fetch', 'fetch-only');
console.log(`  round a (raw): ${a.count} in ${a.seconds.toFixed(2)} s; fetch alone ${a2.seconds.toFixed(2)} s`);
await markUnseen(RAW_FOLDERS[0]!);
const ah = await rawRound(RAW_FOLDERS[0]!, 'a-http', 'full', 'http');
console.log(`  round a-http (raw, node:http): ${ah.count} in ${ah.seconds.toFixed(2)} s`);
const b = await gatewayRound(gateway, GATEWAY_FOLDERS[0]!, 'b');
console.log(`  round b (mailgate): ${b.stats.count} in ${b.seconds.toFixed(2)} s (the first webhook after ${b.firstSeconds.toFixed(2)} s)`);
const c = await gatewayRound(gateway, GATEWAY_FOLDERS[1]!, 'c');
console.log(`  round c (mailgate): ${c.stats.count} in ${c.seconds.toFixed(2)} s (the first webhook after ${c.firstSeconds.toFixed(2)} s)`);
const dh = await rawRound(RAW_FOLDERS[1]!, 'd-http', 'full', 'http');
console.log(`  round d-http (raw, node:http): ${dh.count} in ${dh.seconds.toFixed(2)} s`);
await markUnseen(RAW_FOLDERS[1]!);
const d = await rawRound(RAW_FOLDERS[1]!, 'd', 'full');
const d2 = await rawRound(RAW_FOLDERS[1]!, 'd-fetch', 'fetch-only');
console.log(`  round d (raw): ${d.count} in ${d.seconds.toFixed(2)} s; fetch alone ${d2.seconds.toFixed(2)} s`);

const sinkA = await getJson<SinkStats>(`${sink.info.url}/stats/a`);
const sinkD = await getJson<SinkStats>(`${sink.info.url}/stats/d`);
const unseen = {
  raw: (await unseenIn('alice', RAW_FOLDERS[0]!)) + (await unseenIn('alice', RAW_FOLDERS[1]!)),
  gateway: (await unseenIn('bob', GATEWAY_FOLDERS[0]!)) + (await unseenIn('bob', GATEWAY_FOLDERS[1]!)),
};
// Diagnosis, after the ABBA rounds and their checks: the raw loop again, but in the watcher's one-message-at-a-time pattern.
const e = await rawPerMessageRound(RAW_FOLDERS[0]!, 'e', Math.min(HALF, PER_MESSAGE_LIMIT));
console.log(`  round e (raw, per message): ${e.count} in ${e.seconds.toFixed(2)} s`);
const profileFile = process.env.BENCH_CPU_PROFILE;
await gateway.stop();

const rawRate = (a.count + d.count) / (a.seconds + d.seconds);
const rawHttpRate = (ah.count + dh.count) / (ah.seconds + dh.seconds);
const fetchRate = (a2.count + d2.count) / (a2.seconds + d2.seconds);
const gatewayRate = (b.stats.count + c.stats.count) / (b.seconds + c.seconds);
const ratio = gatewayRate / rawRate;
const throughputLines = [
  `inbound throughput, ${2 * HALF} messages of ~1.3 KB (as stored), STARTTLS + XOAUTH2 to Dovecot, ABBA, Node ${process.version}`,
  `  raw imapflow fetch only          : ${fetchRate.toFixed(0)} msgs/s`,
  `  raw fetch + parse + POST + \\Seen : ${rawRate.toFixed(0)} msgs/s (client CPU ${((a.cpuMs + d.cpuMs) / (a.count + d.count)).toFixed(2)} ms/msg)`,
  `  the same, POST with node:http    : ${rawHttpRate.toFixed(0)} msgs/s (client CPU ${((ah.cpuMs + dh.cpuMs) / (ah.count + dh.count)).toFixed(2)} ms/msg)`,
  `  raw, per message (watcher's pattern: UID FETCH, parse + POST, UID STORE each; ${e.count} msgs, once, after ABBA): ${(e.count / e.seconds).toFixed(0)} msgs/s (client CPU ${(e.cpuMs / e.count).toFixed(2)} ms/msg)`,
  `  mailgate watcher -> webhook      : ${gatewayRate.toFixed(0)} msgs/s (gateway CPU ${((b.cpuMs + c.cpuMs) / (b.stats.count + c.stats.count)).toFixed(2)} ms/msg)`,
  `  ratio mailgate / raw (same work) : ${ratio.toFixed(2)} (target >= 0.8); / raw with node:http: ${(gatewayRate / rawHttpRate).toFixed(2)}; / fetch only: ${(gatewayRate / fetchRate).toFixed(2)}`,
  `  checks: sink got raw ${sinkA.distinct + sinkD.distinct}/${2 * HALF} distinct, mailgate ${b.stats.distinct + c.stats.distinct}/${2 * HALF} distinct (${b.stats.count + c.stats.count - b.stats.distinct - c.stats.distinct} duplicates, ${b.stats.bad + c.stats.bad} bad bodies); unseen left: raw ${unseen.raw}, mailgate ${unseen.gateway}`,
  `  webhook body size: raw ${(sinkA.bytes / Math.max(1, sinkA.count)).toFixed(0)} B, mailgate ${(b.stats.bytes / Math.max(1, b.stats.count)).toFixed(0)} B`,
];
console.log(`\n${throughputLines.join('\n')}`);
if (profileFile) {
  const summary = summarizeProfile(profileFile);
  console.log(`\ngateway CPU profile (${profileFile}): ${(summary.busyMs / 1000).toFixed(1)} s busy of ${(summary.totalMs / 1000).toFixed(1)} s`);
  console.log('  self time by area:');
  for (const { area, ms } of summary.areas) console.log(`    ${((100 * ms) / summary.busyMs).toFixed(1).padStart(5)} %  ${area}`);
  console.log('  self time, top functions:');
  for (const { fn, ms } of summary.selfTop) console.log(`    ${((100 * ms) / summary.busyMs).toFixed(1).padStart(5)} %  ${fn}`);
  console.log('  inclusive (synchronous) time, Mailgate functions:');
  for (const { fn, ms } of summary.inclusiveTop) console.log(`    ${((100 * ms) / summary.busyMs).toFixed(1).padStart(5)} %  ${fn}`);
}

// ---------------------------------------------------------------------------------------------------------------
// 2. Memory of idle watchers, in a fresh gateway process
// ---------------------------------------------------------------------------------------------------------------

interface Point {
  watchers: number;
  sessions: number;
  usage: Pick<Usage, 'rss' | 'heapUsed' | 'heapTotal' | 'external'>;
}
const sessionCount = async () => Object.values(await getJson<Record<string, number>>(`${bed.info.control}/sessions`)).reduce((sum, n) => sum + n, 0);

/** A fresh gateway process; watchers added through its API in steps (round-robin over `servers`), memory after each step once all are idle. */
async function idleGateway(servers: string[], steps: number[], beforeStep: (gateway: BenchChild<GatewayInfo>, step: number) => Promise<void> = async () => undefined): Promise<Point[]> {
  const gw = await startGatewayProcess('noprofile');
  const settled = async () => {
    await sleep(5000);
    return getJson<Usage>(`${gw.info.control}/usage?gc=1`);
  };
  let added = 0;
  const allIdle = async (expected: number) => {
    const start = Date.now();
    for (;;) {
      const list = ((await api(gw, 'GET', '/api/v1/watchers')).watchers ?? []) as { name: string; status: { state: string; lastError: string | null } }[];
      const mine = list.filter((w) => w.name.startsWith('idle-'));
      const idleCount = mine.filter((w) => w.status.state === 'idle').length;
      if (mine.length === expected && idleCount === expected) return;
      if (Date.now() - start > 120_000) {
        const stuck = mine.filter((w) => w.status.state !== 'idle').slice(0, 3);
        throw new Error(`${idleCount}/${expected} watchers idle after 120 s; e.g. ${JSON.stringify(stuck.map((w) => [w.name, w.status.state, w.status.lastError]))}`);
      }
      await sleep(500);
    }
  };
  try {
    // Warm the API (fastify, zod, first queries) so that its first-use memory is not counted as the watchers'.
    for (let i = 0; i < 20; i++) await api(gw, 'GET', '/api/v1/watchers');
    const points: Point[] = [{ watchers: 0, sessions: await sessionCount(), usage: await settled() }];
    for (const step of steps) {
      await beforeStep(gw, step);
      for (; added < step; added++) {
        await api(gw, 'POST', '/api/v1/watchers', { name: `idle-${String(added).padStart(3, '0')}`, server: servers[added % servers.length], after: 'seen', webhook: { url: `${sink.info.url}/hook/idle`, secret: SECRET } });
      }
      await allIdle(step);
      const usage = await settled();
      points.push({ watchers: step, sessions: await sessionCount(), usage });
    }
    return points;
  } finally {
    // Watchers live in the store: remove them, or the next gateway process would start them again.
    for (let i = 0; i < added; i++) await api(gw, 'DELETE', `/api/v1/watchers/idle-${String(i).padStart(3, '0')}`).catch(() => undefined);
    await gw.stop();
  }
}

/** The raw side: N imapflow sessions with the watcher's options in a plain Node process (same users, same order). */
async function idleRawClients(count: number, ca: 'roots+bed' | 'bed' | 'none'): Promise<Point[]> {
  const logins = [
    { user: bed.info.users.alice, accessToken: bed.info.tokens.alice.access },
    { user: bed.info.users.bob, accessToken: bed.info.tokens.bob.access },
    { user: bed.info.users.carol.email, pass: bed.info.users.carol.password },
  ];
  type Memory = Point['usage'];
  const child = await startBenchChild<{ before: Memory; after: Memory; connected: number }>('bench/support/inboundIdleClientsProcess.ts', [JSON.stringify({ count, imapPort: bed.info.imapPort, caPem: bed.info.caPem, ca, logins })]);
  children.push(child);
  try {
    return [
      { watchers: 0, sessions: 0, usage: child.info.before },
      { watchers: child.info.connected, sessions: await sessionCount(), usage: child.info.after },
    ];
  } finally {
    await child.stop();
  }
}

const describePoints = (title: string, points: Point[]): string[] => {
  const lines = [title];
  for (const p of points) lines.push(`  ${String(p.watchers).padStart(3)} (${p.sessions} IMAP sessions in Dovecot): RSS ${mb(p.usage.rss).toFixed(1)} MB, heapUsed ${mb(p.usage.heapUsed).toFixed(1)} MB (heapTotal ${mb(p.usage.heapTotal).toFixed(1)}), external ${mb(p.usage.external).toFixed(1)} MB`);
  for (let i = 1; i < points.length; i++) {
    const [p, q] = [points[i - 1]!, points[i]!];
    const n = q.watchers - p.watchers;
    lines.push(`    each, ${p.watchers} -> ${q.watchers}: RSS ${(mb(q.usage.rss - p.usage.rss) / n).toFixed(2)} MB, heapUsed ${(mb(q.usage.heapUsed - p.usage.heapUsed) / n).toFixed(3)} MB`);
  }
  const [first, last] = [points[0]!, points.at(-1)!];
  if (points.length > 2) lines.push(`    each, 0 -> ${last.watchers}: RSS ${(mb(last.usage.rss - first.usage.rss) / last.watchers).toFixed(2)} MB, heapUsed ${(mb(last.usage.heapUsed - first.usage.heapUsed) / last.watchers).toFixed(3)} MB`);
  return lines;
};

if (WATCHERS === 0) {
  await sink.stop();
  await bed.stop();
  const bad = a.count + d.count + ah.count + dh.count !== 4 * HALF || b.stats.distinct + c.stats.distinct !== 2 * HALF || unseen.raw !== 0 || unseen.gateway !== 0;
  process.exit(bad ? 1 : 0);
}

// (a) Mailgate, servers with tlsCa (the bed's self-signed CA): as many as the bed allows (10 sessions per user and IP;
// alice, bob: XOAUTH2; carol: password), then one more is refused; then the limits are raised and it goes on to WATCHERS.
const bedLimit = Math.min(WATCHERS, 3 * PER_USER_LIMIT);
let refusal = '';
let raised = '';
const withCa = await idleGateway(['alice-imap', 'bob-imap', 'carol-imap'], WATCHERS > bedLimit ? [bedLimit, WATCHERS] : [bedLimit], async (gw, step) => {
  if (step <= bedLimit) return;
  await api(gw, 'POST', '/api/v1/watchers', { name: 'probe-over-limit', server: 'alice-imap', after: 'seen', webhook: { url: `${sink.info.url}/hook/idle`, secret: SECRET } });
  for (let i = 0; i < 40 && !refusal; i++) {
    await sleep(250);
    refusal = (await api(gw, 'GET', '/api/v1/watchers/probe-over-limit')).status.lastError ?? '';
  }
  await api(gw, 'DELETE', '/api/v1/watchers/probe-over-limit');
  // The limits of this bed's generated Dovecot config (a temp dir; test/testbed's code is unchanged), then a reload.
  raised = await getJson<string>(`${bed.info.control}/raise-limits?connections=${WATCHERS + 50}`);
});
if (refusal) console.log(`
per-user limit: watcher ${bedLimit + 1} was refused: ${refusal}
  raised for the rest: ${raised}`);
// (b) Mailgate, servers without tlsCa (verification off): the TLS options a public provider's server gets (no CA list).
const withoutCa = await idleGateway(['alice-imap-noca', 'bob-imap-noca', 'carol-imap-noca'], [WATCHERS]);
// (c) raw imapflow, the same sessions, with each TLS option.
const rawRootsCa = await idleRawClients(WATCHERS, 'roots+bed');
const rawBedCa = await idleRawClients(WATCHERS, 'bed');
const rawNoCa = await idleRawClients(WATCHERS, 'none');

const memoryLines = [
  `idle watchers: IDLE on INBOX over STARTTLS, a third each alice / bob (XOAUTH2) and carol (password); process memory after 5 s and a full GC`,
  ...describePoints('Mailgate gateway, servers with tlsCa (ca = Node roots + the bed CA, as the watcher builds it):', withCa),
  ...describePoints('Mailgate gateway, servers without tlsCa (no ca option, tlsRejectUnauthorized false):', withoutCa),
  ...describePoints('raw imapflow, ca = Node roots + bed CA:', rawRootsCa),
  ...describePoints('raw imapflow, ca = bed CA only:', rawBedCa),
  ...describePoints('raw imapflow, no ca option:', rawNoCa),
];
console.log(`\n${memoryLines.join('\n')}`);

await sink.stop();
await bed.stop();
console.log(`\ndata dir: ${path.join(cwd, 'data')}`);
const badThroughput = a.count + d.count + ah.count + dh.count !== 4 * HALF || b.stats.distinct + c.stats.distinct !== 2 * HALF || unseen.raw !== 0 || unseen.gateway !== 0;
const badMemory = [withCa, withoutCa, rawRootsCa, rawBedCa, rawNoCa].some((points) => points.at(-1)!.watchers !== WATCHERS);
if (badThroughput || badMemory) process.exitCode = 1;
