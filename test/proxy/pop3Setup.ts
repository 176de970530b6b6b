// Set-up for the POP3 proxy tests: Mailgate with bob's OAuth2 credential, POP3 servers toward the test bed's Dovecot, proxy accounts, and the proxy listeners (STLS and implicit TLS).
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { expect } from 'vitest';
import type { Config, ListenerConfig } from '../../src/config/load.js';
import { ClientConnection } from '../../src/proxy/clientConnection.js';
import { startProxyListener, type ProxyListener } from '../../src/proxy/listener.js';
import { pop3ProxyProtocol } from '../../src/proxy/pop3/index.js';
import { loadTlsIdentity } from '../../src/listeners/tlsIdentity.js';
import { addConnected, login, microsoftCredential } from '../support/credentials.js';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';
import type { TestClient } from '../testbed/authServer.js';
import type { Testbed } from '../testbed/useTestbed.js';

export const READER_PASSWORD = 'pop3 reader passphrase';

export interface Pop3ProxyBed {
  app: MailgateApp;
  client: TestClient;
  /** STLS listener (plain first) and implicit-TLS listener. */
  stls: ProxyListener;
  implicit: ProxyListener;
  /** The proxies' self-signed certificate (PEM) and its file. */
  certPem: string;
  certFile: string;
  /** `reader` (chosen password, Dovecot's pop3s) and `reader-stls` (generated password, Dovecot's pop3 + STLS). */
  accounts: { reader: { name: string; password: string }; readerStls: { name: string; password: string } };
  close(): Promise<void>;
}

export function listenerConfig(tlsMode: ListenerConfig['tls'], overrides: Partial<ListenerConfig> = {}): ListenerConfig {
  return { listen: { host: '127.0.0.1', port: 0 }, tls: tlsMode, certFile: undefined, keyFile: undefined, allowInsecureAuth: false, maxConnections: 100, maxConnectionsPerClient: 50, ...overrides };
}

export async function startPop3ProxyBed(bed: Testbed, options: { configure?: (config: Config) => Config } = {}): Promise<Pop3ProxyBed> {
  const app = await startMailgateApp(options.configure ? { configure: options.configure } : {});
  const bob = bed.auth.users.bob;
  const client = bed.auth.addClient({ clientId: 'mailgate-pop3-proxy', clientSecret: 'pop3-proxy-secret', redirectUris: [`${app.url}/oauth/callback`] });
  await addConnected(app, microsoftCredential(bed.auth, client, 'bob-m365', bob.email), login(bob));
  const server = (name: string, port: number, security: string) =>
    app.api('POST', '/api/v1/servers', { name, protocol: 'pop3', host: '127.0.0.1', port, security, tlsCa: bed.mail.caPem, username: bob.email, auth: { type: 'oauth2', credential: 'bob-m365' } });
  for (const created of [await server('bob-pop3s', bed.mail.ports.pop3s, 'tls'), await server('bob-pop3', bed.mail.ports.pop3, 'starttls')]) expect(created.status, created.text).toBe(201);
  await app.services.proxyAccounts.add({ name: 'reader', server: 'bob-pop3s', password: READER_PASSWORD });
  const generated = await app.services.proxyAccounts.add({ name: 'reader-stls', server: 'bob-pop3', generatePassword: true });

  const logger = app.services.logger.child({ component: 'pop3-proxy' });
  const stls = await startProxyListener(app.services, 'proxy.pop3', listenerConfig('starttls'), pop3ProxyProtocol(app.services, logger), logger);
  const implicit = await startProxyListener(app.services, 'proxy.pop3s', listenerConfig('implicit'), pop3ProxyProtocol(app.services, logger), logger);
  const certFile = app.services.listeners.list().find((l) => l.id === 'proxy.pop3')!.certificate!.file;
  return {
    app,
    client,
    stls,
    implicit,
    certPem: fs.readFileSync(certFile, 'utf8'),
    certFile,
    accounts: { reader: { name: 'reader', password: READER_PASSWORD }, readerStls: { name: 'reader-stls', password: generated.generatedPassword! } },
    async close() {
      await stls.stop();
      await implicit.stop();
      await app.close();
    },
  };
}

/**
 * A listener on 127.0.0.1 whose clients the POP3 proxy sees as coming from another machine (192.0.2.10): the only
 * way to prove the "no password before TLS" rules while tests must stay on loopback. Same session code, same
 * ClientConnection; only the address the listener would have read from the socket is replaced.
 */
export async function startLanView(app: MailgateApp, config: ListenerConfig, address = '192.0.2.10'): Promise<{ port: number; stop(): Promise<void> }> {
  const identity = await loadTlsIdentity(config, app.services.config.dataDir, 'test.lan');
  const secureContext = tls.createSecureContext({ cert: identity.cert, key: identity.key });
  const handle = app.services.listeners.register({ id: `test.lan-view-${address}-${config.tls}`, kind: 'pop3-proxy', listen: '127.0.0.1:0', tls: config.tls });
  const protocol = pop3ProxyProtocol(app.services, app.services.logger);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => sockets.delete(socket));
    const client = new ClientConnection(socket, address, false, config, secureContext, handle);
    void protocol.session(client).finally(() => client.close());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A raw POP3 conversation over TCP (or TLS): write lines, read what came, see when the proxy closed. */
export class RawPop3 {
  #received = Buffer.alloc(0);
  #closed = false;
  socket: net.Socket;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.#attach(socket);
  }

  #attach(socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => (this.#received = Buffer.concat([this.#received, chunk])));
    socket.on('close', () => (this.#closed = true));
    socket.on('error', () => undefined);
  }

  /** TLS over this connection after STLS's +OK, the certificate checked against `ca` for the name localhost. */
  async startTls(ca: string): Promise<void> {
    this.socket.removeAllListeners('data');
    this.socket.removeAllListeners('close');
    const secure = tls.connect({ socket: this.socket, ca, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.socket = secure;
    this.#attach(secure);
  }

  static async connect(port: number, options: { tls?: { ca: string } } = {}): Promise<RawPop3> {
    const socket = options.tls ? tls.connect({ host: '127.0.0.1', port, ca: options.tls.ca }) : net.connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      socket.once(options.tls ? 'secureConnect' : 'connect', () => resolve());
      socket.once('error', reject);
    });
    const raw = new RawPop3(socket);
    await raw.until((text) => text.includes('\r\n'));
    return raw;
  }

  get text(): string {
    return this.#received.toString('latin1');
  }

  get closed(): boolean {
    return this.#closed;
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Sends a line and waits for the reply that follows (one line, or a multi-line body when `multiline`). */
  async command(line: string, multiline = false): Promise<string> {
    const before = this.#received.length;
    this.write(`${line}\r\n`);
    const done = (text: string) => (multiline ? /^-ERR[^\n]*\r\n|\r\n\.\r\n$/.test(text) : text.includes('\r\n'));
    await this.until(() => done(this.#received.subarray(before).toString('latin1')));
    return this.#received.subarray(before).toString('latin1');
  }

  async until(predicate: (text: string) => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.text)) {
      if (Date.now() > deadline) throw new Error(`timed out; received so far: ${JSON.stringify(this.text.slice(-500))}`);
      if (this.#closed && !predicate(this.text)) throw new Error(`closed; received: ${JSON.stringify(this.text.slice(-500))}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async waitClosed(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#closed) {
      if (Date.now() > deadline) throw new Error(`not closed; received: ${JSON.stringify(this.text.slice(-500))}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  close(): void {
    this.socket.destroy();
  }
}
