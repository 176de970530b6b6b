// Benchmark: submissions per second into the outbox through the SMTP relay, beside the HTTP API path (POST /api/v1/messages) and nodemailer submitting to a bare smtp-server; same ~1 KB message, same concurrency, one run.
// Run: npx tsx bench/relay.ts [messages=4000] [concurrency=20]
import Database from 'better-sqlite3';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { generateMasterKey } from '../src/secrets/keyring.js';
import { openTestServices } from '../test/support/services.js';
import { getFreePort } from '../test/testbed/ports.js';
import { startBenchChild } from './support/childProcess.js';

const TOTAL = Number(process.argv[2] ?? 4000);
const CONCURRENCY = Number(process.argv[3] ?? 20);
/** Each round stops at this many seconds even if unfinished (its rate is then over what it did). */
const ROUND_LIMIT_MS = 60_000;
const BODY = 'x'.repeat(900) + '\n'; // about 1 KB messages, as in bench/outbox.ts
const PASSWORD = 'bench-relay-password';

const masterKey = generateMasterKey();
const prepared = await openTestServices({ masterKey });
await prepared.servers.add({ name: 'nowhere', protocol: 'smtp', host: '127.0.0.1', port: 9, security: 'none', auth: { type: 'none' } });
await prepared.senders.add({ name: 'alerts', primary: 'nowhere', from: 'alerts@example.com' });
await prepared.relayAccounts.add({ name: 'device', sender: 'alerts', password: PASSWORD });
const key = (await prepared.apiKeys.create('bench', ['send'])).key.reveal();
const cwd = prepared.cwd;
await prepared.close();

const gateway = await startBenchChild<{ url: string; relayPort: number }>('bench/support/relayGatewayProcess.ts', [cwd, masterKey, String(await getFreePort()), String(await getFreePort())]);
const bare = await startBenchChild<{ port: number }>('bench/support/relayBareSmtpProcess.ts');

async function pool(count: number, work: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const deadline = Date.now() + ROUND_LIMIT_MS;
  let done = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let i = next++; i < count && Date.now() < deadline; i = next++) {
        await work(i);
        done++;
      }
    }),
  );
  return done;
}

async function round(name: string, count: number, work: (i: number) => Promise<void>): Promise<number> {
  const start = performance.now();
  const done = await pool(count, work);
  const rate = done / ((performance.now() - start) / 1000);
  console.log(`  ${name}: ${done} in ${((performance.now() - start) / 1000).toFixed(2)} s = ${rate.toFixed(0)}/s`);
  return rate;
}

const api = (tag: string) =>
  round(`api ${tag}`, TOTAL, async (i) => {
    const res = await fetch(`${gateway.info.url}/api/v1/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ sender: 'alerts', to: 'ops@example.com', subject: `bench api ${tag} ${i}`, text: BODY }),
    });
    if (res.status !== 202) throw new Error(`POST answered ${res.status}: ${await res.text()}`);
    await res.arrayBuffer();
  });

/** nodemailer, pooled: one SMTP connection per concurrent caller, logged in once, many messages each. */
function smtpRound(name: string, port: number, auth: { user: string; pass: string }) {
  return async (tag: string) => {
    const transport = nodemailer.createTransport({ pool: true, host: '127.0.0.1', port, secure: false, ignoreTLS: true, maxConnections: CONCURRENCY, maxMessages: Infinity, auth });
    const rate = await round(`${name} ${tag}`, TOTAL, async (i) => {
      const info = await transport.sendMail({ from: 'alerts@example.com', to: 'ops@example.com', subject: `bench ${name} ${tag} ${i}`, text: BODY });
      if (!/^250 /.test(info.response)) throw new Error(`${name} answered ${info.response}`);
    });
    transport.close();
    return rate;
  };
}
const relay = smtpRound('relay', gateway.info.relayPort, { user: 'device', pass: PASSWORD });
const bareSmtp = smtpRound('bare smtp-server', bare.info.port, { user: 'device', pass: PASSWORD });

// A failed round must not leave the helper processes running.
process.on('uncaughtException', (err) => {
  console.error(err);
  void Promise.all([gateway.stop(), bare.stop()]).then(() => process.exit(1));
});
process.on('unhandledRejection', (err) => {
  console.error(err);
  void Promise.all([gateway.stop(), bare.stop()]).then(() => process.exit(1));
});

// Warm-up, then A B C C B A so drift (SQLite's file growing, the JIT) weighs on every path alike.
await api('warm');
await relay('warm');
await bareSmtp('warm');
const rates = { api: [] as number[], relay: [] as number[], bare: [] as number[] };
rates.api.push(await api('1'));
rates.relay.push(await relay('1'));
rates.bare.push(await bareSmtp('1'));
rates.bare.push(await bareSmtp('2'));
rates.relay.push(await relay('2'));
rates.api.push(await api('2'));

const db = new Database(path.join(cwd, 'data', 'mailgate.db'), { readonly: true });
const stored = db.prepare(`select sum(raw is not null) as raw, sum(raw is null) as json from outbox`).get() as { raw: number; json: number };
db.close();
await gateway.stop();
await bare.stop();

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const [apiRate, relayRate, bareRate] = [mean(rates.api), mean(rates.relay), mean(rates.bare)];
console.log(`relay submissions, ${TOTAL} messages of ~1 KB per round, concurrency ${CONCURRENCY} (HTTP clients / pooled SMTP connections), plain loopback, no outbox worker, ABCCBA, Node ${process.version}`);
console.log(`  HTTP API into the outbox      : ${apiRate.toFixed(0)}/s`);
console.log(`  SMTP relay into the outbox    : ${relayRate.toFixed(0)}/s`);
console.log(`  bare smtp-server (no storage) : ${bareRate.toFixed(0)}/s`);
console.log(`  ratio relay / API             : ${(relayRate / apiRate).toFixed(2)} (target >= 0.8)`);
console.log(`  ratio relay / bare smtp-server: ${(relayRate / bareRate).toFixed(2)}`);
console.log(`  stored: ${stored.raw} raw (relay), ${stored.json} JSON (API)`);
