// Runs the test of a server by its protocol (SMTP, IMAP or POP3).
import { ErrorCode, MailgateError } from '../errors.js';
import type { Services } from '../services.js';
import type { ResolvedServer } from './model.js';
import { testImapServer } from './imapTest.js';
import { testPop3Server } from './pop3Test.js';
import { testSmtpServer, type SmtpTestOptions } from './smtpTest.js';
import type { ServerTestOptions, ServerTestReport } from './testReport.js';

/** Every test's options; sendTo and from only for SMTP. */
export type TestServerOptions = ServerTestOptions & Pick<SmtpTestOptions, 'sendTo' | 'from'>;

export async function testServer(server: ResolvedServer, services: Pick<Services, 'tokens'>, options: TestServerOptions = {}): Promise<ServerTestReport> {
  if (server.protocol === 'smtp') return testSmtpServer(server, services.tokens, options);
  if (options.sendTo !== undefined || options.from !== undefined) {
    throw new MailgateError(ErrorCode.INPUT_INVALID, `server ${server.name} is ${server.protocol}: a test message (sendTo, from) can only be sent through an SMTP server`);
  }
  if (server.protocol === 'pop3') return testPop3Server(server, services.tokens, options);
  return testImapServer(server, services.tokens, options);
}
