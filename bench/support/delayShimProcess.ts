// Bench helper process: a TCP relay that holds every chunk for a fixed delay each way, so a loopback server looks like
// one across a network (TLS passes through untouched). Args: <listen port> <upstream port> <one-way delay ms>
import net from 'node:net';

const [port, upstreamPort, delay] = process.argv.slice(2).map(Number) as [number, number, number];
/** Forwards `from` → `to`, each chunk `delay` ms after it arrived; order is kept because the delay is constant. */
function delayed(from: net.Socket, to: net.Socket): void {
  from.on('data', (chunk: Buffer) => setTimeout(() => to.write(chunk), delay));
  from.on('end', () => setTimeout(() => to.end(), delay));
}
const server = net.createServer({ noDelay: true }, (client) => {
  const upstream = net.connect({ host: '127.0.0.1', port: upstreamPort, noDelay: true });
  delayed(client, upstream);
  delayed(upstream, client);
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close).on('close', () => setTimeout(close, delay));
  upstream.on('error', close).on('close', () => setTimeout(close, delay));
});
server.listen(port, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port })}\n`));
process.on('SIGTERM', () => process.exit(0));
