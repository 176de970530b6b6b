// Bench helper process: a Mailgate HTTP server (real services, SQLite) with one connected credential, plus a bare route on the same server for comparison.
import { buildHttpServer } from '../../src/http/server.js';
import { createLogger } from '../../src/log.js';
import { Secret } from '../../src/secrets/secret.js';
import { openTestServices } from '../../test/support/services.js';
import { getFreePort } from '../../test/testbed/ports.js';

const services = await openTestServices({ logger: createLogger('warn') });
await services.credentials.add({ name: 'bench', provider: 'google', clientId: 'bench-client', clientSecret: 'bench-secret', email: 'alerts@example.com' });
// A stored token valid for an hour: the route serves it from the store (no provider call), as in steady state.
await services.credentialRepo.saveTokens(
  'bench',
  { accessToken: new Secret('ya29.bench-access-token'), refreshToken: new Secret('1//bench-refresh-token'), tokenType: 'Bearer', expiresAt: new Date(Date.now() + 3_600_000).toISOString(), grantedScopes: undefined },
  { reason: 'bench setup' },
);
const key = (await services.apiKeys.create('bench', ['token:bench'])).key.reveal();
const app = buildHttpServer(services);
app.get('/bare', async () => ({ ok: true }));
const port = await getFreePort();
await app.listen({ host: '127.0.0.1', port });
process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}`, key })}\n`);
process.on('SIGTERM', () => void app.close().then(() => services.close()).then(() => process.exit(0)));
