// Bench helper process: the floor for any TLS-terminating proxy in Node — accept TLS, dial TLS upstream, pipe both ways,
// nothing else (no login, no parsing). Args: <listen port> <cert file> <key file> <upstream port> <upstream CA file>
import fs from 'node:fs';
import tls from 'node:tls';

const [port, certFile, keyFile, upstreamPort, caFile] = process.argv.slice(2) as [string, string, string, string, string];
const ca = fs.readFileSync(caFile);
const server = tls.createServer({ cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) }, (client) => {
  client.setNoDelay(true);
  const upstream = tls.connect({ host: '127.0.0.1', port: Number(upstreamPort), ca }, () => {
    upstream.setNoDelay(true);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close).on('close', close);
  upstream.on('error', close).on('close', close);
});
server.listen(Number(port), '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: Number(port) })}\n`));
process.on('SIGTERM', () => process.exit(0));
