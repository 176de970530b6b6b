// The `mailgate` command's body: parses arguments and hands them to the same functions the library exposes; exit codes by error kind.
import { CommanderError } from 'commander';
import { EXIT_OUTCOME_FAILED, EXIT_TIMED_OUT, EXIT_USAGE, isMailgateError } from '../errors.js';
import { buildProgram } from './program.js';

// `mailgate … | head` closes the pipe once it has its lines: the rest of the output has nowhere to go, and that is not an
// error worth a stack trace. Node ignores SIGPIPE, so a write then fails with EPIPE: leave quietly with the code so far.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(process.exitCode ?? 0);
  });
}

/** Error codes that mean "the operator must fix something before Mailgate can run": exit code 2. */
const USAGE_CODES = new Set([
  'CONFIG_INVALID',
  'CONFIG_UNREADABLE',
  'MASTER_KEY_MISSING',
  'MASTER_KEY_MALFORMED',
  'MASTER_KEY_MISMATCH',
  'STORE_SCHEMA_TOO_NEW',
  'STORE_UNAVAILABLE',
  'LISTEN_FAILED',
  'INPUT_INVALID',
  'NOT_FOUND',
  'ALREADY_EXISTS',
]);

/** Error codes that mean "the command ran, and what it followed ended badly": exit code 3. */
const OUTCOME_CODES = new Set(['MESSAGE_FAILED', 'SIGN_IN_FAILED']);

const program = buildProgram();

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? 0 : EXIT_USAGE;
  } else if (isMailgateError(err)) {
    process.stderr.write(`mailgate: ${err.message}\n`);
    process.exitCode = USAGE_CODES.has(err.code) ? EXIT_USAGE : OUTCOME_CODES.has(err.code) ? EXIT_OUTCOME_FAILED : err.code === 'WAIT_TIMED_OUT' ? EXIT_TIMED_OUT : 1;
  } else {
    process.stderr.write(`mailgate: unexpected error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
