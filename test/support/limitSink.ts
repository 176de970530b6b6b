// An SMTP peer standing in for a provider's submission server where sending limits are concerned: it records when each message arrived and can answer chosen senders with a provider's throttling reply. (No real provider can throttle here; the replies are the ones Microsoft and Google publish.)
import { SMTPServer } from 'smtp-server';
import { getFreePort } from '../testbed/ports.js';

export interface SinkArrival {
  at: number;
  from: string;
  recipients: number;
  subject: string;
  messageId: string;
}

export interface LimitSink {
  port: number;
  readonly arrivals: SinkArrival[];
  /** Replies given, one each, to the next messages from `from` at the end of DATA (then it accepts again). */
  throttle(from: string, ...replies: { code: number; message: string }[]): void;
  /** The most messages from `from` (all when absent) that arrived within any `windowMs`. */
  mostInWindow(windowMs: number, from?: string): number;
  stop(): Promise<void>;
}

export async function startLimitSink(): Promise<LimitSink> {
  const arrivals: SinkArrival[] = [];
  const pending = new Map<string, { code: number; message: string }[]>();
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    disableReverseLookup: true,
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
        const reply = pending.get(from)?.shift();
        if (reply) return callback(Object.assign(new Error(reply.message), { responseCode: reply.code }));
        const raw = Buffer.concat(chunks).toString();
        arrivals.push({ at: Date.now(), from, recipients: session.envelope.rcptTo.length, subject: /^Subject: (.*)$/im.exec(raw)?.[1]?.trim() ?? '', messageId: /^Message-ID: (.*)$/im.exec(raw)?.[1]?.trim() ?? '' });
        callback();
      });
    },
  });
  const port = await getFreePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port,
    arrivals,
    throttle(from, ...replies) {
      pending.set(from, [...(pending.get(from) ?? []), ...replies]);
    },
    mostInWindow(windowMs, from) {
      const times = arrivals.filter((a) => from === undefined || a.from === from).map((a) => a.at).sort((a, b) => a - b);
      let most = 0;
      for (let i = 0, j = 0; j < times.length; j++) {
        while (times[j]! - times[i]! >= windowMs) i++;
        most = Math.max(most, j - i + 1);
      }
      return most;
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
