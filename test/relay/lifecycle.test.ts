// The relay's start and stop over raw sockets: a port in use fails the start naming its config key; stop lets the transfer in flight finish and refuses the rest with 421; AUTH in clear from a non-loopback peer gets 538 5.7.11.
import net from 'node:net';
import { afterEach, expect, it } from 'vitest';
import type { RelayListenerConfig } from '../../src/config/load.js';
import { isMailgateError } from '../../src/errors.js';
import { startRelayListeners } from '../../src/relay/index.js';
import { ENCRYPTION_REQUIRED, RelayServer } from '../../src/relay/wire.js';
import { getFreePort } from '../testbed/ports.js';
import { openTestServices, type TestServices } from '../support/services.js';

const opened: { close(): Promise<void> | void }[] = [];
afterEach(async () => {
  for (const item of opened.splice(0).reverse()) await item.close();
});

function listener(port: number, overrides: Partial<RelayListenerConfig> = {}): RelayListenerConfig {
  return { listen: { host: '127.0.0.1', port }, tls: 'none', certFile: undefined, keyFile: undefined, allowInsecureAuth: false, maxConnections: 10, maxConnectionsPerClient: 10, requireAuth: true, allowUnauthenticatedFrom: [], sender: undefined, ...overrides };
}

async function services(listeners: RelayListenerConfig[]): Promise<TestServices> {
  const s = await openTestServices({ configure: (config) => ({ ...config, shutdownTimeoutMs: 5000, relay: { ...config.relay, listeners } }) });
  opened.push(s);
  return s;
}

/** A scripted SMTP client on a raw socket: send a line, wait for the reply that matches. */
function rawClient(port: number) {
  const socket = net.connect(port, '127.0.0.1');
  let buffer = '';
  const waiters: (() => void)[] = [];
  socket.on('data', (d: Buffer) => {
    buffer += d.toString();
    waiters.splice(0).forEach((w) => w());
  });
  socket.on('close', () => waiters.splice(0).forEach((w) => w()));
  socket.on('error', () => undefined);
  opened.push({ close: () => void socket.destroy() });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return {
    socket,
    closed,
    /** The next complete reply (its last line: `NNN text`), waiting for it. */
    async reply(): Promise<string> {
      for (;;) {
        const match = /^(\d{3}) [^\r\n]*\r\n/m.exec(buffer);
        if (match) {
          buffer = buffer.slice(match.index + match[0].length);
          return match[0].trimEnd();
        }
        if (socket.destroyed) throw new Error(`connection closed; buffered: ${JSON.stringify(buffer)}`);
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    },
    write(text: string) {
      socket.write(text);
    },
  };
}

it('fails the start with LISTEN_FAILED naming relay.listeners[0].listen when the port is taken, and marks the listener failed', async () => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
  opened.push({ close: () => void blocker.close() });
  const port = (blocker.address() as net.AddressInfo).port;
  const s = await services([listener(port)]);
  const err = await startRelayListeners(s, s.logger).catch((e: unknown) => e);
  expect(isMailgateError(err, 'LISTEN_FAILED')).toBe(true);
  expect((err as Error).message).toBe(`relay.listeners[0].listen: cannot listen on 127.0.0.1:${port}: the address is in use (another Mailgate, or another mail server?) (set relay.listeners[0].listen to a free host:port in the config file)`);
  expect(s.listeners.list()).toMatchObject([{ id: 'relay.listeners[0]', kind: 'smtp-relay', state: 'failed' }]);
});

it('stops in order: the message being transferred is committed and answered 250, an idle session and the next command get 421, new connections are not accepted', async () => {
  const port = await getFreePort();
  const s = await services([listener(port)]);
  await s.servers.add({ name: 'upstream', protocol: 'smtp', host: '127.0.0.1', port: 9, security: 'none', auth: { type: 'none' } });
  await s.senders.add({ name: 'alerts', primary: 'upstream', from: 'alerts@example.com' });
  await s.relayAccounts.add({ name: 'device', sender: 'alerts', password: 'device-password-123' });
  const relay = await startRelayListeners(s, s.logger);
  opened.push({ close: () => relay.stop(0) });
  const auth = Buffer.from('\0device\0device-password-123').toString('base64');

  const busy = rawClient(port);
  const idle = rawClient(port);
  for (const c of [busy, idle]) {
    expect(await c.reply()).toMatch(/^220 /);
    c.write('EHLO client.example.com\r\n');
    expect(await c.reply()).toMatch(/^250 /);
    c.write(`AUTH PLAIN ${auth}\r\n`); // loopback: allowed in clear
    expect(await c.reply()).toBe('235 2.7.0 Authentication successful');
  }
  busy.write('MAIL FROM:<alerts@example.com>\r\n');
  expect(await busy.reply()).toMatch(/^250 2\.1\.0/);
  busy.write('RCPT TO:<someone@example.net>\r\n');
  expect(await busy.reply()).toMatch(/^250 2\.1\.5/);
  busy.write('DATA\r\n');
  expect(await busy.reply()).toMatch(/^354 /);
  busy.write('From: alerts@example.com\r\nTo: someone@example.net\r\nSubject: in flight\r\n\r\nfirst half\r\n');

  const stopped = relay.stop(5000);
  expect(await idle.reply()).toBe('421 4.3.2 Mailgate is shutting down; try again in a moment');
  await idle.closed;
  const refused = await new Promise<string>((resolve) => net.connect(port, '127.0.0.1').on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? '')).on('connect', () => resolve('connected')));
  expect(refused).toBe('ECONNREFUSED');

  busy.write('second half\r\n.\r\n');
  const queued = await busy.reply();
  const id = /^250 2\.0\.0 queued as ([0-9a-z]+)$/.exec(queued)?.[1];
  expect(id, queued).toBeDefined();
  expect(await busy.reply()).toBe('421 4.3.2 Mailgate is shutting down; try again in a moment');
  await stopped;
  const row = await s.outbox.get(id!);
  expect(row.status).toBe('queued');
  expect(row.raw!.toString()).toContain('first half\r\nsecond half\r\n');
  expect(s.listeners.list()).toMatchObject([{ id: 'relay.listeners[0]', state: 'stopped' }]);
});

it('answers AUTH in clear with 538 5.7.11 when the policy says the peer is not loopback and the listener does not allow insecure logins', async () => {
  // On this machine every client is loopback (servers bind 127.0.0.1 only), so the address rule itself is proved in
  // src/relay/policy.test.ts; here the wire: a connection whose policy refuses gets the RFC 4954 reply, and no onAuth.
  let authCalled = false;
  const server = new RelayServer(
    { logger: false, hideSTARTTLS: true, disabledCommands: ['STARTTLS'], authOptional: true, allowInsecureAuth: true, hideENHANCEDSTATUSCODES: false, disableReverseLookup: true, onAuth: (_a, _s, cb) => ((authCalled = true), cb(null, { user: 'x' })) },
    { authAllowedInClear: () => false },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  opened.push({ close: () => new Promise<void>((resolve) => server.close(() => resolve())) });
  const client = rawClient((server.server.address() as net.AddressInfo).port);
  expect(await client.reply()).toMatch(/^220 /);
  client.write('EHLO client.example.com\r\n');
  await client.reply();
  client.write(`AUTH PLAIN ${Buffer.from('\0device\0secret').toString('base64')}\r\n`);
  expect(await client.reply()).toBe(`538 ${ENCRYPTION_REQUIRED}`);
  expect(authCalled).toBe(false);
});
