// Proves the relay's 250 is a promise kept: `mailgate serve` SIGKILLed right after the relay answered 250 (the upstream unreachable, so nothing was sent yet); after a restart the message is delivered.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { expect, it } from 'vitest';
import { generateMasterKey } from '../../src/secrets/keyring.js';
import { getFreePort } from '../testbed/ports.js';
import { useTestbed } from '../testbed/useTestbed.js';
import { runCli, startServe, tempDir } from '../support/cli.js';
import { eventually } from '../support/mailbox.js';
import { openTestServices } from '../support/services.js';
import { message, smtplib } from './clients.js';

const bed = useTestbed();

it('delivers a message the relay answered 250 for, after a SIGKILL of serve and a restart', async () => {
  const cwd = tempDir();
  const carol = bed.mail.passwordUser;
  const env = { MAILGATE_MASTER_KEY: generateMasterKey() };
  const relayPort = await getFreePort();
  const writeConfig = (submissionPort: number) => {
    const config = {
      outbox: { retryBaseSeconds: 1 },
      // On PostgreSQL (MAILGATE_TEST_DATABASE=postgres) the killed instance's message goes back to the queue one
      // lease period later (another instance may still be sending it); on SQLite at once.
      instances: { leaseSeconds: 5 },
      servers: { submission: { protocol: 'smtp', host: '127.0.0.1', port: submissionPort, security: submissionPort === bed.mail.ports.submission ? 'starttls' : 'none', tlsCa: bed.mail.caPem, username: carol.email, auth: { type: 'password', password: carol.password } } },
      senders: { alarms: { primary: 'submission', from: carol.email } },
      relay: { listeners: [{ listen: `127.0.0.1:${relayPort}`, tls: 'starttls' }] },
    };
    fs.writeFileSync(path.join(cwd, 'mailgate.yaml'), JSON.stringify(config, null, 2));
  };
  // First run: the upstream accepts connections and never greets, so the message is still in the outbox (being sent,
  // nothing delivered) when serve is killed.
  const silent = net.createServer((socket) => socket.on('error', () => undefined));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
  writeConfig((silent.address() as net.AddressInfo).port);
  const setup = await openTestServices({ cwd, masterKey: env.MAILGATE_MASTER_KEY });
  await setup.servers.syncFromConfig(setup.config.servers);
  await setup.senders.syncFromConfig(setup.config.senders);
  await setup.relayAccounts.add({ name: 'alarm-panel', sender: 'alarms', password: 'alarm-panel-password' });
  await setup.close();
  // An admin key: a send key reads only the messages it submitted itself, and this one came through the relay.
  const created = await runCli(['apikey', 'create', '--name', 'reader', '--scope', 'admin'], { cwd, env });
  expect(created.code, created.stderr).toBe(0);
  const key = created.stdout.split('\n')[0]!.trim();

  const first = await startServe({ cwd, port: await getFreePort(), env });
  // A failure before the kill must not leave this serve running.
  const orphan = (err: unknown) => first.stop('SIGKILL').then(() => Promise.reject(err));
  // /healthz answers once HTTP listens; the relay starts a moment later.
  const relayLine = () =>
    first
      .output()
      .split('\n')
      .map((l) => (l.startsWith('{') ? (JSON.parse(l) as { msg?: string; certificate?: string }) : {}))
      .find((l) => l.msg === 'SMTP relay listening');
  const listening = await eventually(async () => relayLine(), (l) => l !== undefined, 10_000, 'the relay to listen').catch(orphan);
  expect(listening?.certificate, first.output()).toBeDefined();
  const subject = `relay-crash-${Date.now()}`;
  const result = await smtplib({
    port: relayPort,
    security: 'starttls',
    caFile: listening!.certificate!,
    auth: { mechanism: 'PLAIN', user: 'alarm-panel', password: 'alarm-panel-password' },
    messages: [{ from: carol.email, to: [bed.auth.users.bob.email], data: message({ From: carol.email, To: bed.auth.users.bob.email, Subject: subject }, 'survives a crash') }],
  }).catch(orphan);
  const data = result.steps.find((s) => s.step === 'data');
  const id = /^2\.0\.0 queued as ([0-9a-z]+)$/.exec(data?.text ?? '')?.[1];
  const killed = await first.stop('SIGKILL');
  expect(id, JSON.stringify(result)).toBeDefined();
  expect(killed).toBeNull();
  silent.close();
  expect(bed.mail.sink.received.some((m) => m.raw.toString().includes(subject))).toBe(false);

  writeConfig(bed.mail.ports.submission);
  const port = await getFreePort();
  const second = await startServe({ cwd, port, env });
  try {
    const view = await eventually(
      async () => (await (await fetch(`${second.url}/api/v1/messages/${id}`, { headers: { authorization: `Bearer ${key}` } })).json()) as { status?: string },
      (v) => v.status === 'sent' || v.status === 'failed',
      30_000,
      `message ${id}`,
    );
    expect(view.status).toBe('sent');
    const delivered = bed.mail.sink.received.filter((m) => m.raw.toString().includes(`Subject: ${subject}`));
    expect(delivered).toHaveLength(1);
    expect(delivered[0]!.raw.toString()).toContain('survives a crash');
  } finally {
    expect(await second.stop()).toBe(0);
  }
}, 120_000); // two starts of serve, a restart's retry and delivery: bounded waits inside, each named
