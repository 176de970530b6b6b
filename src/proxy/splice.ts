// After login a proxy is a pipe: bytes flow both ways as streams (back-pressure kept, nothing buffered whole) until either side closes.
import type { Duplex } from 'node:stream';

export interface SpliceOptions {
  /** Bytes the client sent after its login command, already read from its socket: they go upstream first. */
  clientLeftover?: Buffer;
  /** Bytes the server sent after its login reply, already read: they go to the client first. */
  upstreamLeftover?: Buffer;
  /** Told the bytes moved, in batches (metrics): `up` is client → server. */
  onBytes?: (direction: 'up' | 'down', bytes: number) => void;
  /** Neither side sent or received anything this long: both are closed. */
  idleTimeoutMs: number;
}

const REPORT_EVERY_BYTES = 1024 * 1024;

/** Resolves when both sides are closed; an error or close on either side closes the other. */
export function splice(client: Duplex & { setTimeout?: (ms: number, cb?: () => void) => unknown }, upstream: Duplex, options: SpliceOptions): Promise<void> {
  if (client.destroyed || upstream.destroyed) {
    client.destroy();
    upstream.destroy();
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    let counted = { up: 0, down: 0 };
    const report = (force: boolean) => {
      for (const direction of ['up', 'down'] as const) {
        if (counted[direction] > 0 && (force || counted[direction] >= REPORT_EVERY_BYTES)) {
          options.onBytes?.(direction, counted[direction]);
          counted = { ...counted, [direction]: 0 };
        }
      }
    };
    client.on('data', (chunk: Buffer) => {
      counted.up += chunk.length;
      if (counted.up >= REPORT_EVERY_BYTES) report(false);
    });
    upstream.on('data', (chunk: Buffer) => {
      counted.down += chunk.length;
      if (counted.down >= REPORT_EVERY_BYTES) report(false);
    });

    let open = 2;
    const closed = () => {
      open -= 1;
      client.destroy();
      upstream.destroy();
      if (open === 0) {
        report(true);
        resolve();
      }
    };
    client.once('close', closed);
    upstream.once('close', closed);
    client.on('error', () => client.destroy());
    upstream.on('error', () => upstream.destroy());
    // A socket timeout counts reads and writes: a client in IDLE stays open while the server's keep-alives flow.
    client.setTimeout?.(options.idleTimeoutMs, () => client.destroy());

    if (options.upstreamLeftover?.length) {
      counted.down += options.upstreamLeftover.length;
      client.write(options.upstreamLeftover);
    }
    if (options.clientLeftover?.length) {
      counted.up += options.clientLeftover.length;
      upstream.write(options.clientLeftover);
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
    upstream.resume();
  });
}
