// Bench helper process: Mailgate's accepting half (HTTP API and the SMTP relay, both into the durable outbox) on a prepared data directory, without the outbox worker, so only submission is measured.
import { buildHttpServer } from '../../src/http/server.js';
import { createLogger } from '../../src/log.js';
import { startRelayListeners } from '../../src/relay/index.js';
import { openTestServices } from '../../test/support/services.js';

const [cwd, masterKey, httpPort, relayPort] = process.argv.slice(2) as [string, string, string, string];
const services = await openTestServices({
  cwd,
  masterKey,
  logger: createLogger('warn', process.stderr),
  configure: (config) => ({
    ...config,
    relay: {
      ...config.relay,
      // Plain loopback on both paths (HTTP has no TLS here either); limits out of the way of the measurement.
      listeners: [{ listen: { host: '127.0.0.1', port: Number(relayPort) }, tls: 'none', certFile: undefined, keyFile: undefined, allowInsecureAuth: false, maxConnections: 1000, maxConnectionsPerClient: 1000, requireAuth: true, allowUnauthenticatedFrom: [], sender: undefined }],
      messagesPerMinute: 100_000,
    },
  }),
});
const http = buildHttpServer(services);
await http.listen({ host: '127.0.0.1', port: Number(httpPort) });
const relay = await startRelayListeners(services, services.logger);
process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${httpPort}`, relayPort: Number(relayPort) })}\n`);
process.on('SIGTERM', () => {
  void (async () => {
    await relay.stop(1000);
    await http.close();
    await services.close();
    process.exit(0);
  })();
});
