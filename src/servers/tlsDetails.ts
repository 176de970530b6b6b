// How a server test secures its connection and says so: the TLS options of a server, the certificate summary (with
// the "NOT verified" warning) and what a plain-text connection means.
import net from 'node:net';
import tls from 'node:tls';
import type { ResolvedServer } from './model.js';

export function tlsOptions(server: Pick<ResolvedServer, 'host' | 'port' | 'tlsCa' | 'tlsRejectUnauthorized'>): tls.ConnectionOptions {
  return {
    host: server.host,
    // ignored when an existing socket is upgraded (STARTTLS)
    port: server.port,
    ...(net.isIP(server.host) ? {} : { servername: server.host }),
    // `ca` replaces the system CAs: the server's own CA is trusted in addition to them, not instead
    ...(server.tlsCa ? { ca: [...tls.rootCertificates, server.tlsCa] } : {}),
    rejectUnauthorized: server.tlsRejectUnauthorized,
  };
}

/** Protocol, cipher, whose certificate issued by whom, and whether it was verified: a warning when it was not. */
export function describeTls(socket: tls.TLSSocket, server: Pick<ResolvedServer, 'tlsCa'>): string {
  const cert = socket.getPeerCertificate(true);
  const name = (dict: tls.Certificate | undefined) => [dict?.CN, dict?.O].flat().find((v) => typeof v === 'string' && v !== '') ?? 'an unnamed subject';
  const selfSigned = cert.issuerCertificate === undefined || cert.issuerCertificate.fingerprint256 === cert.fingerprint256;
  const parts = [
    `${socket.getProtocol() ?? 'TLS'} ${socket.getCipher().name}`,
    `certificate for ${name(cert.subject)}${cert.subjectaltname ? ` (${cert.subjectaltname})` : ''} issued by ${name(cert.issuer)}${selfSigned ? ' (self-signed)' : ''}, valid until ${cert.valid_to}`,
  ];
  if (socket.authorized) parts.push(server.tlsCa ? "verified (trusting the server's tlsCa besides the system CAs)" : 'verified');
  else {
    parts.push(
      `WARNING: certificate NOT verified (tlsRejectUnauthorized: false${socket.authorizationError ? `; verification fails with ${String(socket.authorizationError)}` : ''}): anyone on the path could impersonate the server and read the credentials`,
    );
  }
  return parts.join(', ');
}

/** "connected to host:port", with the address it resolved to when that is not the host as configured. */
export function connectedTo(server: Pick<ResolvedServer, 'host' | 'port'>, remoteAddress: string | undefined): string {
  return `connected to ${server.host}:${server.port}${remoteAddress && remoteAddress !== server.host ? ` (${remoteAddress})` : ''}`;
}

const isLoopback = (address: string | undefined) => address !== undefined && (address === '::1' || /^(::ffff:)?127\./.test(address));

/** What security: none means on this connection: acceptable on loopback, a warning anywhere else. */
export function plaintextNote(remoteAddress: string | undefined): string {
  return isLoopback(remoteAddress) ? 'security: none (plaintext, acceptable on loopback only)' : 'security: none: credentials and mail would travel in clear; use starttls or tls';
}
