// `mailgate ready`: waits until the `serve` on the configured listen address answers /readyz (systemd's ExecStartPost, scripts).
import { InvalidArgumentError, type Command } from 'commander';
import { localGatewayUrl } from '../config/localUrl.js';
import { ErrorCode, MailgateError } from '../errors.js';
import { CONFIG_OPTION_HELP } from './format.js';
import { loadCommandConfig } from './context.js';

const POLL_MS = 250;

export function registerReadyCommand(program: Command): void {
  program
    .command('ready')
    .description('wait until the running `mailgate serve` answers /readyz (exit 0), or give up after --timeout (exit 4)')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .option('--timeout <seconds>', 'how long to wait', seconds, 60)
    .action(async (options: { config?: string; timeout: number }) => {
      const config = loadCommandConfig(options);
      const url = localGatewayUrl(config.listen, '/readyz');
      const said = await waitUntilReady(url, options.timeout * 1000);
      process.stdout.write(`ready: ${url} answered ${said}\n`);
    });
}

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 3600) throw new InvalidArgumentError('expected whole seconds from 1 to 3600, e.g. --timeout 60');
  return n;
}

/** Polls `url` until it answers 200; resolves with its body, or throws WAIT_TIMED_OUT naming the last answer. */
async function waitUntilReady(url: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    try {
      // Each ask gets 5 s of its own: a gateway busy starting is slow, not absent.
      const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
      const body = (await response.text()).trim();
      if (response.status === 200) return body;
      last = `HTTP ${response.status} ${body}`;
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      last = cause?.code === 'ECONNREFUSED' ? 'connection refused (is `mailgate serve` running with this config?)' : cause?.message ?? (err as Error).message;
    }
    if (Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  throw new MailgateError(ErrorCode.WAIT_TIMED_OUT, `${url} was not ready within ${Math.round(timeoutMs / 1000)} s; last: ${last}`);
}
