// Runs the test of a server by its protocol (SMTP and POP3 now; IMAP comes with the receiving side).
import { ErrorCode, MailgateError } from '../errors.js';
import type { Services } from '../services.js';
import type { ResolvedServer } from './model.js';
import { testImapServer, type ImapTestStep } from './imapTest.js';
import { testPop3Server, type Pop3TestStep } from './pop3Test.js';
import { testSmtpServer, type ServerTestReport, type SmtpTestOptions } from './smtpTest.js';

export async function testServer(server: ResolvedServer, services: Pick<Services, 'tokens'>, options: SmtpTestOptions = {}): Promise<ServerTestReport> {
  if (server.protocol === 'smtp') return testSmtpServer(server, services.tokens, options);
  if (server.protocol === 'pop3') {
    if (options.sendTo !== undefined || options.from !== undefined) {
      throw new MailgateError(ErrorCode.INPUT_INVALID, `server ${server.name} is pop3: a test message (sendTo, from) can only be sent through an SMTP server`);
    }
    // ServerTestStepName (smtpTest.ts) lists SMTP's steps only; once it also names POP3's 'capabilities' and
    // 'mailbox', these two casts go.
    const onStep = options.onStep as ((step: Pop3TestStep) => void) | undefined;
    return (await testPop3Server(server, services.tokens, { ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}), ...(onStep ? { onStep } : {}) })) as ServerTestReport;
  }
  if (server.protocol === 'imap') {
    if (options.sendTo !== undefined || options.from !== undefined) {
      throw new MailgateError(ErrorCode.INPUT_INVALID, `server ${server.name} is imap: a test message (sendTo, from) can only be sent through an SMTP server`);
    }
    // the same two casts as POP3's, for the same reason (ServerTestStepName names SMTP's steps only)
    const onStep = options.onStep as ((step: ImapTestStep) => void) | undefined;
    return (await testImapServer(server, services.tokens, { ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}), ...(onStep ? { onStep } : {}) })) as ServerTestReport;
  }
  throw new MailgateError(ErrorCode.INPUT_INVALID, `testing ${server.protocol} servers is not available in this build yet (SMTP and POP3 only)`);
}
