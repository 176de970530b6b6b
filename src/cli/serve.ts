// `mailgate serve`: runs the gateway until SIGINT/SIGTERM, then shuts down in order.
import { startGateway } from '../gateway.js';
import { createLogger, textDestination } from '../log.js';
import { loadCommandConfig } from './context.js';

export interface ServeOptions {
  config?: string;
}

export async function serveCommand(options: ServeOptions): Promise<void> {
  const config = loadCommandConfig(options);
  // A person at a terminal reads one clear line per event; a supervisor or log shipper gets JSON.
  const format = config.logFormat ?? (process.stdout.isTTY ? 'text' : 'json');
  const logger = createLogger(config.logLevel, format === 'text' ? textDestination() : undefined);
  const gateway = await startGateway(config, logger);

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    logger.info({ signal }, 'shutting down');
    gateway.stop().then(
      () => {
        logger.info('stopped');
        logger.flush();
        process.exitCode = 0;
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exitCode = 1;
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
