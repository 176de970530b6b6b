// Proves that a rotated refresh token is never dropped: tokens obtained by an instance whose refresh lease ran out meanwhile are still stored, and the lost lease is reported.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Secret } from '../../src/secrets/secret.js';
import { openTestServices, type TestServices } from '../support/services.js';

let services: TestServices;

beforeAll(async () => {
  services = await openTestServices();
  await services.credentials.add({ name: 'rotating', provider: 'generic', authorizationUrl: 'https://auth.example.test/authorize', tokenUrl: 'https://auth.example.test/token', clientId: 'client', clientSecret: 'secret', email: 'alice@example.test' });
});
afterAll(async () => services?.close());

const tokens = (refresh: string) => ({ accessToken: new Secret(`access-${refresh}`), refreshToken: new Secret(refresh), tokenType: 'Bearer', expiresAt: new Date(Date.now() + 3_600_000).toISOString(), grantedScopes: undefined });

describe('saving refreshed tokens', () => {
  it('stores a rotated refresh token even when the refresh lease was lost meanwhile, and says the lease was lost', async () => {
    const repo = services.credentialRepo;
    await repo.saveTokens('rotating', tokens('rt-1'), { reason: 'connected' });
    expect(await repo.acquireLease('rotating', 'instance-a', 1)).toBeDefined();
    await new Promise((r) => setTimeout(r, 5));
    // Instance A's lease expired while its token request was in flight; B took the lease.
    expect(await repo.acquireLease('rotating', 'instance-b', 60_000)).toBeDefined();
    const saved = await repo.saveTokens('rotating', tokens('rt-2'), { reason: 'refreshed', previousStatus: 'active', releaseLeaseOf: 'instance-a' });
    expect(saved).toEqual({ leaseLost: true });
    const row = await repo.get('rotating');
    expect(repo.refreshTokenOf(row)?.reveal()).toBe('rt-2');
    // B's lease is left for B to release.
    expect(row.refresh_lease_owner).toBe('instance-b');

    const normal = await repo.saveTokens('rotating', tokens('rt-3'), { reason: 'refreshed', previousStatus: 'active', releaseLeaseOf: 'instance-b' });
    expect(normal).toEqual({ leaseLost: false });
    const after = await repo.get('rotating');
    expect(repo.refreshTokenOf(after)?.reveal()).toBe('rt-3');
    expect(after.refresh_lease_owner).toBeNull();
  });
});
