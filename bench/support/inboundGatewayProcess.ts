// Bench helper process: the real gateway (startGateway: HTTP API, WatcherManager, …) on a prepared data directory, plus a
// control port on loopback that reports this process's CPU time and memory (after a full GC when asked).
// Args: <cwd> <master key> <listen host:port> [profile|noprofile]
// BENCH_CPU_PROFILE=file.cpuprofile (and not "noprofile"): a CPU profile of this process, written when the bench stops it.
import { createServer } from 'node:http';
import v8 from 'node:v8';
import vm from 'node:vm';
import { loadConfig } from '../../src/config/load.js';
import { startGateway } from '../../src/gateway.js';
import { createLogger } from '../../src/log.js';
import { getFreePort } from '../../test/testbed/ports.js';

const [cwd, masterKey, listen, profiling = 'profile'] = process.argv.slice(2) as [string, string, string, string?];
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const config = loadConfig({ env: { MAILGATE_MASTER_KEY: masterKey, MAILGATE_LISTEN: listen, MAILGATE_LOG_LEVEL: 'warn' }, cwd });
const gateway = await startGateway(config, createLogger('warn', process.stderr));
const profileFile = profiling === 'profile' ? process.env.BENCH_CPU_PROFILE : undefined;
const session = profileFile ? new (await import('node:inspector/promises')).Session() : undefined;
if (session) {
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
}

const controlPort = await getFreePort();
const control = createServer((req, res) => {
  if ((req.url ?? '').startsWith('/usage?gc=1')) {
    gc();
    gc();
  }
  const cpu = process.cpuUsage();
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ cpuMs: (cpu.user + cpu.system) / 1000, ...process.memoryUsage() }));
});
await new Promise<void>((resolve) => control.listen(controlPort, '127.0.0.1', () => resolve()));

process.stdout.write(`${JSON.stringify({ url: gateway.url, control: `http://127.0.0.1:${controlPort}`, pid: process.pid })}\n`);
process.on('SIGTERM', () => {
  void (async () => {
    if (session && profileFile) {
      const { profile } = await session.post('Profiler.stop');
      (await import('node:fs')).writeFileSync(profileFile, JSON.stringify(profile));
    }
    control.close();
    await gateway.stop();
    process.exit(0);
  })();
});
