// Vitest global setup: compiles src/ to dist/ (unless dist/ was built from exactly these sources), so CLI tests run the same `dist/cli.js` the README runs.
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** A hash of everything the build reads: every file under src/, the tsconfigs and package.json. */
function sourceHash(root: string): string {
  const hash = crypto.createHash('sha256');
  const files = [...(fs.readdirSync(path.join(root, 'src'), { recursive: true, withFileTypes: true }) as fs.Dirent[])]
    .filter((entry) => entry.isFile())
    .map((entry) => path.join(entry.parentPath, entry.name))
    .concat(['tsconfig.json', 'tsconfig.build.json', 'package.json'].map((f) => path.join(root, f)))
    .sort();
  for (const file of files) hash.update(path.relative(root, file)).update('\0').update(fs.readFileSync(file)).update('\0');
  return hash.digest('hex');
}

export default function setup(): void {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  const stamp = path.join(root, 'dist', '.source-hash');
  const wanted = sourceHash(root);
  // The same sources built a moment ago (a second suite run, or the Node 24 run of .ci/run on a copy of this tree):
  // tsc's output would be identical, so the ~20 s of compiling are skipped.
  if (fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === wanted && fs.existsSync(path.join(root, 'dist', 'cli.js'))) return;
  fs.rmSync(stamp, { force: true });
  execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
  fs.writeFileSync(stamp, wanted);
}
