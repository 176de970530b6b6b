// Proves the POP3 client against Dovecot's pop3 (real XOAUTH2 checked by introspection at the bed's provider, STLS
// and implicit TLS with the bed's certificate): login, UIDL, byte-exact RETR of small and large messages, and
// POP3's UPDATE-state rule that only QUIT removes what DELE marked.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { connectPop3, Pop3Client, type Pop3ConnectOptions } from '../../src/inbound/pop3/client.js';
import { isPop3Error, Pop3ErrorCode } from '../../src/inbound/pop3/errors.js';
import { obtainTokens } from '../testbed/providerLogin.js';
import { useTestbed } from '../testbed/useTestbed.js';

const bed = useTestbed();
let aliceToken: string;
const alice = () => bed.auth.users.alice.email;

const starttls = (): Pop3ConnectOptions => ({ host: '127.0.0.1', port: bed.mail.ports.pop3, security: 'starttls', tlsCa: bed.mail.caPem, timeoutMs: 10_000 });
const implicitTls = (): Pop3ConnectOptions => ({ host: '127.0.0.1', port: bed.mail.ports.pop3s, security: 'tls', tlsCa: bed.mail.caPem, timeoutMs: 10_000 });

async function aliceSession(options = starttls()): Promise<Pop3Client> {
  const client = await connectPop3(options);
  await client.authXOAuth2(alice(), aliceToken);
  return client;
}

