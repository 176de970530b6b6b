// The SMTP hop Dovecot submission relays to: accepts on 127.0.0.1, can refuse chosen recipients, and answers 250
// only after Dovecot's LMTP saved the message (Dovecot cannot relay to its own LMTP directly: LMTP is not SMTP).
import nodemailer from 'nodemailer';
import { SMTPServer, type SMTPServerAddress } from 'smtp-server';

export interface SmtpReply {
  /** e.g. 550 (permanent) or 450 (temporary) */
  code: number;
  message?: string;
}

export interface ReceivedMessage {
  from: string;
  to: string[];
  raw: Buffer;
  /** LMTP's reply, e.g. "250 2.0.0 <bob@example.test> ... Saved" */
  lmtpResponse: string;
}

export interface SmtpSink {
  port: number;
  /** Every message the sink accepted and Dovecot saved, in order. */
  readonly received: ReceivedMessage[];
  /** Addresses refused at RCPT TO with 550 5.1.1; tests may change the set at any time. */
  readonly rejectRecipients: Set<string>;
  /** Finer control, asked after rejectRecipients: return a reply to refuse the address, undefined to accept. */
  recipientPolicy: ((address: string) => SmtpReply | undefined) | undefined;
  /** Puts a message straight into the mailboxes of `to` over LMTP (inbound mail, no submission involved). */
  deliver(raw: string | Buffer, to: string | string[], from?: string): Promise<string>;
  logs(): string;
  stop(): Promise<void>;
}

function smtpError(reply: SmtpReply): Error & { responseCode: number } {
  return Object.assign(new Error(reply.message ?? 'Recipient refused'), { responseCode: reply.code });
}

export async function startSmtpSink(options: { port: number; lmtpPort: number }): Promise<SmtpSink> {
  const logLines: string[] = [];
  const log = (line: string) => logLines.push(`${new Date().toISOString()} ${line}`);
  const lmtp = nodemailer.createTransport({ host: '127.0.0.1', port: options.lmtpPort, lmtp: true, ignoreTLS: true });
  const deliver = async (raw: string | Buffer, to: string | string[], from = 'sender@example.test'): Promise<string> => {
    const info = await lmtp.sendMail({ envelope: { from, to: Array.isArray(to) ? to : [to] }, raw });
    return info.response;
  };
  const received: ReceivedMessage[] = [];
  const rejectRecipients = new Set<string>();

  const sink: SmtpSink = {
    port: options.port,
    received,
    rejectRecipients,
    recipientPolicy: undefined,
    deliver,
    logs: () => logLines.join('\n'),
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };

  const server = new SMTPServer({
    banner: 'testbed relay sink',
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    // no reverse DNS of 127.0.0.1: it delays every greeting, and the machine may have no resolver at all
    disableReverseLookup: true,
    size: 25 * 1024 * 1024,
    logger: false,
    onRcptTo(address: SMTPServerAddress, _session, callback) {
      const reply = rejectRecipients.has(address.address.toLowerCase())
        ? { code: 550, message: '5.1.1 Recipient address rejected: no such user (testbed)' }
        : sink.recipientPolicy?.(address.address);
      if (reply) {
        log(`RCPT TO:<${address.address}> refused ${reply.code}`);
        return callback(smtpError(reply));
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
        const to = session.envelope.rcptTo.map((r) => r.address);
        const raw = Buffer.concat(chunks);
        deliver(raw, to, from).then(
          (lmtpResponse) => {
            received.push({ from, to, raw, lmtpResponse });
            log(`relayed from=<${from}> to=<${to.join(',')}> size=${raw.length}: ${lmtpResponse}`);
            callback(null, 'delivered via LMTP');
          },
          (err: Error) => {
            log(`LMTP delivery failed from=<${from}> to=<${to.join(',')}>: ${err.message}`);
            callback(smtpError({ code: 451, message: `4.3.0 LMTP delivery failed: ${err.message}` }));
          },
        );
      });
    },
  });
  server.on('error', (err) => log(`sink error: ${err.message}`));
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(options.port, '127.0.0.1', () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  log(`listening on 127.0.0.1:${options.port}, delivering to LMTP 127.0.0.1:${options.lmtpPort}`);
  return sink;
}
