// Proves the listener helpers: connection limits per listener and per client, network matching, the self-signed identity made once, configured certificates checked, and the status snapshot.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isMailgateError } from '../errors.js';
import { openStore } from '../store/store.js';
import { ConnectionLimits, clientAddress, isLoopback, networkMatcher } from './connectionLimits.js';
import { ListenerRegistry } from './registry.js';
import { loadTlsIdentity } from './tlsIdentity.js';

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'mailgate-listeners-'));

describe('connection limits', () => {
  it('refuses past the per-client limit while other clients still get in, and frees a slot on release (once)', () => {
    const limits = new ConnectionLimits(3, 2);
    const a1 = limits.acquire('192.0.2.1');
    const a2 = limits.acquire('192.0.2.1');
    expect(a1.ok && a2.ok).toBe(true);
    expect(limits.acquire('192.0.2.1')).toEqual({ ok: false, reason: 'client' });
    const b1 = limits.acquire('192.0.2.2');
    expect(b1.ok).toBe(true);
    expect(limits.acquire('192.0.2.3')).toEqual({ ok: false, reason: 'listener' });
    if (!a1.ok) throw new Error('unreachable');
    a1.release();
    a1.release();
    expect(limits.open).toBe(2);
    expect(limits.acquire('192.0.2.1').ok).toBe(true);
    expect(limits.acquire('192.0.2.3')).toEqual({ ok: false, reason: 'listener' });
  });

  it('shows IPv4 clients of a dual-stack socket as IPv4 and knows loopback', () => {
    expect(clientAddress('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(clientAddress('2001:db8::1')).toBe('2001:db8::1');
    expect(clientAddress(undefined)).toBe('unknown');
    expect(isLoopback('127.0.0.1')).toBe(true);
    expect(isLoopback('127.8.0.1')).toBe(true);
    expect(isLoopback('::1')).toBe(true);
    expect(isLoopback('192.168.1.1')).toBe(false);
  });

  it('matches addresses against networks and single hosts, IPv4 and IPv6', () => {
    const allowed = networkMatcher(['192.168.10.0/24', '10.1.2.3', 'fd00::/8']);
    expect(allowed('192.168.10.77')).toBe(true);
    expect(allowed('192.168.11.1')).toBe(false);
    expect(allowed('10.1.2.3')).toBe(true);
    expect(allowed('10.1.2.4')).toBe(false);
    expect(allowed('fd12::5')).toBe(true);
    expect(allowed('2001:db8::5')).toBe(false);
    expect(allowed('not an address')).toBe(false);
    expect(networkMatcher([])('127.0.0.1')).toBe(false);
  });
});

describe('TLS identity', () => {
  it('makes one self-signed certificate in the data directory (key mode 0600) and reuses it', async () => {
    const dir = tempDir();
    const [first, second] = await Promise.all([loadTlsIdentity({ certFile: undefined, keyFile: undefined }, dir, 'proxy.imap'), loadTlsIdentity({ certFile: undefined, keyFile: undefined }, dir, 'relay.listeners[0]')]);
    expect(first.selfSigned).toBe(true);
    expect(second.fingerprint256).toBe(first.fingerprint256);
    expect(first.fingerprint256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect(fs.statSync(path.join(dir, 'listener-key.pem')).mode & 0o777).toBe(0o600);
    const again = await loadTlsIdentity({ certFile: undefined, keyFile: undefined }, dir, 'proxy.pop3');
    expect(again.fingerprint256).toBe(first.fingerprint256);
    const cert = new crypto.X509Certificate(first.cert);
    expect(cert.subjectAltName).toContain('DNS:localhost');
    expect(cert.subjectAltName).toContain('IP Address:127.0.0.1');
  });

  it('uses configured files, and names the key and the fix when they are missing or do not belong together', async () => {
    const own = await loadTlsIdentity({ certFile: undefined, keyFile: undefined }, tempDir(), 'x');
    const other = await loadTlsIdentity({ certFile: undefined, keyFile: undefined }, tempDir(), 'x');
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'cert.pem'), own.cert);
    fs.writeFileSync(path.join(dir, 'key.pem'), own.key);
    fs.writeFileSync(path.join(dir, 'other-key.pem'), other.key);
    const configured = await loadTlsIdentity({ certFile: path.join(dir, 'cert.pem'), keyFile: path.join(dir, 'key.pem') }, tempDir(), 'proxy.imap');
    expect(configured).toMatchObject({ selfSigned: false, fingerprint256: own.fingerprint256 });

    const missing = await loadTlsIdentity({ certFile: path.join(dir, 'nope.pem'), keyFile: path.join(dir, 'key.pem') }, tempDir(), 'proxy.imap').catch((e: unknown) => e);
    expect(isMailgateError(missing, 'CONFIG_INVALID')).toBe(true);
    expect((missing as Error).message).toMatch(/^proxy\.imap\.certFile: cannot read .*nope\.pem: no such file/);
    const mismatched = await loadTlsIdentity({ certFile: path.join(dir, 'cert.pem'), keyFile: path.join(dir, 'other-key.pem') }, tempDir(), 'relay.listeners[1]').catch((e: unknown) => e);
    expect((mismatched as Error).message).toMatch(/^relay\.listeners\[1\]: the certificate .* and key .* do not form a usable pair/);
    expect((mismatched as Error).message).not.toContain('PRIVATE KEY');
  });
});

describe('listener registry', () => {
  it('counts sessions, reports failures, and leaves a snapshot another process can read', async () => {
    const dir = tempDir();
    const store = await openStore({ kind: 'sqlite', file: path.join(dir, 'm.db') });
    try {
      const registry = new ListenerRegistry(store);
      const relay = registry.register({ id: 'relay.listeners[0]', kind: 'smtp-relay', listen: '127.0.0.1:0', tls: 'starttls' });
      const imap = registry.register({ id: 'proxy.imap', kind: 'imap-proxy', listen: '127.0.0.1:1143', tls: 'implicit' });
      relay.setState('listening', { listen: '127.0.0.1:2525', certificate: { fingerprint256: 'AA:BB', selfSigned: true, file: '/x' } });
      imap.setState('failed', { error: 'proxy.imap.listen: cannot listen on 127.0.0.1:1143: the address is in use' });
      relay.sessionOpened();
      relay.sessionOpened();
      relay.authenticated();
      relay.sessionClosed(false);
      expect(registry.list().find((l) => l.id === 'relay.listeners[0]')).toMatchObject({ state: 'listening', listen: '127.0.0.1:2525', sessions: 1, authenticated: 1 });
      expect(registry.failed().map((l) => l.id)).toEqual(['proxy.imap']);
      await registry.flush();
      const snapshot = await ListenerRegistry.readSnapshot(store);
      expect(snapshot?.pid).toBe(process.pid);
      expect(snapshot?.listeners.map((l) => [l.id, l.state])).toEqual([
        ['relay.listeners[0]', 'listening'],
        ['proxy.imap', 'failed'],
      ]);
    } finally {
      await store.close();
    }
  });
});
