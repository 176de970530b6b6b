// The certificate a relay or proxy listener presents: the configured files, or a self-signed one made once in the data directory.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import tls from 'node:tls';
import { generate } from 'selfsigned';
import { ErrorCode, MailgateError } from '../errors.js';

export interface TlsIdentity {
  cert: string;
  key: string;
  /** SHA-256 of the certificate, `AB:CD:…` as browsers and `openssl x509 -fingerprint -sha256` show it. */
  fingerprint256: string;
  selfSigned: boolean;
  certFile: string;
}

const SELF_SIGNED_CERT = 'listener-cert.pem';
const SELF_SIGNED_KEY = 'listener-key.pem';

/** Reads `certFile`/`keyFile`, or the self-signed pair in `dataDir` (made on first use); errors name the file and the fix. */
export async function loadTlsIdentity(files: { certFile: string | undefined; keyFile: string | undefined }, dataDir: string, configKey: string): Promise<TlsIdentity> {
  if (files.certFile && files.keyFile) {
    const cert = readPem(files.certFile, `${configKey}.certFile`);
    const key = readPem(files.keyFile, `${configKey}.keyFile`);
    try {
      tls.createSecureContext({ cert, key });
    } catch (cause) {
      throw new MailgateError(ErrorCode.CONFIG_INVALID, `${configKey}: the certificate ${files.certFile} and key ${files.keyFile} do not form a usable pair (${(cause as Error).message}): give the key that belongs to the certificate, both in PEM`, { cause });
    }
    return { cert, key, fingerprint256: new crypto.X509Certificate(cert).fingerprint256, selfSigned: false, certFile: files.certFile };
  }
  return selfSigned(dataDir);
}

/** Certificates being made, by data directory: several listeners starting together share one. */
const making = new Map<string, Promise<TlsIdentity>>();

async function selfSigned(dataDir: string): Promise<TlsIdentity> {
  const certFile = path.join(dataDir, SELF_SIGNED_CERT);
  const keyFile = path.join(dataDir, SELF_SIGNED_KEY);
  if (fs.existsSync(certFile) && fs.existsSync(keyFile)) {
    const cert = fs.readFileSync(certFile, 'utf8');
    return { cert, key: fs.readFileSync(keyFile, 'utf8'), fingerprint256: new crypto.X509Certificate(cert).fingerprint256, selfSigned: true, certFile };
  }
  // Several listeners start together: one certificate for all of them.
  const pending = making.get(dataDir);
  if (pending) return pending;
  const made = (async () => {
    const hostname = os.hostname();
    const names = [...new Set(['localhost', hostname])].filter((n) => !net.isIP(n));
    const pems = await generate([{ name: 'commonName', value: hostname || 'mailgate' }, { name: 'organizationName', value: 'Mailgate (self-signed)' }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      notAfterDate: new Date(Date.now() + 10 * 365 * 86_400_000),
      extensions: [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
        { name: 'extKeyUsage', serverAuth: true },
        { name: 'subjectAltName', altNames: [...names.map((value) => ({ type: 2 as const, value })), { type: 7 as const, ip: '127.0.0.1' }, { type: 7 as const, ip: '::1' }] },
      ],
    });
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(keyFile, pems.private, { mode: 0o600 });
    fs.writeFileSync(certFile, pems.cert, { mode: 0o644 });
    return { cert: pems.cert, key: pems.private, fingerprint256: new crypto.X509Certificate(pems.cert).fingerprint256, selfSigned: true, certFile };
  })().finally(() => {
    making.delete(dataDir);
  });
  making.set(dataDir, made);
  return made;
}

function readPem(file: string, key: string): string {
  try {
    const text = fs.readFileSync(file, 'utf8');
    if (!text.includes('-----BEGIN')) throw new Error('not a PEM file');
    return text;
  } catch (cause) {
    const reason = (cause as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (cause as Error).message;
    throw new MailgateError(ErrorCode.CONFIG_INVALID, `${key}: cannot read ${file}: ${reason} (give a PEM file readable by Mailgate, or leave certFile and keyFile out for a self-signed certificate)`, { cause });
  }
}
