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
  /** STLS listener (plain first; config key proxy.pop3, started by the app) and implicit-TLS listener. */
  stls: { address: { host: string; port: number } };
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
  // proxy.pop3 (STLS) starts the way `mailgate serve` starts it; the implicit-TLS one beside it, which one config
  // cannot ask for, is started directly below.
  const withPop3 = (config: Config): Config => ({ ...config, proxy: { ...config.proxy, pop3: listenerConfig('starttls') } });
  const app = await startMailgateApp({ proxies: true, configure: (config) => withPop3(options.configure ? options.configure(config) : config) });
  const bob = bed.auth.users.bob;
  const client = bed.auth.addClient({ clientId: 'mailgate-pop3-proxy', clientSecret: 'pop3-proxy-secret', redirectUris: [`${app.url}/oauth/callback`] });
  await addConnected(app, microsoftCredential(bed.auth, client, 'bob-m365', bob.email), login(bob));
  const server = (name: string, port: number, security: string) =>
    app.api('POST', '/api/v1/servers', { name, protocol: 'pop3', host: '127.0.0.1', port, security, tlsCa: bed.mail.caPem, username: bob.email, auth: { type: 'oauth2', credential: 'bob-m365' } });
  for (const created of [await server('bob-pop3s', bed.mail.ports.pop3s, 'tls'), await server('bob-pop3', bed.mail.ports.pop3, 'starttls')]) expect(created.status, created.text).toBe(201);
  await app.services.proxyAccounts.add({ name: 'reader', server: 'bob-pop3s', password: READER_PASSWORD });
  const generated = await app.services.proxyAccounts.add({ name: 'reader-stls', server: 'bob-pop3', generatePassword: true });

  const logger = app.services.logger.child({ component: 'pop3-proxy' });
  const stls = { address: app.proxies.pop3! };
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
  // chunks kept as they came and joined only when read: a 6 MB RETR arrives in hundreds of TLS records
  #chunks: Buffer[] = [];
  #length = 0;
  #joined: Buffer | undefined;
  #closed = false;
  socket: net.Socket;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.#attach(socket);
  }

  #attach(socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => {
      this.#chunks.push(chunk);
      this.#length += chunk.length;
      this.#joined = undefined;
    });
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

  get bytes(): Buffer {
    this.#joined ??= Buffer.concat(this.#chunks, this.#length);
    return this.#joined;
  }

  get text(): string {
    return this.bytes.toString('latin1');
  }

  get closed(): boolean {
    return this.#closed;
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Sends a line and waits for the reply that follows (one line, or a multi-line body when `multiline`). */
  async command(line: string, multiline = false, timeoutMs = 10_000): Promise<string> {
    const before = this.#length;
    this.write(`${line}\r\n`);
    const done = () => {
      if (this.#length === before) return false;
      const head = this.#head(before);
      if (!multiline || head.startsWith('-ERR')) return head.includes('\r\n');
      return this.#length - before >= 5 && this.bytes.subarray(this.#length - 5).toString('latin1') === '\r\n.\r\n';
    };
    await this.#wait(done, timeoutMs);
    return this.bytes.subarray(before).toString('latin1');
  }

  async until(predicate: (text: string) => boolean, timeoutMs = 10_000): Promise<void> {
    await this.#wait(() => predicate(this.text), timeoutMs);
  }

  async #wait(done: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let seen = -1;
    for (;;) {
      if (seen !== this.#length || this.#closed) {
        seen = this.#length;
        if (done()) return;
        if (this.#closed) throw new Error(`closed; received: ${JSON.stringify(this.text.slice(-500))}`);
      }
      if (Date.now() > deadline) throw new Error(`timed out; received so far: ${JSON.stringify(this.text.slice(-500))}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Up to 512 bytes received from `offset` on: enough for a status line. */
  #head(offset: number): string {
    return this.bytes.subarray(offset, offset + 512).toString('latin1');
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
