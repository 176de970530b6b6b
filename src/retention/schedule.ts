// Runs the retention prune inside `serve`: a minute after start, then every hour; a failure is logged and tried again next time.
import type { Logger } from '../log.js';
import type { Services } from '../services.js';
import { prune } from './prune.js';

const FIRST_RUN_MS = 60_000;
const EVERY_MS = 3_600_000;

export function startRetention(services: Services, logger: Logger): { stop(): Promise<void> } {
  let running: Promise<void> = Promise.resolve();
  const run = () => {
    running = running.then(async () => {
      try {
        const report = await prune(services.store, services.config.retention);
        if (Object.values(report).some((n) => n > 0)) logger.info(report, 'retention: old message bodies, rows and audit entries pruned');
      } catch (err) {
        logger.warn({ err }, 'retention prune failed; trying again in an hour');
      }
    });
  };
  const first = setTimeout(run, FIRST_RUN_MS);
  const every = setInterval(run, EVERY_MS);
  first.unref();
  every.unref();
  return {
    async stop() {
      clearTimeout(first);
      clearInterval(every);
      await running;
    },
  };
}
