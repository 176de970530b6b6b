// Bench helper process: an SMTP sink (nodemailer's smtp-server) on loopback that accepts XOAUTH2 logins and every message, and counts them.
import { SMTPServer } from 'smtp-server';
import { getFreePort } from '../../test/testbed/ports.js';

let received = 0;
const server = new SMTPServer({
  authMethods: ['XOAUTH2'],
  authOptional: false,
  disabledCommands: ['STARTTLS'],
  logger: false,
  // A sink, not a provider: any bearer token is accepted (the test bed's Dovecot is where tokens are checked for real).
  onAuth(auth, _session, callback) {
    if (auth.method === 'XOAUTH2' && auth.accessToken) return callback(null, { user: auth.username });
    return callback(new Error('XOAUTH2 only'));
  },
  onData(stream, _session, callback) {
    stream.on('end', () => {
      received += 1;
      callback(null, `Ok: queued as ${received}`);
    });
    stream.resume();
  },
});
const port = await getFreePort();
await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
process.stdout.write(`${JSON.stringify({ port })}\n`);
setInterval(() => process.stderr.write(''), 1 << 30);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
