// Free TCP ports on 127.0.0.1, chosen by the kernel, so beds never depend on fixed ports and can run side by side.
import { createServer, type Server } from 'node:net';

function listenOnAnyPort(): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

/**
 * `count` distinct free ports. All are held open until the last one is picked, so one call never hands out
 * the same port twice; another process can still take one before we bind it (callers retry on EADDRINUSE).
 */
export async function getFreePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) servers.push(await listenOnAnyPort());
    return servers.map((s) => {
      const address = s.address();
      if (address === null || typeof address === 'string') throw new Error('listening socket has no TCP address');
      return address.port;
    });
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

export async function getFreePort(): Promise<number> {
  const [port] = await getFreePorts(1);
  return port!;
}
