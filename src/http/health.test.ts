// Proves the health routes: /healthz answers while the process serves, /readyz fails once storage stops answering.
import { describe, expect, it } from 'vitest';
import { buildHttpServer, openTestServices } from '../../test/support/services.js';

describe('health routes', () => {
  it('says ready while storage answers and 503 not_ready once it does not, while /healthz stays 200', async () => {
    const services = await openTestServices();
    const app = buildHttpServer(services);
    expect((await app.inject({ method: 'GET', url: '/readyz' })).json()).toEqual({ status: 'ready', checks: { storage: 'ok', listeners: 'ok' } });
    await services.close();
    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toEqual({ status: 'not_ready', checks: { storage: 'unavailable', listeners: 'ok' } });
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    await app.close();
  });
});
