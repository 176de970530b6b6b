// Proves retention: finished messages lose their bodies (text, HTML, attachments, raw MIME) after messageBodyDays and their rows after messageDays, queued ones are never touched, old inbound rows and audit entries go (POP3 rows stay as UIDL tombstones), and `mailgate prune` does it on demand.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isMailgateError } from '../../src/errors.js';
import { parseHeaderSection } from '../../src/outbox/rawMessage.js';
import { prune } from '../../src/retention/prune.js';
import { runCli } from '../support/cli.js';
import { openTestServices, type TestServices } from '../support/services.js';

let services: TestServices;
const DAY = 86_400_000;
const ago = (days: number) => new Date(Date.now() - days * DAY).toISOString();

beforeAll(async () => {
  services = await openTestServices();
  await services.servers.add({ name: 'relay', protocol: 'smtp', host: '127.0.0.1', port: 2525, security: 'none' });
  await services.senders.add({ name: 'alerts', primary: 'relay', from: 'alerts@example.test' });
});
afterAll(async () => services?.close());

async function message(subject: string, status: string, updatedDaysAgo: number): Promise<string> {
  const { view } = await services.messages.accept({ sender: 'alerts', to: 'duty@example.test', subject, text: `SECRET BODY of ${subject}`, html: '<p>SECRET HTML</p>', attachments: [{ filename: 'log.csv', content: Buffer.from('SECRET ATTACHMENT').toString('base64'), contentType: 'text/csv' }] }, 'cli');
  await services.store.db.updateTable('outbox').set({ status, updated_at: ago(updatedDaysAgo) }).where('id', '=', view.id).execute();
  return view.id;
}

describe('retention', () => {
  it('drops bodies of finished messages after messageBodyDays, deletes their rows after messageDays, and leaves queued and recent ones alone', async () => {
    const oldSent = await message('old sent', 'sent', 8);
    const oldFailed = await message('old failed', 'failed', 8);
    const recentSent = await message('recent sent', 'sent', 1);
    const oldQueued = await message('old queued', 'queued', 200);
    const ancient = await message('ancient', 'sent', 100);
    const raw = Buffer.from('From: <alerts@example.test>\r\nTo: <duty@example.test>\r\nSubject: relayed\r\n\r\nSECRET RAW BODY\r\n');
    const relayed = await services.messages.acceptRaw({ sender: 'alerts', envelope: { from: 'alerts@example.test', to: ['duty@example.test'] }, headers: parseHeaderSection(raw.subarray(0, raw.indexOf('\r\n\r\n') + 2)), raw, submittedBy: { account: 'scanner', client: '127.0.0.1' } });
    await services.store.db.updateTable('outbox').set({ status: 'sent', updated_at: ago(8) }).where('id', '=', relayed.id).execute();

    const report = await prune(services.store, services.config.retention);
    expect(report).toMatchObject({ bodiesDropped: 4, messagesDeleted: 1 });

    const row = (id: string) => services.store.db.selectFrom('outbox').selectAll().where('id', '=', id).executeTakeFirst();
    for (const id of [oldSent, oldFailed]) {
      const r = (await row(id))!;
      expect(r.message).not.toContain('SECRET');
      expect(r.body_pruned_at).not.toBeNull();
      expect(JSON.parse(r.message)).toMatchObject({ subject: expect.stringMatching(/^old /), to: [{ address: 'duty@example.test' }], attachments: [{ filename: 'log.csv', content: '' }], bodyDropped: true });
    }
    expect((await row(relayed.id))!.raw).toBeNull();
    expect((await row(recentSent))!.message).toContain('SECRET BODY');
    expect((await row(oldQueued))!.message).toContain('SECRET BODY');
    expect(await row(ancient)).toBeUndefined();
    // The web UI's list still knows what each message was.
    expect((await services.messages.summaries([oldSent])).get(oldSent)).toMatchObject({ subject: 'old sent', hasText: false, bodyDropped: true, relayed: null });
    expect((await services.messages.summaries([relayed.id])).get(relayed.id)).toMatchObject({ subject: 'relayed', relayed: { account: 'scanner', client: '127.0.0.1' }, bodyDropped: true });

    // A failed message whose body is gone cannot be retried: the refusal says so and what to do instead.
    const refused = await services.messages.retry(oldFailed).catch((err: unknown) => err);
    expect(isMailgateError(refused, 'STATE_CONFLICT')).toBe(true);
    expect((refused as Error).message).toMatch(/its body was dropped on .* \(retention\.messageBodyDays\); submit it anew/);

    // Running again finds nothing more to do.
    expect(await prune(services.store, services.config.retention)).toMatchObject({ bodiesDropped: 0, messagesDeleted: 0 });
  });

  it('deletes old finished IMAP deliveries and audit entries, clears old POP3 rows to UIDL tombstones, keeps parked ones', async () => {
    const delivery = (key: string, status: string, days: number) => ({ id: `d-${key}`, watcher: 'w', mailbox_key: key, uid: null, status, event: 'message', message_id: '<m@x>', subject: 'Private subject', from_address: 'someone@example.test', size: 10, attempts: 1, next_attempt_at: ago(days), last_error: null, created_at: ago(days), updated_at: ago(days), delivered_at: ago(days) });
    await services.store.db
      .insertInto('inbound_deliveries')
      .values([delivery('imap:1:10', 'delivered', 40), delivery('pop3:abc', 'delivered', 40), delivery('imap:1:11', 'parked', 40), delivery('imap:1:12', 'delivered', 2)])
      .execute();
    await services.store.db.insertInto('audit_log').values([{ at: ago(400), actor: 'cli:old', action: 'x', target: null, details: '{}' }, { at: ago(1), actor: 'cli:new', action: 'x', target: null, details: '{}' }]).execute();

    const report = await prune(services.store, services.config.retention);
    expect(report).toMatchObject({ inboundDeleted: 1, inboundCleared: 1, auditDeleted: 1 });
    const rows = await services.store.db.selectFrom('inbound_deliveries').select(['mailbox_key', 'subject', 'from_address']).orderBy('mailbox_key').execute();
    expect(rows).toEqual([
      { mailbox_key: 'imap:1:11', subject: 'Private subject', from_address: 'someone@example.test' },
      { mailbox_key: 'imap:1:12', subject: 'Private subject', from_address: 'someone@example.test' },
      { mailbox_key: 'pop3:abc', subject: null, from_address: null },
    ]);
    const actors = (await services.store.db.selectFrom('audit_log').select('actor').execute()).map((r) => r.actor);
    expect(actors).toContain('cli:new');
    expect(actors).not.toContain('cli:old');
  });

  it('mailgate prune applies the settings on demand and prints what it did', async () => {
    const result = await runCli(['prune', '--json'], { cwd: services.cwd, env: { MAILGATE_MASTER_KEY: services.masterKey } });
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ bodiesDropped: 0, messagesDeleted: 0, inboundDeleted: 0, inboundCleared: 0, auditDeleted: 0 });
  });
});
