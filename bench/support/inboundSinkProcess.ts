// Bench helper process: a webhook sink on loopback. POST /hook/<round> answers 200 (empty body) and counts; GET /stats/<round>
// tells how many arrived, how many distinct Message-IDs, how many bodies were not JSON, and when the first and last arrived.
import { createServer } from 'node:http';
import { getFreePort } from '../../test/testbed/ports.js';

interface RoundStats {
  count: number;
  bad: number;
  bytes: number;
  firstAt: number;
  lastAt: number;
  messageIds: Set<string>;
}
const rounds = new Map<string, RoundStats>();

const server = createServer((req, res) => {
  const [, kind, round = ''] = (req.url ?? '/').split('/');
  if (req.method === 'POST' && kind === 'hook') {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = Date.now();
      const stats = rounds.get(round) ?? { count: 0, bad: 0, bytes: 0, firstAt: at, lastAt: at, messageIds: new Set<string>() };
      rounds.set(round, stats);
      const raw = Buffer.concat(chunks);
      stats.count += 1;
      stats.bytes += raw.length;
      stats.lastAt = at;
      try {
        const messageId = (JSON.parse(raw.toString('utf8')) as { message?: { messageId?: string } }).message?.messageId;
        if (typeof messageId === 'string') stats.messageIds.add(messageId);
        else stats.bad += 1;
      } catch {
        stats.bad += 1;
      }
      res.writeHead(200, { 'content-length': '0' });
      res.end();
    });
    return;
  }
  if (req.method === 'GET' && kind === 'stats') {
    const stats = rounds.get(round);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(stats ? { count: stats.count, distinct: stats.messageIds.size, bad: stats.bad, bytes: stats.bytes, firstAt: stats.firstAt, lastAt: stats.lastAt } : { count: 0, distinct: 0, bad: 0, bytes: 0, firstAt: 0, lastAt: 0 }));
    return;
  }
  res.writeHead(404).end();
});
server.keepAliveTimeout = 60_000;
const port = await getFreePort();
await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`);
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
