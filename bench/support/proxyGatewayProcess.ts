// Bench helper process: the real gateway (startGateway) with the IMAP proxy on an implicit-TLS listener, plus a control
// port reporting this process's memory after a full GC. Args: <cwd> <master key> <http host:port> <proxy port>
import { createServer } from 'node:http';
import v8 from 'node:v8';
import vm from 'node:vm';
import { loadConfig } from '../../src/config/load.js';
import { startGateway } from '../../src/gateway.js';
import { createLogger } from '../../src/log.js';
import { getFreePort } from '../../test/testbed/ports.js';

const [cwd, masterKey, listen, proxyPort] = process.argv.slice(2) as [string, string, string, string];
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const loaded = loadConfig({ env: { MAILGATE_MASTER_KEY: masterKey, MAILGATE_LISTEN: listen, MAILGATE_LOG_LEVEL: 'warn' }, cwd });
const imap = { listen: { host: '127.0.0.1', port: Number(proxyPort) }, tls: 'implicit' as const, certFile: undefined, keyFile: undefined, allowInsecureAuth: false, maxConnections: 1000, maxConnectionsPerClient: 1000 };
const gateway = await startGateway({ ...loaded, proxy: { ...loaded.proxy, imap } }, createLogger('warn', process.stderr));

const controlPort = await getFreePort();
const control = createServer((_req, res) => {
  gc();
  gc();
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(process.memoryUsage()));
});
await new Promise<void>((resolve) => control.listen(controlPort, '127.0.0.1', () => resolve()));
process.stdout.write(`${JSON.stringify({ url: gateway.url, control: `http://127.0.0.1:${controlPort}`, certFile: `${gateway.config.dataDir}/listener-cert.pem` })}\n`);
process.on('SIGTERM', () => {
  control.close();
  void gateway.stop().finally(() => process.exit(0));
});
