// A real mail server for tests: Dovecot from Debian (IMAP, POP3, submission, LMTP) in a fresh temp dir on free
// 127.0.0.1 ports, checking OAuth2 tokens by introspection at the test authorization server, relaying
// submitted mail through an in-process SMTP sink back into its own mailboxes.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, chown, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { TestbedError, TestbedErrorCode } from './errors.js';
import { testCertificate } from './mail/certificate.js';
import {
  PASSWORD_USER,
  renderDovecotConfig,
  renderOAuth2Config,
  renderPasswdFile,
  type DovecotPaths,
  type IntrospectionSettings,
  type MailPorts,
  type OAuthMechanism,
} from './mail/dovecotConfig.js';
import { childPids, reapPids, startWatchdog, waitForPorts } from './mail/processes.js';
import { startSmtpSink, type SmtpSink } from './mail/smtpSink.js';
import { getFreePorts } from './ports.js';

export type { MailPorts, OAuthMechanism } from './mail/dovecotConfig.js';
export type { ReceivedMessage, SmtpReply, SmtpSink } from './mail/smtpSink.js';
export { PASSWORD_USER } from './mail/dovecotConfig.js';

export interface MailServerOptions extends IntrospectionSettings {
  /** SASL mechanisms offered for tokens (default both). imapflow prefers OAUTHBEARER: offer only xoauth2 to test XOAUTH2 with it. */
  mechanisms?: OAuthMechanism[];
}

export interface MailServer {
  host: '127.0.0.1';
  ports: MailPorts;
  /** The server certificate (self-signed, SAN IP:127.0.0.1): pass it as CA to verify TLS. */
  caPem: string;
  /** The bed's temp dir (config, base_dir, logs, mailboxes). */
  dir: string;
  /** The password user (PLAIN / LOGIN); token users need no account, any address has a mailbox. */
  passwordUser: typeof PASSWORD_USER;
  /** The SMTP hop after submission: what it received, and which recipients it refuses. */
  sink: SmtpSink;
  /** Path of a user's Maildir (new mail is in `<maildir>/new`). */
  maildir(email: string): string;
  /** Puts a raw message into the mailboxes of `to` over LMTP, as inbound mail would arrive. Returns LMTP's reply. */
  deliver(raw: string | Buffer, to: string | string[], from?: string): Promise<string>;
  /** Dovecot's log so far. */
  logs(): string;
  /** Copies Dovecot's and the sink's logs to `<cwd>/test-output/testbed-logs/<label>/`; returns that dir. */
  keepLogs(label: string, extra?: Record<string, string>): Promise<string>;
  /** Stops Dovecot (and waits until its processes are gone) and the sink, then removes the temp dir. Safe to call twice. */
  stop(): Promise<void>;
}

const MAIL_UID = 65534; // nobody: the userdb runs mail processes as this uid; mailboxes must belong to it
const MAIL_GID = 65534;
const START_DEADLINE_MS = 10_000;

export async function startMailServer(options: MailServerOptions): Promise<MailServer> {
  let lastError: unknown;
  // Free ports are only free until someone binds them: on a clash, start again on new ones.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(options);
    } catch (err) {
      lastError = err;
      if (!(err instanceof TestbedError && err.details.addressInUse === true)) throw err;
    }
  }
  throw lastError;
}

const MECHANISMS: readonly OAuthMechanism[] = ['xoauth2', 'oauthbearer'];

