// A self-signed TLS certificate for 127.0.0.1 (SAN IP:127.0.0.1, DNS:localhost), made once per process:
// clients verify it by passing its PEM as their CA, as they would a real server's chain.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCertificate {
  certPem: string;
  keyPem: string;
}

let making: Promise<TestCertificate> | undefined;

export function testCertificate(): Promise<TestCertificate> {
  making ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mailgate-cert-'));
    try {
      const [cert, key] = [join(dir, 'cert.pem'), join(dir, 'key.pem')];
      // EC P-256: instant to generate, and every TLS client in the tests speaks it
      await run('openssl', [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '30',
        '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
        '-keyout', key, '-out', cert,
      ]);
      return { certPem: await readFile(cert, 'utf8'), keyPem: await readFile(key, 'utf8') };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  })();
  return making;
}
