// Proves `mailgate watcher rotate-secret` as an operator runs it: the CLI changes the secret while a separate `serve` process delivers, and that serve signs with both (or, with --grace 0, only the new one) from the next message on.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { runCli, startServe, tempDir, type ServeProcess } from '../support/cli.js';
import { eventually } from '../support/mailbox.js';
import { startWebhookReceiver, type ReceivedWebhook, type WebhookReceiver } from '../support/webhookReceiver.js';
import { signersOf } from '../support/webhookSignatures.js';
import { getFreePort } from '../testbed/ports.js';
import { useTestbed } from '../testbed/useTestbed.js';

const bed = useTestbed();
const OLD = 'whsec-cli-old-0123456789abcdef';
const NEW = 'whsec-cli-new-fedcba9876543210';
const NEWER = 'whsec-cli-newer-00112233445566';
const LEAK_FIX = 'whsec-cli-leakfix-a1b2c3d4e5f6';
const SECRETS = [OLD, NEW, NEWER, LEAK_FIX];
let cwd: string;
let serve: ServeProcess | undefined;
let hook: WebhookReceiver;
let adminKey: string;

const cli = (args: string[], env: Record<string, string> = {}) => runCli(args, { cwd, env });
const api = async (p: string) => {
  const res = await fetch(`${serve!.url}${p}`, { headers: { authorization: `Bearer ${adminKey}` } });
  return { status: res.status, json: (await res.json()) as any };
};
const rotate = (secret: string, ...flags: string[]) => cli(['watcher', 'rotate-secret', 'carol-inbox', '--webhook-secret-env', 'NEW_HOOK_SECRET', ...flags], { NEW_HOOK_SECRET: secret });

let counter = 0;
async function deliverOne(label: string): Promise<ReceivedWebhook> {
  counter += 1;
  const subject = `${label} ${Date.now()}-${counter}`;
  await bed.mail.deliver(`From: <dave@example.test>\r\nTo: <${bed.mail.passwordUser.email}>\r\nSubject: ${subject}\r\nMessage-ID: <cli-rot-${Date.now()}-${counter}@example.test>\r\n\r\nbody\r\n`, bed.mail.passwordUser.email);
  const [got] = await eventually(async () => hook.received.filter((r) => r.body?.message?.subject === subject), (l) => l.length === 1, 15_000, `the webhook for ${label}`);
  return got!;
}

beforeAll(async () => {
  cwd = tempDir();
  hook = await startWebhookReceiver(OLD);
  fs.writeFileSync(
    path.join(cwd, 'mailgate.yaml'),
    stringify({
      inbound: { webhookSecretGraceHours: 1 },
      servers: {
        'carol-imap': { protocol: 'imap', host: '127.0.0.1', port: bed.mail.ports.imap, security: 'starttls', username: bed.mail.passwordUser.email, auth: { type: 'password', password: bed.mail.passwordUser.password }, tlsCa: bed.mail.caPem },
      },
    }),
  );
  const created = await cli(['apikey', 'create', '--name', 'rotation-test', '--scope', 'admin']);
  expect(created.code, created.stderr).toBe(0);
  adminKey = /mgk_[A-Za-z0-9_-]{43}/.exec(created.stdout)![0];
  serve = await startServe({ cwd, port: await getFreePort() });
  const added = await cli(['watcher', 'add', 'carol-inbox', '--server', 'carol-imap', '--webhook-url', hook.url, '--webhook-secret-env', 'HOOK_SECRET'], { HOOK_SECRET: OLD });
  expect(added.code, added.stderr).toBe(0);
  await eventually(() => api('/api/v1/watchers/carol-inbox').then((r) => r.json.status?.state), (state) => state === 'idle', 15_000, 'the watcher to be idle in serve');
}, 60_000);
afterAll(async () => {
  await serve?.stop('SIGTERM');
  await hook?.close();
});

describe('mailgate watcher rotate-secret', () => {
  it('with --grace, the running serve signs the next message with the new and the old secret, and says until when', async () => {
    expect(signersOf(await deliverOne('before'), SECRETS)).toEqual([OLD]);
    const rotated = await rotate(NEW, '--grace', '600');
    expect(rotated.code, rotated.stderr).toBe(0);
    const until = /the old one signs too until (\S+) /.exec(rotated.stdout)?.[1];
    expect(until).toBeDefined();
    expect(Date.parse(until!) - Date.now()).toBeGreaterThan(500_000);
    expect((await api('/api/v1/watchers/carol-inbox')).json.previousSecretExpiresAt).toBe(until);

    const during = await deliverOne('during');
    expect(signersOf(during, SECRETS)).toEqual([NEW, OLD]);
    expect(during.signatureValid).toBe(true); // the receiver was never told the new secret
  });

  it('without --grace the configured inbound.webhookSecretGraceHours applies, and the newest previous secret replaces the one before', async () => {
    const rotated = await rotate(NEWER);
    expect(rotated.code, rotated.stderr).toBe(0);
    const until = (await api('/api/v1/watchers/carol-inbox')).json.previousSecretExpiresAt;
    expect(Math.abs(Date.parse(until) - (Date.now() + 3_600_000))).toBeLessThan(60_000);
    expect(signersOf(await deliverOne('newer'), SECRETS)).toEqual([NEWER, NEW]);
  });

  it('--grace 0 (a leaked secret) stops the old one at once and says so', async () => {
    const rotated = await rotate(LEAK_FIX, '--grace', '0');
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(rotated.stdout).toContain('watcher carol-inbox signs with the new secret only; the old one no longer signs');
    expect((await api('/api/v1/watchers/carol-inbox')).json.previousSecretExpiresAt).toBeNull();
    expect(signersOf(await deliverOne('leak'), SECRETS)).toEqual([LEAK_FIX]);
  });

  it('refuses a --grace that is not whole seconds and an empty secret variable, changing nothing', async () => {
    const bad = await rotate(NEW, '--grace', '1h');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--grace: expected whole seconds, e.g. 86400, or 0 to end the old secret at once');
    const empty = await rotate('');
    expect(empty.code).not.toBe(0);
    expect(empty.stderr).toContain('--webhook-secret-env: the environment variable NEW_HOOK_SECRET is empty or unset');
    expect(signersOf(await deliverOne('unchanged'), SECRETS)).toEqual([LEAK_FIX]);
  });

  it('audits each rotation as done by the operating-system user, and no secret reaches the CLI output, the audit log or serve\'s log', async () => {
    const entries = (await api('/api/v1/audit?target=carol-inbox&limit=100')).json.entries as { action: string; actor: string; details: { graceSeconds: number } }[];
    const rotations = entries.filter((e) => e.action === 'watcher.rotateSecret');
    expect(rotations.map((e) => e.details.graceSeconds)).toEqual([0, 3600, 600]);
    for (const entry of rotations) expect(entry.actor).toMatch(/^cli(:.+)?$/);
    const list = await cli(['watcher', 'list', '--json']);
    for (const text of [JSON.stringify(entries), list.stdout, serve!.output()]) for (const secret of SECRETS) expect(text).not.toContain(secret);
  });
});
