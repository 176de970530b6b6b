// Proves the outbox list's summaries (read inside the database from the message JSON) are the same on SQLite and PostgreSQL.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { freshPostgresDatabase } from '../../test/support/postgres.js';
import { openStore } from '../store/store.js';
import type { OutboxMessage } from './message.js';
import { OutboxRepository } from './repository.js';

const message: OutboxMessage = {
  sender: 'alarms',
  from: { address: 'ops@example.com', name: 'Ops' },
  to: [{ address: 'a@example.com', name: undefined }, { address: 'b@example.com', name: 'Bé' }],
  cc: [],
  bcc: [{ address: 'audit@example.com', name: undefined }],
  replyTo: undefined,
  subject: 'Température élevée',
  text: 'hello',
  html: undefined,
  attachments: [
    { filename: 'one.txt', content: 'aGVsbG8h', contentType: 'text/plain', cid: undefined },
    { filename: 'two.bin', content: 'AAECAwQFBgcICQ==', contentType: undefined, cid: undefined },
  ],
  headers: {},
};

describe.each(['sqlite', 'postgres'] as const)('outbox summaries (%s)', (kind) => {
  it('give subject, addresses, body kinds and attachment names and sizes without reading bodies out', async () => {
    const store = await openStore(kind === 'sqlite' ? { kind, file: path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mailgate-summaries-')), 'm.db') } : { kind, url: await freshPostgresDatabase() });
    try {
      const repo = new OutboxRepository(store);
      const { row } = await repo.enqueue(message, 'ops@example.com', 123, 'cli');
      const { row: bare } = await repo.enqueue({ ...message, from: undefined, to: [{ address: 'c@example.com', name: undefined }], bcc: [], text: undefined, html: '<p>x</p>', attachments: [] }, 'ops@example.com', 7, 'cli');
      await store.db.updateTable('outbox').set({ message: JSON.stringify({ ...JSON.parse(row.message), bodyDropped: true }) }).where('id', '=', row.id).execute();

      const summaries = await repo.summaries([row.id, bare.id]);
      expect(summaries.get(row.id)).toEqual({
        subject: 'Température élevée',
        from: { address: 'ops@example.com', name: 'Ops' },
        to: [{ address: 'a@example.com' }, { address: 'b@example.com', name: 'Bé' }],
        cc: [],
        bcc: [{ address: 'audit@example.com' }],
        attachments: [
          { filename: 'one.txt', contentType: 'text/plain', bytes: 6 },
          { filename: 'two.bin', contentType: null, bytes: 12 },
        ],
        hasText: true,
        hasHtml: false,
        size: 123,
        relayed: null,
        bodyDropped: true,
      });
      expect(summaries.get(bare.id)).toMatchObject({ from: null, to: [{ address: 'c@example.com' }], bcc: [], attachments: [], hasText: false, hasHtml: true, bodyDropped: false });
    } finally {
      await store.close();
    }
  });
});
