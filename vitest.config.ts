// Vitest configuration: tests live beside the code they prove (src/**) and in test/ for end-to-end suites; every file runs on SQLite, and those that run Mailgate's services in process run again on PostgreSQL.
import fs from 'node:fs';
import path from 'node:path';
import { defineConfig } from 'vitest/config';

const INCLUDE = ['src/**/*.test.ts', 'test/**/*.test.ts'];

/**
 * The files of the `postgres` project: those that open Mailgate's services through test/support/services.ts or
 * test/support/mailgateApp.ts, which put them on a fresh PostgreSQL database when MAILGATE_TEST_DATABASE=postgres;
 * and the files of test/cli/ that never name SQLite, whose `mailgate` commands then get a PostgreSQL database per
 * folder (test/support/cli.ts). The other CLI files test what only the SQLite default does (./data/mailgate.db,
 * `backup`, `init`'s embedded start) or read its file to check what a command wrote. A file that picks its databases
 * itself (it imports test/support/postgres.ts: the store's, leases' and export/import tests run on both in one go) is
 * left to the `sqlite` project, which already runs it whole.
 */
function postgresFiles(): string[] {
  const files = ['src', 'test']
    .flatMap((dir) => (fs.readdirSync(dir, { recursive: true }) as string[]).map((name) => path.join(dir, name)))
    .filter((file) => file.endsWith('.test.ts'))
    .sort();
  const opensServices = /support\/(services|mailgateApp)(\.js)?'/;
  const picksItsDatabases = /support\/postgres(\.js)?'/;
  const namesSqlite = /sqlite|mailgate\.db/i;
  return files.filter((file) => {
    const text = fs.readFileSync(path.resolve(file), 'utf8');
    if (picksItsDatabases.test(text)) return false;
    return opensServices.test(text) || (file.startsWith(`test${path.sep}cli${path.sep}`) && !namesSqlite.test(text));
  });
}

const perProject = {
  testTimeout: 30_000,
  hookTimeout: 60_000,
  pool: 'forks',
  // A worker process runs file after file without reloading what they import (fastify, oidc-provider, playwright…):
  // the suite took 727 s instead of 852 s on two cores (module loading 26 s instead of 238 s). Each file still builds
  // its own servers, stores and folders, and restores any environment variable it sets.
  isolate: false,
} as const;

export default defineConfig({
  test: {
    // Run once for the whole run (not per project): the build of dist/ for the CLI tests, the Debian packages, and
    // one PostgreSQL cluster whose URL every project's tests inject.
    globalSetup: ['test/setup/build.ts', 'test/setup/global.ts'],
    reporters: ['default', './test/setup/summaryReporter.ts'],
    // Dovecot, Postfix, oidc-provider and PostgreSQL are real processes; two cores: keep files few at once.
    maxWorkers: 2,
    projects: [
      { test: { name: 'sqlite', include: INCLUDE, ...perProject } },
      { test: { name: 'postgres', include: postgresFiles(), env: { MAILGATE_TEST_DATABASE: 'postgres' }, ...perProject } },
    ],
  },
});