async function startOnce(options: MailServerOptions): Promise<MailServer> {
  const mechanisms = options.mechanisms ?? [...MECHANISMS];
  // Dovecot would start anyway and only its auth process would fail, at the first login
  if (mechanisms.length === 0 || mechanisms.some((m) => !MECHANISMS.includes(m))) {
    throw new TestbedError(TestbedErrorCode.BAD_OPTION, `mechanisms must be a non-empty list of ${MECHANISMS.join(', ')}; got ${JSON.stringify(mechanisms)}`);
  }
  const root = await mkdtemp(join(tmpdir(), 'mailgate-bed-'));
  // mkdtemp makes 0700; Dovecot's unprivileged processes (dovecot, dovenull, nobody) must traverse it
  await chmod(root, 0o755);
  const paths: DovecotPaths = {
    root,
    config: join(root, 'etc', 'dovecot.conf'),
    oauth2Config: join(root, 'etc', 'oauth2.conf.ext'),
    passwdFile: join(root, 'etc', 'passwd'),
    cert: join(root, 'etc', 'cert.pem'),
    key: join(root, 'etc', 'key.pem'),
    baseDir: join(root, 'run'),
    stateDir: join(root, 'state'),
    logFile: join(root, 'logs', 'dovecot.log'),
    mailRoot: join(root, 'mail'),
  };
  let dovecot: ChildProcess | undefined;
  let watchdog: { release(): void } | undefined;
  let sink: SmtpSink | undefined;
  let stopped = false;
  let stderr = '';
  const readLog = () => readFile(paths.logFile, 'utf8').catch(() => '');
  // If the test process dies without stop(), do not leave a Dovecot behind.
  const killOnExit = () => dovecot?.kill('SIGTERM');

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    process.off('exit', killOnExit);
    const errors: unknown[] = [];
    if (dovecot?.pid !== undefined && dovecot.exitCode === null && dovecot.signalCode === null) {
      const master = dovecot.pid;
      const children = await childPids(master);
      const exited = new Promise((resolve) => dovecot!.once('exit', resolve));
      dovecot.kill('SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
      const killed = await reapPids([master, ...children], 3000);
      // Reaped, so nothing is left behind; on a loaded machine Dovecot's children can be slow to go. Say so, do not fail the suite.
      if (killed.length > 0) process.stderr.write(`[testbed] Dovecot did not stop within 8 s: SIGKILLed processes ${killed.join(' ')}\n`);
    }
    watchdog?.release();
    if (sink) await sink.stop().catch((err: unknown) => errors.push(err));
    await rm(root, { recursive: true, force: true }).catch((err: unknown) => errors.push(err));
    if (errors.length > 0) {
      throw new TestbedError(TestbedErrorCode.STOP_FAILED, `mail server did not stop cleanly: ${errors.map(String).join('; ')}`);
    }
  };

  try {
    const [imap, imaps, pop3, pop3s, submission, lmtp, sinkPort] = await getFreePorts(7);
    const ports: MailPorts = { imap: imap!, imaps: imaps!, pop3: pop3!, pop3s: pop3s!, submission: submission!, lmtp: lmtp!, sink: sinkPort! };
    const cert = await testCertificate();
    await Promise.all(['etc', 'logs', 'state', 'mail'].map((d) => mkdir(join(root, d), { recursive: true })));
    await chown(paths.mailRoot, MAIL_UID, MAIL_GID);
    await writeFile(paths.cert, cert.certPem);
    await writeFile(paths.key, cert.keyPem, { mode: 0o600 });
    await writeFile(paths.passwdFile, renderPasswdFile(), { mode: 0o644 });
    await writeFile(paths.oauth2Config, renderOAuth2Config(options), { mode: 0o644 });
    await writeFile(
      paths.config,
      renderDovecotConfig({
        paths,
        ports,
        instanceName: `mailgate-testbed-${process.pid}-${randomBytes(4).toString('hex')}`,
        mechanisms,
        mailUid: MAIL_UID,
        mailGid: MAIL_GID,
      }),
    );

    sink = await startSmtpSink({ port: ports.sink, lmtpPort: ports.lmtp });
    // -F: Dovecot's master stays our child, so we hold its pid and see it exit.
    dovecot = spawn('dovecot', ['-F', '-c', paths.config], { stdio: ['ignore', 'ignore', 'pipe'] });
    dovecot.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const spawnError = new Promise<Error>((resolve) => dovecot!.once('error', resolve));
    process.on('exit', killOnExit);
    if (dovecot.pid !== undefined) watchdog = startWatchdog(dovecot.pid, root);
    const running = () => dovecot!.exitCode === null && dovecot!.signalCode === null && dovecot!.pid !== undefined;
    const up = await Promise.race([
      waitForPorts([ports.imap, ports.imaps, ports.pop3, ports.pop3s, ports.submission, ports.lmtp], START_DEADLINE_MS, running),
      spawnError.then((err) => {
        stderr += `spawn failed: ${err.message}`;
        return false;
      }),
    ]);
    if (!up) {
      const log = await readLog();
      const tail = `${stderr}\n${log}`.trim().split('\n').slice(-30).join('\n');
      throw new TestbedError(TestbedErrorCode.START_FAILED, `Dovecot did not start (${running() ? 'ports not answering' : `exited ${dovecot.exitCode ?? dovecot.signalCode}`}):\n${tail}`, {
        details: { addressInUse: /address already in use/i.test(tail) },
      });
    }

    const caPem = cert.certPem;
    const activeSink = sink;
    return {
      host: '127.0.0.1',
      ports,
      caPem,
      dir: root,
      passwordUser: PASSWORD_USER,
      sink: activeSink,
      maildir: (email) => join(paths.mailRoot, email.toLowerCase(), 'Maildir'),
      deliver: (raw, to, from) => activeSink.deliver(raw, to, from),
      logs: () => readLogSync(paths.logFile),
      async keepLogs(label, extra = {}) {
        const target = resolve('test-output', 'testbed-logs', label.replace(/[^\w.-]+/g, '_'));
        await mkdir(target, { recursive: true });
        await cp(join(root, 'logs'), target, { recursive: true }).catch(() => undefined);
        await writeFile(join(target, 'sink.log'), activeSink.logs());
        await writeFile(join(target, 'dovecot.conf'), await readFile(paths.config, 'utf8').catch(() => ''));
        for (const [name, text] of Object.entries(extra)) await writeFile(join(target, name), text);
        return target;
      },
      stop,
    };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}

// logs() is synchronous so it can go straight into an assertion message.
function readLogSync(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
