// Vitest global setup: installs the Debian packages the suites' real peers need, once per run, before any test, and starts the test PostgreSQL.
import type { TestProject } from 'vitest/node';
import { BROWSER_PACKAGES, ensureDebianPackages, MAIL_BED_PACKAGES, MAIL_CLIENT_PACKAGES, OPS_PACKAGES, POSTGRES_PACKAGES } from './debian.js';
import { startPostgresCluster } from './postgres.js';

// One list to extend when a suite needs another real peer.
const REQUIRED_PACKAGES: readonly string[] = [...MAIL_BED_PACKAGES, ...BROWSER_PACKAGES, ...MAIL_CLIENT_PACKAGES, ...POSTGRES_PACKAGES, ...OPS_PACKAGES];

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Fast path when all is installed: a single dpkg-query call (~20 ms).
  const { installed } = await ensureDebianPackages(REQUIRED_PACKAGES);
  if (installed.length > 0) console.log(`[testbed] installed Debian packages: ${installed.join(' ')}`);
  // One cluster for the run (about 2 s to start); each test takes a database of its own (test/support/postgres.ts).
  const postgres = await startPostgresCluster();
  project.provide('postgresAdminUrl', postgres.adminUrl);
  return () => postgres.stop();
}
