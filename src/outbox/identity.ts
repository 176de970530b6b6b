// What names an outbox message and keeps its story: its id, its Message-ID, the stored form of an idempotency key, and the attempt history.
import crypto from 'node:crypto';

/** Sortable, unguessable ids: time first (so the table's natural order is acceptance order), then randomness. */
export function newMessageId(): string {
  return `${Date.now().toString(36).padStart(9, '0')}${randomHex(10)}`;
}

/** Random bytes drawn 4 KB at a time: one `randomBytes` call per message cost more than the rest of the id. */
let randomPool = Buffer.alloc(0);
let randomOffset = 0;

function randomHex(bytes: number): string {
  if (randomOffset + bytes > randomPool.length) {
    randomPool = crypto.randomBytes(4096);
    randomOffset = 0;
  }
  randomOffset += bytes;
  return randomPool.toString('hex', randomOffset - bytes, randomOffset);
}

/** The stored form of a caller's idempotency key: one caller's key never matches another's. */
export function idempotencyHash(caller: string, key: string): string {
  return crypto.createHash('sha256').update(`${caller}\0${key}`, 'utf8').digest('hex');
}

/**
 * Message-IDs Mailgate can recognise in a reply's In-Reply-To/References: `<mg.<outbox id>@<from domain>>`.
 * @see https://www.rfc-editor.org/rfc/rfc5322#section-3.6.4
 */
export function messageIdFor(id: string, fromAddress: string): string {
  const domain = fromAddress.split('@')[1] ?? 'mailgate.invalid';
  return `<mg.${id}@${domain}>`;
}

/** Adds an attempt (an AttemptRecord of the repository) to a message's JSON history. */
export function appendHistory<Attempt extends object>(history: string, attempt: Attempt): string {
  const list = JSON.parse(history) as Attempt[];
  list.push(attempt);
  // Keep the story readable and the row small: the first attempts and the latest ones.
  return JSON.stringify(list.length > 30 ? [...list.slice(0, 10), ...list.slice(-20)] : list);
}
