// An in-process Mailgate with its IMAP proxy in front of the test bed's Dovecot: a connected OAuth2 credential, the server, a proxy account, and real clients to drive it.
import { execFile } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import type { Config, ListenerConfig } from '../../src/config/load.js';
import { startProxyListener, type ProxyListener } from '../../src/proxy/listener.js';
import { imapProtocol } from '../../src/proxy/imap/protocol.js';
import type { TestClient } from '../testbed/authServer.js';
import type { Testbed } from '../testbed/useTestbed.js';
import { addConnected, login, microsoftCredential } from '../support/credentials.js';
import { startMailgateApp, type MailgateApp } from '../support/mailgateApp.js';

export interface ImapProxyApp {
  app: MailgateApp;
  client: TestClient;
  /** The STARTTLS listener from the config (`proxy.imap`). */
  port: number;
  /** A second listener with implicit TLS on the same services. */
  tlsPort: number;
  /** The self-signed certificate both listeners present (PEM file). */
  certFile: string;
  account: string;
  password: string;
  /** The mailbox behind the account. */
  mailbox: string;
  close(): Promise<void>;
}

export function listenerConfig(tlsMode: ListenerConfig['tls']): ListenerConfig {
  return { listen: { host: '127.0.0.1', port: 0 }, tls: tlsMode, certFile: undefined, keyFile: undefined, allowInsecureAuth: false, maxConnections: 300, maxConnectionsPerClient: 300 };
}

export async function startImapProxyApp(bed: Testbed, options: { loginTimeoutMs?: number; clientId: string } ): Promise<ImapProxyApp> {
  const configure = (config: Config): Config => ({ ...config, proxy: { ...config.proxy, imap: listenerConfig('starttls'), loginTimeoutMs: options.loginTimeoutMs ?? config.proxy.loginTimeoutMs } });
  const app = await startMailgateApp({ proxies: true, configure });
  const client = bed.auth.addClient({ clientId: options.clientId, clientSecret: `${options.clientId}-secret`, redirectUris: [`${app.url}/oauth/callback`] });
  const mailbox = bed.auth.users.alice.email;
  await addConnected(app, microsoftCredential(bed.auth, client, 'alice'), login(bed.auth.users.alice));
  const server = { name: 'dovecot', protocol: 'imap', host: '127.0.0.1', port: bed.mail.ports.imaps, security: 'tls', tlsCa: bed.mail.caPem, username: mailbox, auth: { type: 'oauth2', credential: 'alice' } };
  const created = await app.api('POST', '/api/v1/servers', server);
  if (created.status !== 201) throw new Error(`server not created: ${created.text}`);
  const { generatedPassword } = await app.services.proxyAccounts.add({ name: 'scanner', server: 'dovecot', generatePassword: true });
  const implicit: ProxyListener = await startProxyListener(app.services, 'proxy.imaps', listenerConfig('implicit'), imapProtocol(app.services, app.services.logger), app.services.logger);
  return {
    app,
    client,
    port: app.proxies.imap!.port,
    tlsPort: implicit.address.port,
    certFile: path.join(app.services.config.dataDir, 'listener-cert.pem'),
    account: 'scanner',
    password: generatedPassword!,
    mailbox,
    async close() {
      await implicit.stop();
      await app.close();
    },
  };
}

/** Runs a Python script (values through env, never interpolated); resolves with stdout, rejects with stderr. */
export function python(script: string, env: Record<string, string>, timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('python3', ['-c', script], { env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`python failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** A raw client: lines in, everything the proxy says out; TLS from the start when `ca` is given. */
export class RawClient {
  #data = '';
  #closed = false;
  #waiters: (() => void)[] = [];

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.#data += chunk.toString('latin1');
      this.#wake();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
    socket.on('error', () => undefined);
  }

  static async connect(port: number, ca?: string): Promise<RawClient> {
    const socket = ca ? tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }) : net.connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      socket.once(ca ? 'secureConnect' : 'connect', () => resolve());
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  get text(): string {
    return this.#data;
  }

  get closed(): boolean {
    return this.#closed;
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Waits until what the proxy said matches (or the connection closed); returns everything said so far. */
  async until(pattern: RegExp, timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.#data)) {
      if (this.#closed) throw new Error(`closed before ${pattern}; got: ${JSON.stringify(this.#data.slice(-500))}`);
      if (Date.now() > deadline) throw new Error(`no ${pattern} within ${timeoutMs} ms; got: ${JSON.stringify(this.#data.slice(-500))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.#data;
  }

  /** Resolves when the proxy closed the connection (fails after the timeout). */
  async untilClosed(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#closed) {
      if (Date.now() > deadline) throw new Error(`still open after ${timeoutMs} ms; got: ${JSON.stringify(this.#data.slice(-500))}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return this.#data;
  }

  close(): void {
    this.socket.destroy();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}
