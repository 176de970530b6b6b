// Connections from a proxy to the real mail server: TCP with TLS from the start or after STARTTLS/STLS, no Nagle delay, the server's own CA settings.
import net from 'node:net';
import tls from 'node:tls';
import type { ResolvedServer } from '../servers/model.js';
import { secureContextFor } from '../servers/tlsTrust.js';
import type { LineReader } from './lineReader.js';

/** The upstream server could not be reached or refused TLS: the client gets "unavailable, try later". */
export class UpstreamError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'UpstreamError';
  }
}

const CONNECT_TIMEOUT_MS = 15_000;
/** Read buffer of both legs of a proxied session (bench/README.md: bulk FETCH 0.62 → 0.90 of direct). */
export const UPSTREAM_BUFFER_BYTES = 256 * 1024;

function tlsOptions(server: ResolvedServer): tls.ConnectionOptions {
  return {
    servername: net.isIP(server.host) ? undefined : server.host,
    // tlsCa is trusted besides the system's CAs, not instead of them; the context is shared, not rebuilt per login.
    ...(server.tlsCa ? { secureContext: secureContextFor(server.tlsCa) } : {}),
    rejectUnauthorized: server.tlsRejectUnauthorized,
    minVersion: 'TLSv1.2',
  };
}

/** TCP (or TLS for `security: tls`) to the server; resolves once connected (and the handshake is done). */
export function dialUpstream(server: ResolvedServer): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket =
      server.security === 'tls'
        ? // A 256 KB read buffer (16 KB by default): a bulk FETCH moves in large steps instead of pausing every record.
          tls.connect({ host: server.host, port: server.port, highWaterMark: UPSTREAM_BUFFER_BYTES, ...tlsOptions(server) } as tls.ConnectionOptions)
        : net.connect({ host: server.host, port: server.port, noDelay: true });
    const fail = (err: Error) => {
      socket.destroy();
      reject(new UpstreamError(`cannot reach ${server.host}:${server.port}: ${err.message}`, err));
    };
    socket.setTimeout(CONNECT_TIMEOUT_MS, () => fail(new Error('no answer within 15 s')));
    socket.once('error', fail);
    socket.once(server.security === 'tls' ? 'secureConnect' : 'connect', () => {
      socket.setTimeout(0);
      socket.off('error', fail);
      // From here an error (a reset mid-login) closes the socket; whoever reads it sees the close. Never unhandled.
      socket.on('error', () => socket.destroy());
      socket.setNoDelay(true);
      resolve(socket);
    });
  });
}

/** TLS over an upstream socket after the server said yes to STARTTLS/STLS. */
export function upgradeUpstream(socket: net.Socket, server: ResolvedServer): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = tls.connect({ socket, highWaterMark: UPSTREAM_BUFFER_BYTES, ...tlsOptions(server) } as tls.ConnectionOptions);
    const fail = (err: Error) => {
      secure.destroy();
      reject(new UpstreamError(`TLS with ${server.host}:${server.port} failed: ${err.message}`, err));
    };
    secure.once('error', fail);
    secure.once('secureConnect', () => {
      secure.off('error', fail);
      secure.on('error', () => secure.destroy());
      secure.setNoDelay(true);
      resolve(secure);
    });
  });
}

/** Each silence of the server while a proxy waits for a reply before login. */
const REPLY_TIMEOUT_MS = 20_000;

/** The next line from the upstream server; its silence past the deadline, or its close, is an UpstreamError. */
export async function readUpstreamLine(reader: LineReader, during: string): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new UpstreamError(`no answer to ${during} within ${REPLY_TIMEOUT_MS / 1000} s`)), REPLY_TIMEOUT_MS);
  });
  try {
    const line = await Promise.race([reader.readLine(), timeout]);
    if (line === null) throw new UpstreamError(`the server closed the connection during ${during}`);
    return line.toString('utf8');
  } catch (err) {
    if (err instanceof UpstreamError) throw err;
    throw new UpstreamError(`reading the reply to ${during} failed: ${(err as Error).message}`, err);
  } finally {
    clearTimeout(timer);
  }
}
