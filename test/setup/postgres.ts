// Test PostgreSQL: a private cluster (Debian's postgresql 15, initdb/pg_ctl) in a temporary folder on a free 127.0.0.1 port, for one test run.
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { getFreePort } from '../testbed/ports.js';
import { TestbedError, TestbedErrorCode } from '../testbed/errors.js';

const run = promisify(execFile);

export const POSTGRES_BIN = '/usr/lib/postgresql/15/bin';
export const POSTGRES_USER = 'mailgate';

declare module 'vitest' {
  export interface ProvidedContext {
    /** postgres://mailgate:…@127.0.0.1:PORT/postgres — the cluster's admin database; tests create their own from it. */
    postgresAdminUrl: string;
  }
}

export interface PostgresCluster {
  /** The maintenance database's URL (user `mailgate`, a superuser, with a random password). */
  adminUrl: string;
  port: number;
  dir: string;
  /** With `tls`: the CA file that signed the server's certificate (for sslrootcert=). */
  caFile?: string;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  /** Serve TLS with a certificate for `names` (DNS names; 127.0.0.1 is added as an IP address unless `withoutIp`), signed by a CA of its own. */
  tls?: { names: string[]; withoutIp?: boolean };
}

/**
 * initdb refuses to run as root: then the folder belongs to Debian's `postgres` user and the server runs as it.
 * Settings for tests only: no fsync, small buffers — a crash of the test machine loses nothing anyone needs.
 */
export async function startPostgresCluster(clusterOptions: ClusterOptions = {}): Promise<PostgresCluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailgate-pg-'));
  const asRoot = process.getuid?.() === 0;
  const owner = asRoot ? await postgresUser() : undefined;
  const password = crypto.randomBytes(18).toString('base64url');
  const data = path.join(dir, 'data');
  const pwfile = path.join(dir, 'pwfile');
  fs.writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (owner) {
    fs.chownSync(dir, owner.uid, owner.gid);
    fs.chownSync(pwfile, owner.uid, owner.gid);
  }
  const as = (bin: string, args: string[]) =>
    owner ? run('runuser', ['-u', 'postgres', '--', path.join(POSTGRES_BIN, bin), ...args], { cwd: dir }) : run(path.join(POSTGRES_BIN, bin), args, { cwd: dir });

  try {
    await as('initdb', ['-D', data, '-U', POSTGRES_USER, '--pwfile', pwfile, '--auth-host=scram-sha-256', '--auth-local=scram-sha-256', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync']);
  } catch (cause) {
    throw new TestbedError(TestbedErrorCode.START_FAILED, `initdb failed: ${(cause as { stderr?: string }).stderr ?? String(cause)}`, { cause });
  }
  fs.rmSync(pwfile);
  const options = [
    'listen_addresses=127.0.0.1',
    `unix_socket_directories=${dir}`,
    'fsync=off',
    'synchronous_commit=off',
    'full_page_writes=off',
    'shared_buffers=32MB',
    'max_connections=300',
    'log_min_messages=warning',
  ];
  let caFile: string | undefined;
  if (clusterOptions.tls) {
    caFile = await makeCertificates(dir, clusterOptions.tls, owner);
    options.push('ssl=on', `ssl_cert_file=${path.join(dir, 'server.crt')}`, `ssl_key_file=${path.join(dir, 'server.key')}`);
  }
  for (let attempt = 1; ; attempt++) {
    const port = await getFreePort();
    const log = path.join(dir, 'server.log');
    try {
      await as('pg_ctl', ['-D', data, '-l', log, '-w', '-t', '30', '-o', [`-p ${port}`, ...options.map((o) => `-c ${o}`)].join(' '), 'start']);
    } catch (cause) {
      const text = fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '';
      // Another process took the port between our check and the server's bind: try another.
      if (attempt < 3 && /could not bind|Address already in use/i.test(text)) continue;
      throw new TestbedError(TestbedErrorCode.START_FAILED, `pg_ctl start failed: ${(cause as { stderr?: string }).stderr ?? ''}\n${text.slice(-2000)}`, { cause });
    }
    const adminUrl = `postgres://${POSTGRES_USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
    return {
      adminUrl,
      port,
      dir,
      ...(caFile ? { caFile } : {}),
      async stop() {
        try {
          await as('pg_ctl', ['-D', data, '-m', 'immediate', '-w', '-t', '30', 'stop']);
        } catch (cause) {
          throw new TestbedError(TestbedErrorCode.STOP_FAILED, `pg_ctl stop failed: ${(cause as { stderr?: string }).stderr ?? String(cause)}`, { cause });
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      },
    };
  }
}

async function postgresUser(): Promise<{ uid: number; gid: number }> {
  try {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: group } = await run('id', ['-g', 'postgres']);
    return { uid: Number(stdout.trim()), gid: Number(group.trim()) };
  } catch (cause) {
    throw new TestbedError(TestbedErrorCode.START_FAILED, 'running as root, the test PostgreSQL runs as the "postgres" user, which does not exist: install Debian\'s postgresql package', { cause });
  }
}

/** A CA and a server certificate it signed, with openssl; the key belongs to the server's user with mode 0600 (PostgreSQL insists). */
async function makeCertificates(dir: string, tls: NonNullable<ClusterOptions['tls']>, owner: { uid: number; gid: number } | undefined): Promise<string> {
  const file = (name: string) => path.join(dir, name);
  const openssl = (args: string[]) => run('openssl', args, { cwd: dir });
  await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', file('ca.key'), '-out', file('ca.crt'), '-days', '2', '-subj', '/CN=Mailgate test PostgreSQL CA']);
  await openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', `/CN=${tls.names[0] ?? 'localhost'}`]);
  const san = [...tls.names.map((n) => `DNS:${n}`), ...(tls.withoutIp ? [] : ['IP:127.0.0.1'])].join(',');
  fs.writeFileSync(file('server.ext'), `subjectAltName=${san}\n`);
  await openssl(['x509', '-req', '-in', file('server.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-CAcreateserial', '-out', file('server.crt'), '-days', '2', '-extfile', file('server.ext')]);
  fs.chmodSync(file('server.key'), 0o600);
  if (owner) for (const name of ['server.key', 'server.crt']) fs.chownSync(file(name), owner.uid, owner.gid);
  fs.chmodSync(file('ca.crt'), 0o644);
  return file('ca.crt');
}
