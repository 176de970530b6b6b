// Proves the outbox invariant across a crash: `mailgate serve` killed with SIGKILL while sending; after a restart every accepted message is delivered (at least once; duplicates only for those in flight).
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { getFreePort } from '../testbed/ports.js';
import { useTestbed } from '../testbed/useTestbed.js';
import { runCli, startServe, tempDir } from '../support/cli.js';
import { eventually } from '../support/mailbox.js';

const bed = useTestbed();
const COUNT = 40;
const CONCURRENCY = 2;

it('delivers every accepted message after a SIGKILL mid-send and a restart, none lost', async () => {
  const cwd = tempDir();
  const carol = bed.mail.passwordUser;
  // YAML is a superset of JSON: the CA's PEM needs no YAML quoting this way.
  const config = {
    outbox: { concurrency: CONCURRENCY, retryBaseSeconds: 0.1 },
    servers: { submission: { protocol: 'smtp', host: '127.0.0.1', port: bed.mail.ports.submission, security: 'starttls', tlsCa: bed.mail.caPem, username: carol.email, auth: { type: 'password', password: carol.password } } },
    senders: { alarms: { primary: 'submission', from: carol.email } },
  };
  fs.writeFileSync(path.join(cwd, 'mailgate.yaml'), JSON.stringify(config, null, 2));
  const port = await getFreePort();
  const env = { MAILGATE_LISTEN: `127.0.0.1:${port}` };
  const created = await runCli(['apikey', 'create', '--name', 'alarms', '--scope', 'send'], { cwd, env });
  expect(created.code, created.stderr).toBe(0);
  const key = created.stdout.split('\n')[0]!.trim();

  const first = await startServe({ cwd, port, env });
  const run = Date.now();
  const ids: string[] = [];
  for (let i = 0; i < COUNT; i++) {
    const res = await fetch(`${first.url}/api/v1/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ sender: 'alarms', to: bed.auth.users.bob.email, subject: `crash-${run}-${i}`, text: `message ${i}` }),
    });
    expect(res.status).toBe(202);
    ids.push(((await res.json()) as { id: string }).id);
  }
  const subjects = () => bed.mail.sink.received.map((m) => /^Subject: (crash-\S+)/m.exec(m.raw.toString())?.[1]).filter((s): s is string => s?.startsWith(`crash-${run}-`) ?? false);
  await eventually(async () => subjects().length, (n) => n >= 3, 15_000, 'the first deliveries');
  expect(await first.stop('SIGKILL')).toBeNull();
  const deliveredBeforeKill = subjects().length;
  expect(deliveredBeforeKill).toBeLessThan(COUNT); // the kill really happened mid-queue

  const second = await startServe({ cwd, port, env });
  try {
    for (const id of ids) {
      const status = await eventually(
        async () => ((await (await fetch(`${second.url}/api/v1/messages/${id}`, { headers: { authorization: `Bearer ${key}` } })).json()) as { status: string }).status,
        (s) => s === 'sent' || s === 'failed',
        30_000,
        `message ${id}`,
      );
      expect(status).toBe('sent');
    }
    const delivered = subjects();
    const unique = new Set(delivered);
    expect(unique.size).toBe(COUNT);
    // At-least-once: only messages that were in flight at the kill may arrive twice.
    expect(delivered.length - unique.size).toBeLessThanOrEqual(CONCURRENCY);
    expect(second.output()).toContain('queued again (at-least-once)');

    // The operator's side of the same installation: test the server, send one from the command line and wait for it.
    const tested = await runCli(['server', 'test', 'submission'], { cwd, env });
    expect(tested.code, tested.stderr).toBe(0);
    expect(tested.stdout).toMatch(/^ok +auth /m);
    expect(tested.stdout).toContain('server submission works');
    const sent = await runCli(['send', '--sender', 'alarms', '--to', bed.auth.users.bob.email, '--subject', `cli-${run}`, '--text', 'from the CLI', '--wait', '20'], { cwd, env });
    expect(sent.code, sent.stderr).toBe(0);
    expect(sent.stdout).toMatch(/^sent via submission: 250 /m);

    // --to takes a comma-separated list as its help says (repeated options too), split like the API splits one.
    const both = await runCli(['send', '--sender', 'alarms', '--to', `${bed.auth.users.bob.email},Alice <${bed.auth.users.alice.email}>`, '--subject', `list-${run}`, '--text', 'two', '--wait', '20'], { cwd, env });
    expect(both.code, both.stderr).toBe(0);
    const listed = bed.mail.sink.received.find((m) => m.raw.toString().includes(`Subject: list-${run}`));
    expect(listed?.to.sort()).toEqual([bed.auth.users.alice.email, bed.auth.users.bob.email].sort());

    // Exit codes say what happened: 3 when the followed message failed, 4 when the wait ran out with it still open.
    bed.mail.sink.rejectRecipients.add('nobody@example.test');
    const refused = await runCli(['send', '--sender', 'alarms', '--to', 'nobody@example.test', '--subject', `refused-${run}`, '--text', 'x', '--wait', '20'], { cwd, env });
    expect(refused.code, refused.stderr).toBe(3);
    expect(refused.stderr).toMatch(/^mailgate: message \S+ failed: .*550/m);
    const closedPort = await getFreePort();
    expect((await runCli(['server', 'add', 'nowhere', '--protocol', 'smtp', '--host', '127.0.0.1', '--port', String(closedPort), '--security', 'none'], { cwd, env })).code).toBe(0);
    expect((await runCli(['sender', 'add', 'stuck', '--primary', 'nowhere', '--from', carol.email], { cwd, env })).code).toBe(0);
    const stuck = await runCli(['send', '--sender', 'stuck', '--to', bed.auth.users.bob.email, '--subject', `stuck-${run}`, '--text', 'x', '--wait', '1'], { cwd, env });
    expect(stuck.code, stuck.stderr).toBe(4);
    expect(stuck.stderr).toMatch(/is still (queued|sending)/);
  } finally {
    expect(await second.stop()).toBe(0);
  }
}, 120_000);
