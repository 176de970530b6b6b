// Bench helper process: a bare smtp-server that accepts every login and message and does nothing with them (the ceiling for SMTP submission in Node).
import { SMTPServer } from 'smtp-server';
import { getFreePort } from '../../test/testbed/ports.js';

let received = 0;
const server = new SMTPServer({
  logger: false,
  disabledCommands: ['STARTTLS'],
  authMethods: ['PLAIN', 'LOGIN'],
  allowInsecureAuth: true,
  disableReverseLookup: true,
  onAuth: (auth, _session, callback) => callback(null, { user: auth.username }),
  onData(stream, _session, callback) {
    stream.on('end', () => callback(null, `queued as ${++received}`));
    stream.resume();
  },
});
const port = await getFreePort();
await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
process.stdout.write(`${JSON.stringify({ port })}\n`);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
