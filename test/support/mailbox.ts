// Reads a test mailbox back over IMAP (imapflow, with a real token from the test bed) and waits for messages to arrive.
import { ImapFlow } from 'imapflow';
import { simpleParser, type ParsedMail } from 'mailparser';
import type { Testbed } from '../testbed/useTestbed.js';
import { obtainTokens } from '../testbed/providerLogin.js';

/** Every message in the user's INBOX, parsed, fetched over IMAP with an OAuth2 token of that user. */
export async function readInbox(bed: Testbed, user: { email: string; password: string }): Promise<ParsedMail[]> {
  const tokens = await obtainTokens(bed.auth, { user: { login: user.email, password: user.password } });
  const client = new ImapFlow({
    host: '127.0.0.1',
    port: bed.mail.ports.imap,
    secure: false,
    tls: { ca: bed.mail.caPem },
    auth: { user: user.email, accessToken: tokens.access_token },
    logger: false,
  });
  await client.connect();
  try {
    const lock = await client.getMailboxLock('INBOX');
    try {
      const messages: ParsedMail[] = [];
      if ((client.mailbox as { exists: number }).exists === 0) return messages;
      for await (const message of client.fetch('1:*', { source: true })) messages.push(await simpleParser(message.source!));
      return messages;
    } finally {
      lock.release();
    }
  } finally {
    await client.logout();
  }
}

/** Polls until `predicate` holds for the value `read` returns (up to `timeoutMs`), and returns that value. */
export async function eventually<T>(read: () => Promise<T>, predicate: (value: T) => boolean, timeoutMs = 15_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (predicate(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last value: ${JSON.stringify(value)?.slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
