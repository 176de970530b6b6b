// Proves "one truth": what the CLI changes while `serve` runs reaches the running gateway within seconds (watchers start and stop), and the CLI sees the config file's servers without a `serve` first.
import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { runCli, startServe, tempDir, type ServeProcess } from '../support/cli.js';
import { eventually } from '../support/mailbox.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhookReceiver.js';
import { getFreePort } from '../testbed/ports.js';
import { useTestbed } from '../testbed/useTestbed.js';

const bed = useTestbed();
const SECRET = 'whsec-changes-0123456789';
let cwd: string;
let serve: ServeProcess | undefined;
let hook: WebhookReceiver;
let adminKey: string;

const cli = (args: string[], env: Record<string, string> = {}) => runCli(args, { cwd, env });
const api = async (p: string) => {
  const res = await fetch(`${serve!.url}${p}`, { headers: { authorization: `Bearer ${adminKey}` } });
  return { status: res.status, json: (await res.json()) as any };
};
const mail = (subject: string) => `From: <dave@example.test>\r\nTo: <${bed.mail.passwordUser.email}>\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@example.test>\r\n\r\nbody\r\n`;

beforeAll(async () => {
  cwd = tempDir();
  hook = await startWebhookReceiver(SECRET);
  // A config file with a password IMAP server (the bed's carol) and an SMTP one, as an operator would write it.
  fs.writeFileSync(
    path.join(cwd, 'mailgate.yaml'),
    stringify({
      servers: {
        'carol-imap': { protocol: 'imap', host: '127.0.0.1', port: bed.mail.ports.imap, security: 'starttls', username: bed.mail.passwordUser.email, auth: { type: 'password', password: bed.mail.passwordUser.password }, tlsCa: bed.mail.caPem },
        'file-smtp': { protocol: 'smtp', host: '127.0.0.1', port: bed.mail.ports.submission, security: 'starttls', username: bed.mail.passwordUser.email, auth: { type: 'password', password: bed.mail.passwordUser.password }, tlsCa: bed.mail.caPem },
      },
    }),
  );
  const created = await cli(['apikey', 'create', '--name', 'changes-test', '--scope', 'admin']);
  expect(created.code, created.stderr).toBe(0);
  adminKey = /mgk_[A-Za-z0-9_-]{43}/.exec(created.stdout)![0];
});
afterAll(async () => {
  await serve?.stop('SIGTERM');
  await hook?.close();
});

describe('changes made by the CLI while serve runs', () => {
  it('the CLI sees the config file\'s servers before any serve: server list shows them and a sender can use one', async () => {
    const list = await cli(['server', 'list']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toContain('carol-imap');
    expect(list.stdout).toContain('file-smtp');
    const sender = await cli(['sender', 'add', 'file-route', '--primary', 'file-smtp', '--from', bed.mail.passwordUser.email]);
    expect(sender.code, sender.stderr).toBe(0);
    // Running the CLI again does not rewrite unchanged file servers (no change for running instances to act on).
    const changeCount = () => {
      const db = new SQLite(path.join(cwd, 'data', 'mailgate.db'), { readonly: true });
      try {
        return (db.prepare("select count(*) as n from changes where topic = 'servers'").get() as { n: number }).n;
      } finally {
        db.close();
      }
    };
    const before = changeCount();
    expect(before).toBe(2);
    expect((await cli(['server', 'list'])).code).toBe(0);
    expect(changeCount()).toBe(before);
  });

  it('a watcher added with the CLI starts in the running serve, and one removed with the CLI stops (no more deliveries, no errors)', async () => {
    serve = await startServe({ cwd, port: await getFreePort() });
    const added = await cli(['watcher', 'add', 'carol-inbox', '--server', 'carol-imap', '--webhook-url', hook.url, '--webhook-secret-env', 'HOOK_SECRET'], { HOOK_SECRET: SECRET });
    expect(added.code, added.stderr).toBe(0);
    await eventually(() => api('/api/v1/watchers/carol-inbox').then((r) => r.json.status?.state), (state) => state === 'idle', 10_000, 'the watcher to be idle in serve');

    await bed.mail.deliver(mail('seen by the new watcher'), bed.mail.passwordUser.email);
    await eventually(async () => hook.received.filter((r) => r.body?.message?.subject === 'seen by the new watcher'), (l) => l.length === 1, 10_000, 'the webhook');

    const removed = await cli(['watcher', 'remove', 'carol-inbox']);
    expect(removed.code, removed.stderr).toBe(0);
    expect((await api('/api/v1/watchers/carol-inbox')).status).toBe(404);
    // Within the poll interval the watcher is stopped: new mail is no longer delivered.
    await new Promise((r) => setTimeout(r, 2500));
    await bed.mail.deliver(mail('after the removal'), bed.mail.passwordUser.email);
    await new Promise((r) => setTimeout(r, 3000));
    expect(hook.received.filter((r) => r.body?.message?.subject === 'after the removal')).toEqual([]);
    expect(serve.output()).not.toContain('watcher session failed');
    expect(serve.output()).toContain('picked up changes made elsewhere');
  });
});
