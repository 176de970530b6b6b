// Runs the test of a server by its protocol (SMTP now; IMAP and POP3 come with the receiving side).
import { ErrorCode, MailgateError } from '../errors.js';
import type { Services } from '../services.js';
import type { ResolvedServer } from './model.js';
import { testSmtpServer, type ServerTestReport, type SmtpTestOptions } from './smtpTest.js';

export async function testServer(server: ResolvedServer, services: Pick<Services, 'tokens'>, options: SmtpTestOptions = {}): Promise<ServerTestReport> {
  if (server.protocol === 'smtp') return testSmtpServer(server, services.tokens, options);
  throw new MailgateError(ErrorCode.INPUT_INVALID, `testing ${server.protocol} servers is not available in this build yet (SMTP only)`);
}
