// Entry point of the SMTP thread: nodemailer's pools run here, so sending uses a core of its own while the main thread serves HTTP and the database.
import { parentPort } from 'node:worker_threads';
import { SmtpPools, threadSendError, type FromSmtpThread, type ToSmtpThread } from './smtpPools.js';

const port = parentPort;
if (!port) throw new Error('smtpThread.ts runs as a worker thread of SmtpTransports, not on its own');

const post = (message: FromSmtpThread): void => port.postMessage(message);
const tokenWaits = new Map<number, (err: Error | null, token?: string, expires?: number) => void>();
let nextTokenId = 1;

const pools = new SmtpPools((credential, renew, callback) => {
  const id = nextTokenId++;
  tokenWaits.set(id, callback);
  post({ type: 'needToken', id, credential, renew });
});

port.on('message', (message: ToSmtpThread) => {
  switch (message.type) {
    case 'send': {
      if (message.server) pools.configure(message.server.settings, message.server.maxConnections);
      pools.send(message.name, message.mail).then(
        (info) => post({ type: 'sent', id: message.id, ...info }),
        (err: unknown) => post({ type: 'failed', id: message.id, error: threadSendError(err) }),
      );
      return;
    }
    case 'token': {
      const callback = tokenWaits.get(message.id);
      tokenWaits.delete(message.id);
      if ('error' in message) callback?.(Object.assign(new Error(message.error), { provisionId: message.provisionId }));
      else callback?.(null, message.accessToken, message.expires);
      return;
    }
    case 'forget':
      pools.forget(message.name);
      return;
    case 'close':
      pools.closeAll();
      post({ type: 'closed', id: message.id });
      return;
  }
});
