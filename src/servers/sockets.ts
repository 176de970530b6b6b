// Opening a connection under a deadline (TCP connect or TLS handshake, each failure as the caller's own error), the
// quick probe that tells a port expecting implicit TLS from a silent one, a wire's listeners on its socket, and the
// brief wait for a polite goodbye.
import net from 'node:net';
import tls from 'node:tls';

/**
 * The socket once `ready` fires; else the caller's error: `timeout()` after timeoutMs (the socket destroyed), or
 * `failed(err)` on a socket error. The error listener stays registered: once settled, a later error is the wire's to
 * report, and this one only keeps it handled.
 */
export function whenReady<S extends net.Socket>(socket: S, ready: 'connect' | 'secureConnect', timeoutMs: number, errors: { timeout(): Error; failed(err: Error): Error }): Promise<S> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(errors.timeout());
    }, timeoutMs);
    socket.once(ready, () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(errors.failed(err));
    });
  });
}

/** The implicit-TLS probe after a missing greeting only needs a ServerHello. */
export const TLS_PROBE_TIMEOUT_MS = 5_000;

/** Whether the port completes a TLS handshake: tells "expects implicit TLS" from "silent server". Sends no credentials. */
export function speaksTls(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host, port, rejectUnauthorized: false, ...(net.isIP(host) ? {} : { servername: host }) });
    const done = (result: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('secureConnect', () => done(true));
    socket.on('error', () => done(false));
  });
}

/** What a wire (a command/reply reader over one socket) does with its socket's events. */
export interface SocketListeners {
  data(chunk: Buffer): void;
  error(err: Error): void;
  close(): void;
}

/**
 * Attaches `listeners` to `socket`; the function returned takes them off again (before a TLS upgrade, or at the end)
 * and leaves an error listener that does nothing, so an error the socket raises later is not an uncaught exception.
 */
export function listenToSocket(socket: net.Socket, listeners: SocketListeners): () => void {
  socket.on('data', listeners.data);
  socket.on('error', listeners.error);
  socket.on('close', listeners.close);
  return () => {
    socket.off('data', listeners.data);
    socket.off('error', listeners.error);
    socket.off('close', listeners.close);
    socket.on('error', () => undefined);
  };
}

/** Waits at most a second for a goodbye (QUIT, LOGOUT) and ignores its failure: the connection is closed either way. */
export async function briefly(goodbye: Promise<unknown>): Promise<void> {
  await Promise.race([goodbye.catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
}
