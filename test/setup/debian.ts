// Makes sure the Debian packages a test suite needs are installed: installs them when we are root, else says how.
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { TestbedError, TestbedErrorCode } from '../testbed/errors.js';

const run = promisify(execFile);

/** What the mail bed starts: Dovecot with every protocol we test, openssl for its certificate, curl as a cross-check client. */
export const MAIL_BED_PACKAGES: readonly string[] = [
  'dovecot-core',
  'dovecot-imapd',
  'dovecot-pop3d',
  'dovecot-submissiond',
  'dovecot-lmtpd',
  'openssl',
  'curl',
  'ca-certificates',
];

/**
 * What the browser tests drive: Debian's Chromium at /usr/bin/chromium (Playwright's own browser download is refused here).
 * Its dependencies bring fontconfig and a default font (fonts-dejavu-core), so pages render real glyphs.
 */
export const BROWSER_PACKAGES: readonly string[] = ['chromium'];

/** Real mail programs from Debian that talk to the relay and proxies as a user's program would; curl is one too. */
export const MAIL_CLIENT_PACKAGES: readonly string[] = ['msmtp', 'fetchmail', 'curl'];

/** The database the PostgreSQL tests run on: a private cluster started by test/setup/postgres.ts with its initdb/pg_ctl. */
export const POSTGRES_PACKAGES: readonly string[] = ['postgresql'];

/** Operators' tools the ops tests check our files with: systemd-analyze (the unit), promtool (the alerting rules). */
export const OPS_PACKAGES: readonly string[] = ['systemd', 'prometheus'];

/** Packages dpkg does not report as fully installed ("install ok installed"). */
export async function findMissingPackages(pkgs: readonly string[]): Promise<string[]> {
  if (pkgs.length === 0) return [];
  // One dpkg-query for all: it prints the known ones and exits 1 when any is unknown, which is not an error here.
  const out = await run('dpkg-query', ['-W', '-f=${Package} ${Status}\n', ...pkgs]).then(
    (r) => r.stdout,
    (err: { stdout?: string }) => err.stdout ?? '',
  );
  const installed = new Set(
    out
      .split('\n')
      .filter((line) => line.endsWith(' ok installed'))
      .map((line) => line.split(' ')[0]!.replace(/:.*$/, '')),
  );
  return pkgs.filter((p) => !installed.has(p));
}

/** The command a non-root user has to run (also the error message then, so it can be pasted as it is). */
export function installCommand(pkgs: readonly string[]): string {
  const preseed = pkgs.includes('postfix')
    ? `echo "postfix postfix/main_mailer_type select No configuration" | sudo debconf-set-selections && `
    : '';
  return `sudo apt-get update && ${preseed}sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${pkgs.join(' ')}`;
}

// `apt-get update` takes seconds and the lists do not change during one test run: once per process.
let aptUpdated: Promise<void> | undefined;

function runLoud(command: string, args: string[], input?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.stdin.end(input ?? '');
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve();
      else
        reject(
          new TestbedError(TestbedErrorCode.PACKAGE_INSTALL_FAILED, `${command} ${args.join(' ')} exited with ${code}:\n${output.slice(-3000)}`),
        );
    });
  });
}

/**
 * Installs whichever of `pkgs` are missing. Never skips: without root it throws, and the message is the command to run.
 */
export async function ensureDebianPackages(pkgs: readonly string[]): Promise<{ installed: string[] }> {
  const missing = await findMissingPackages(pkgs);
  if (missing.length === 0) return { installed: [] };
  if (process.getuid?.() !== 0) {
    throw new TestbedError(TestbedErrorCode.PACKAGES_MISSING, installCommand(missing), { details: { missing } });
  }
  aptUpdated ??= runLoud('apt-get', ['update']);
  await aptUpdated;
  if (missing.includes('postfix')) {
    // Without this answer postfix would configure a system instance on port 25 (or ask interactively).
    await runLoud('debconf-set-selections', [], 'postfix postfix/main_mailer_type select No configuration\n');
  }
  await runLoud('apt-get', ['install', '-y', '--no-install-recommends', ...missing]);
  const stillMissing = await findMissingPackages(missing);
  if (stillMissing.length > 0) {
    throw new TestbedError(TestbedErrorCode.PACKAGE_INSTALL_FAILED, `apt-get install succeeded but still missing: ${stillMissing.join(' ')}`);
  }
  return { installed: missing };
}
