// Vitest configuration: tests live beside the code they prove (src/**) and in test/ for end-to-end suites.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['test/setup/build.ts', 'test/setup/global.ts'],
    reporters: ['default', './test/setup/summaryReporter.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Dovecot, Postfix and oidc-provider are real processes; two cores: keep files few at once.
    maxWorkers: 2,
    pool: 'forks',
  },
});