/** A message with a unique Message-ID; `body` lines are joined with CRLF. */
function message(subject: string, body: string[]): { raw: Buffer; messageId: string } {
  const messageId = `<${randomUUID()}@example.test>`;
  const lines = [`From: sender@example.test`, `To: ${alice()}`, `Subject: ${subject}`, `Message-ID: ${messageId}`, 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit', '', ...body];
  return { raw: Buffer.from(`${lines.join('\r\n')}\r\n`, 'utf8'), messageId };
}

/** The POP3 message number of the message with this Message-ID, found through the headers of each (TOP n 0). */
async function numberOf(client: Pop3Client, messageId: string): Promise<number | undefined> {
  for (const { number } of await client.list()) {
    if ((await client.top(number, 0)).includes(`Message-ID: ${messageId}`)) return number;
  }
  return undefined;
}

beforeAll(async () => {
  aliceToken = (await obtainTokens(bed.auth, { user: bed.auth.users.alice, layout: 'microsoft' })).access_token;
});

describe('logging in', () => {
  it('authenticates with XOAUTH2 after STLS on the plain port, where SASL XOAUTH2 is offered', async () => {
    const client = await Pop3Client.openTcp(starttls());
    try {
      expect(await client.readGreeting()).toMatch(/ready/i);
      expect((await client.capabilities()).stls).toBe(true);
      await client.startTls();
      expect(client.tlsSocket?.authorized).toBe(true);
      const caps = await client.capabilities();
      expect(caps.sasl).toContain('XOAUTH2');
      expect(caps.uidl).toBe(true);
      await client.authXOAuth2(alice(), aliceToken);
      expect(client.authenticated).toBe(true);
      expect(await client.stat()).toEqual({ count: expect.any(Number), size: expect.any(Number) });
      await client.quit();
    } finally {
      client.close();
    }
  });

  it('authenticates with XOAUTH2 over implicit TLS', async () => {
    const client = await aliceSession(implicitTls());
    expect(client.tlsSocket?.getProtocol()).toMatch(/^TLSv1\.[23]$/);
    await client.quit();
  });

  it('refuses a forged token with POP3_AUTH_FAILED, the [AUTH] code and the decoded XOAUTH2 status, never the token', async () => {
    const forged = `forged-${randomBytes(16).toString('hex')}`;
    const client = await connectPop3(starttls());
    try {
      const err = await client.authXOAuth2(alice(), forged).then(() => undefined, (e: unknown) => e);
      expect(isPop3Error(err, Pop3ErrorCode.POP3_AUTH_FAILED)).toBe(true);
      if (!isPop3Error(err)) return;
      expect(err.responseCode).toBe('AUTH');
      expect(err.command).toBe('AUTH XOAUTH2');
      expect(err.xoauth2?.status).toMatch(/^4\d\d$/);
      expect(`${err.message} ${JSON.stringify(err)}`).not.toContain(forged);
      expect(`${err.message} ${JSON.stringify(err)}`).not.toContain(Buffer.from(forged).toString('base64').slice(0, 12));
      // the session stays usable after a refused AUTH (RFC 5034 §4): a second attempt with the real token works
      await client.authXOAuth2(alice(), aliceToken);
      await client.quit();
    } finally {
      client.close();
    }
  });

  it('sends a token too long for the 255-octet AUTH line after the empty challenge (RFC 5034 §4), as Microsoft tokens need', async () => {
    const longForged = `eyJ${randomBytes(1500).toString('base64url')}`;
    const client = await connectPop3(starttls());
    try {
      const err = await client.authXOAuth2(alice(), longForged).then(() => undefined, (e: unknown) => e);
      // refused as a token, not as an overlong or garbled line: the server got the whole response
      expect(isPop3Error(err, Pop3ErrorCode.POP3_AUTH_FAILED)).toBe(true);
      expect(isPop3Error(err) && err.xoauth2?.status).toMatch(/^4\d\d$/);
    } finally {
      client.close();
    }
  });

  it('logs carol in with USER/PASS and never shows the password in a refusal', async () => {
    const carol = bed.mail.passwordUser;
    const client = await connectPop3(starttls());
    await client.authPassword(carol.email, carol.password);
    expect(await client.stat()).toEqual({ count: expect.any(Number), size: expect.any(Number) });
    await client.quit();

    const wrong = await connectPop3(starttls());
    const err = await wrong.authPassword(carol.email, 'not-carols-password').then(() => undefined, (e: unknown) => e);
    wrong.close();
    expect(isPop3Error(err, Pop3ErrorCode.POP3_AUTH_FAILED)).toBe(true);
    expect(isPop3Error(err) && err.command).toBe('PASS');
    expect(String(err)).not.toContain('not-carols-password');
  });

  it('fails the TLS step with POP3_TLS_FAILED and the OpenSSL code when the certificate is not trusted', async () => {
    const err = await connectPop3({ ...implicitTls(), tlsCa: undefined }).then(() => undefined, (e: unknown) => e);
    expect(isPop3Error(err, Pop3ErrorCode.POP3_TLS_FAILED)).toBe(true);
    expect(isPop3Error(err) && err.socketCode).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
  });
});

describe('reading mail', () => {
  it('lists delivered messages by UIDL and retrieves them byte for byte: CRLF ends, 8-bit text, a line starting with "."', async () => {
    const { raw, messageId } = message('dots and bytes', ['first line', '.a line starting with a dot', '.', '..two dots', 'Grüße, ünïcödé €', 'last line']);
    await bed.mail.deliver(raw, alice());
    const client = await aliceSession();
    try {
      const uids = await client.uidl();
      const listed = await client.list();
      expect(uids.length).toBeGreaterThanOrEqual(1);
      expect(uids.map((u) => u.number)).toEqual(listed.map((l) => l.number));
      expect(new Set(uids.map((u) => u.uid)).size).toBe(uids.length);

      const number = await numberOf(client, messageId);
      expect(number).toBeDefined();
      const retrieved = await client.retrieve(number!);
      // Dovecot's LMTP prepends Return-Path, Delivered-To and Received; everything after them is what was delivered
      const at = retrieved.indexOf('From: sender@example.test\r\n');
      expect(retrieved.subarray(at).equals(raw)).toBe(true);
      expect(retrieved.length).toBe(listed.find((l) => l.number === number)!.size);
      expect(await client.uidlOf(number!)).toBe(uids.find((u) => u.number === number)!.uid);
      await client.quit();
    } finally {
      client.close();
    }
  });

  it('retrieves a 5 MB message intact (sha256) with one allocation from the LIST size', async () => {
    const lines = randomBytes(5 * 1024 * 1024 * 0.75).toString('base64').match(/.{1,76}/g)!;
    const { raw, messageId } = message('large', lines);
    await bed.mail.deliver(raw, alice());
    const client = await aliceSession();
    try {
      const listed = await client.list();
      const candidate = listed.filter((l) => l.size > 5_000_000);
      let found: Buffer | undefined;
      for (const { number, size } of candidate) {
        const body = await client.retrieve(number, { sizeHint: size });
        if (body.includes(`Message-ID: ${messageId}`)) found = body;
      }
      expect(found).toBeDefined();
      const tail = found!.subarray(found!.indexOf('From: sender@example.test\r\n'));
      expect(createHash('sha256').update(tail).digest('hex')).toBe(createHash('sha256').update(raw).digest('hex'));
      await client.quit();
    } finally {
      client.close();
    }
  });
});

describe('deleting (RFC 1939 §6: only QUIT enters the UPDATE state)', () => {
  const uidOf = async (client: Pop3Client, messageId: string) => {
    const number = await numberOf(client, messageId);
    return number === undefined ? undefined : client.uidlOf(number);
  };

  it('DELE then QUIT removes the message: a new session no longer lists it', async () => {
    const { raw, messageId } = message('delete me', ['bye']);
    await bed.mail.deliver(raw, alice());
    const first = await aliceSession();
    const before = await first.stat();
    const number = (await numberOf(first, messageId))!;
    const uid = await first.uidlOf(number);
    await first.delete(number);
    // marked messages are left out of STAT at once (RFC 1939 §5), removed only at QUIT
    expect((await first.stat()).count).toBe(before.count - 1);
    await first.quit();

    const second = await aliceSession();
    expect((await second.stat()).count).toBe(before.count - 1);
    expect((await second.uidl()).map((u) => u.uid)).not.toContain(uid);
    await second.quit();
  });

  it('DELE then close() without QUIT removes nothing: the message is still there in the next session', async () => {
    const { raw, messageId } = message('keep me', ['still here']);
    await bed.mail.deliver(raw, alice());
    const first = await aliceSession();
    const before = await first.stat();
    const number = (await numberOf(first, messageId))!;
    const uid = await first.uidlOf(number);
    await first.delete(number);
    first.close();

    const second = await aliceSession();
    expect((await second.stat()).count).toBe(before.count);
    expect(await uidOf(second, messageId)).toBe(uid);
    await second.quit();
  });

  it('a closed client refuses further commands with POP3_CLOSED', async () => {
    const client = await aliceSession();
    await client.quit();
    const err = await client.stat().then(() => undefined, (e: unknown) => e);
    expect(isPop3Error(err, Pop3ErrorCode.POP3_CLOSED)).toBe(true);
  });
});
