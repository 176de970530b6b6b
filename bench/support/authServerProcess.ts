// Bench helper process: runs the test bed's authorization server (Microsoft layout) and hands out N fresh refresh tokens.
import { startAuthServer } from '../../test/testbed/authServer.js';
import { obtainTokens } from '../../test/testbed/providerLogin.js';

const count = Number(process.argv[2] ?? 2000);
const auth = await startAuthServer({ accessTokenTtl: 3600 });
const client = auth.addClient({ clientId: 'bench-client', clientSecret: 'bench-client-secret', redirectUris: ['http://127.0.0.1:9/callback'] });
const refreshTokens: string[] = [];
const queue = Array.from({ length: count }, (_, i) => i);
await Promise.all(
  Array.from({ length: 16 }, async () => {
    for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
      const user = i % 2 === 0 ? auth.users.alice : auth.users.bob;
      const tokens = await obtainTokens(auth, { user, client, layout: 'microsoft' });
      refreshTokens.push(tokens.refresh_token!);
    }
  }),
);
process.stdout.write(`${JSON.stringify({ issuer: auth.issuer, authority: auth.microsoft.authority, tenant: auth.microsoft.tenant, tokenUrl: auth.microsoft.tokenUrl, client, refreshTokens })}\n`);
process.on('SIGTERM', () => void auth.stop().then(() => process.exit(0)));
