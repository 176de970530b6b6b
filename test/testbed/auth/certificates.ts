// Self-signed X.509 certificates for app registrations that authenticate with a certificate (Entra ID's
// "Certificates & secrets" → Certificates), made with openssl since node:crypto cannot create certificates.
import { execFile } from 'node:child_process';
import { createHash, generateKeyPair, X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TestbedError, TestbedErrorCode } from '../errors.js';

export interface TestCertificate {
  /** `-----BEGIN CERTIFICATE-----` … */
  certificatePem: string;
  /** PKCS#8: `-----BEGIN PRIVATE KEY-----` … */
  privateKeyPem: string;
  /** Certificate followed by its key: the one file admins export from Azure or openssl. */
  pem: string;
  /** base64url SHA-1 of the DER certificate: the `x5t` Entra ID identifies the key by. */
  x5t: string;
  /** base64url SHA-256 of the DER certificate. */
  x5tS256: string;
  /** The JWK of the public key with `x5c`, `x5t`, `x5t#S256`, and `kid` = x5t: what the client registration holds. */
  publicJwk: Record<string, unknown>;
}

/**
 * A fresh RSA key and a self-signed certificate for it. Asynchronous all the way (openssl runs as a child process):
 * the authorization server runs in this process and must keep answering meanwhile.
 */
export async function generateTestCertificate(options: { commonName?: string; days?: number } = {}): Promise<TestCertificate> {
  const { privateKey, publicKey } = await promisify(generateKeyPair)('rsa', { modulusLength: 2048 });
  const privateKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const subject = `/CN=${(options.commonName ?? 'mailgate-testbed').replace(/[/=]/g, '_')}`;
  const certificatePem = await selfSign(privateKeyPem, ['-subj', subject, '-days', String(options.days ?? 30), '-sha256']);
  const der = new X509Certificate(certificatePem).raw;
  const x5t = createHash('sha1').update(der).digest('base64url');
  const x5tS256 = createHash('sha256').update(der).digest('base64url');
  const publicJwk = {
    ...publicKey.export({ format: 'jwk' }),
    kid: x5t,
    use: 'sig',
    alg: 'RS256',
    x5c: [der.toString('base64')],
    x5t,
    'x5t#S256': x5tS256,
  };
  return { certificatePem, privateKeyPem, pem: `${certificatePem.trimEnd()}\n${privateKeyPem}`, x5t, x5tS256, publicJwk };
}

/** Runs openssl on the key (written to a private temp file: openssl cannot read a key from a pipe Node gives it). */
async function selfSign(privateKeyPem: string, args: string[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'testbed-cert-'));
  try {
    const keyFile = join(dir, 'key.pem');
    await writeFile(keyFile, privateKeyPem, { mode: 0o600 });
    const { stdout } = await promisify(execFile)('openssl', ['req', '-x509', '-new', '-key', keyFile, ...args]);
    return stdout;
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new TestbedError(
      missing ? TestbedErrorCode.PACKAGES_MISSING : TestbedErrorCode.START_FAILED,
      missing ? 'openssl is needed to make test certificates (Debian package openssl)' : `openssl req failed: ${String((err as { stderr?: unknown }).stderr ?? err).trim()}`,
      { cause: err },
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
