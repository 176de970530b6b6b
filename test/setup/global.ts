// Vitest global setup: installs the Debian packages the suites' real peers need, once per run, before any test.
import { BROWSER_PACKAGES, ensureDebianPackages, MAIL_BED_PACKAGES, MAIL_CLIENT_PACKAGES } from './debian.js';

// One list to extend when a suite needs another real peer (e.g. 'postgresql').
const REQUIRED_PACKAGES: readonly string[] = [...MAIL_BED_PACKAGES, ...BROWSER_PACKAGES, ...MAIL_CLIENT_PACKAGES];

export default async function setup(): Promise<void> {
  // Fast path when all is installed: a single dpkg-query call (~20 ms).
  const { installed } = await ensureDebianPackages(REQUIRED_PACKAGES);
  if (installed.length > 0) console.log(`[testbed] installed Debian packages: ${installed.join(' ')}`);
}
