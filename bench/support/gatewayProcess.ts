// Bench helper process: the real gateway (`mailgate serve`'s startGateway) on a prepared data directory.
import { loadConfig } from '../../src/config/load.js';
import type * as GatewayModule from '../../src/gateway.js';
import { createLogger } from '../../src/log.js';

const [cwd, masterKey, listen] = process.argv.slice(2) as [string, string, string];
// BENCH_LOG_LEVEL=info: the level `serve` runs at by default (the bench's default, warn, leaves per-request lines out).
const level = process.env.BENCH_LOG_LEVEL === 'info' ? 'info' : 'warn';
const config = loadConfig({ env: { MAILGATE_MASTER_KEY: masterKey, MAILGATE_LISTEN: listen, MAILGATE_LOG_LEVEL: level }, cwd });
// BENCH_GATEWAY=dist: the compiled gateway (`npm run build` first), as `mailgate serve` runs it; by default the sources through tsx.
const gatewayModule = process.env.BENCH_GATEWAY === 'dist' ? '../../dist/gateway.js' : '../../src/gateway.js';
const { startGateway } = (await import(gatewayModule)) as typeof GatewayModule;
const gateway = await startGateway(config, createLogger(level, process.stderr));
// BENCH_CPU_PROFILE=file.cpuprofile: a CPU profile of the gateway process, written when the bench stops it.
const profileFile = process.env.BENCH_CPU_PROFILE;
const session = profileFile ? new (await import('node:inspector/promises')).Session() : undefined;
if (session) {
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
}
process.stdout.write(`${JSON.stringify({ url: gateway.url })}\n`);
process.on('SIGTERM', () => {
  void (async () => {
    if (session && profileFile) {
      const { profile } = await session.post('Profiler.stop');
      (await import('node:fs')).writeFileSync(profileFile, JSON.stringify(profile));
    }
    await gateway.stop();
    process.exit(0);
  })();
});
