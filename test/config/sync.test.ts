// Proves that applying mailgate.yaml to the store checks every name the file gives against the store first: all problems in one error, nothing written, and nothing removed that accounts or watchers still use.
import { afterEach, describe, expect, it } from 'vitest';
import type { Config, RelayListenerConfig } from '../../src/config/load.js';
import { syncConfigFile } from '../../src/configSync.js';
import { isMailgateError } from '../../src/errors.js';
import { openTestServices, type TestServices } from '../support/services.js';

let services: TestServices | undefined;
afterEach(async () => {
  await services?.close();
  services = undefined;
});

const smtp = (host: string) => ({ protocol: 'smtp', host, port: 587, security: 'starttls', username: 'relay@example.test', auth: { type: 'password', password: 'file-password' } });

const LAN_LISTENER: RelayListenerConfig = { listen: { host: '127.0.0.1', port: 2525 }, tls: 'none', certFile: undefined, keyFile: undefined, allowInsecureAuth: false, maxConnections: 10, maxConnectionsPerClient: 10, requireAuth: false, allowUnauthenticatedFrom: ['127.0.0.1/32'], sender: undefined };

/** The services with the file saying `file` (servers, senders, relay listeners, alert e-mail), as after an edit of mailgate.yaml. */
function withFile(s: TestServices, file: { servers?: Config['servers']; senders?: Config['senders']; relaySender?: string; alertSender?: string }) {
  const config: Config = {
    ...s.config,
    servers: file.servers ?? {},
    senders: file.senders ?? {},
    relay: { ...s.config.relay, listeners: file.relaySender ? [{ ...LAN_LISTENER, sender: file.relaySender }] : [] },
    alerts: { ...s.config.alerts, email: file.alertSender ? { sender: file.alertSender, to: ['ops@example.test'] } : undefined },
  };
  return { ...s, config };
}

async function failure(run: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await run;
  } catch (err) {
    if (isMailgateError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected the sync to be refused');
}

async function names(s: TestServices): Promise<{ servers: string[]; senders: string[] }> {
  return { servers: (await s.servers.list()).map((v) => v.name), senders: (await s.senders.list()).map((v) => v.name) };
}

describe('applying the config file to the store', () => {
  it('refuses a file whose senders name a server neither it nor the store has, or a store server of another protocol, listing all and writing nothing', async () => {
    services = await openTestServices();
    await services.servers.add({ name: 'cli-imap', protocol: 'imap', host: 'imap.example.test', port: 993, security: 'tls', username: 'a@example.test', auth: { type: 'password', password: 'imap-password' } });
    const file = withFile(services, {
      servers: { 'file-smtp': smtp('smtp.example.test') },
      senders: { alarms: { primary: 'file-smtp', from: 'alarms@example.test' }, reports: { primary: 'cli-smpt', from: 'reports@example.test' }, digests: { primary: 'file-smtp', backups: ['cli-imap'], from: 'digests@example.test' } },
    });
    const { code, message } = await failure(syncConfigFile(file));
    expect(code).toBe('CONFIG_INVALID');
    expect(message.split('\n')).toEqual([
      "the config file's servers and senders cannot be applied; nothing was changed, 2 problems:",
      '  senders.reports.primary: no server named "cli-smpt" in the file or the store: add it under servers:, or create it with `mailgate server add cli-smpt …`',
      '  senders.digests.backups[0]: server cli-imap is an imap server, a sender needs smtp: name an smtp server',
    ]);
    expect(await names(services)).toEqual({ servers: ['cli-imap'], senders: [] });

    // The same file once the server exists in the store: applied, the file's sender using the CLI's server.
    await services.servers.add({ name: 'cli-smpt', ...smtp('smtp2.example.test') });
    await services.servers.remove('cli-imap');
    const fixed = withFile(services, { servers: { 'file-smtp': smtp('smtp.example.test') }, senders: { alarms: { primary: 'file-smtp', from: 'alarms@example.test' }, reports: { primary: 'cli-smpt', from: 'reports@example.test' } } });
    expect(await syncConfigFile(fixed)).toEqual([]);
    expect(await names(services)).toEqual({ servers: ['cli-smpt', 'file-smtp'], senders: ['alarms', 'reports'] });
  });

  it('keeps a sender removed from the file while a relay account sends through it, naming the account; removes it once the account is gone', async () => {
    services = await openTestServices();
    await syncConfigFile(withFile(services, { servers: { 'file-smtp': smtp('smtp.example.test') }, senders: { alarms: { primary: 'file-smtp', from: 'alarms@example.test' } } }));
    await services.relayAccounts.add({ name: 'scanner', sender: 'alarms', password: 'scanner-password-123' });

    const without = withFile(services, { servers: { 'file-smtp': smtp('smtp.example.test') } });
    const { code, message } = await failure(syncConfigFile(without));
    expect(code).toBe('CONFIG_INVALID');
    expect(message).toBe(
      "the config file's servers and senders cannot be applied; nothing was changed: senders.alarms: removed from the file, but relay account scanner still sends through it: put it back under senders:, or give it another sender (PATCH /api/v1/relay-accounts/NAME) or remove it (`mailgate relay-account remove NAME`) first",
    );
    expect(await names(services)).toEqual({ servers: ['file-smtp'], senders: ['alarms'] });

    await services.relayAccounts.remove('scanner');
    await syncConfigFile(without);
    expect(await names(services)).toEqual({ servers: ['file-smtp'], senders: [] });
  });

  it('keeps a server removed from the file while a CLI sender or a proxy account uses it, or changed so that they no longer fit, naming them all', async () => {
    services = await openTestServices();
    const imap = { protocol: 'imap', host: 'imap.example.test', port: 993, security: 'tls', username: 'a@example.test', auth: { type: 'oauth2', credential: 'm365' } };
    await services.credentials.add({ name: 'm365', provider: 'generic', authorizationUrl: 'https://auth.example.test/authorize', tokenUrl: 'https://auth.example.test/token', clientId: 'client', clientSecret: 'secret', email: 'a@example.test' });
    await syncConfigFile(withFile(services, { servers: { 'file-smtp': smtp('smtp.example.test'), 'file-imap': imap } }));
    await services.senders.add({ name: 'cli-route', primary: 'file-smtp', from: 'route@example.test' });
    await services.proxyAccounts.add({ name: 'tickets', server: 'file-imap', password: 'tickets-password-123' });

    const { message } = await failure(syncConfigFile(withFile(services, { servers: { 'file-imap': { ...imap, auth: { type: 'password', password: 'x' } } } })));
    expect(message.split('\n').slice(1)).toEqual([
      '  servers.file-smtp: removed from the file, but still used by sender cli-route: put it back under servers:, or point them to another server (or remove them) first',
      '  servers.file-imap.auth: is not oauth2, but proxy account tickets logs in through it and the proxy logs in upstream with XOAUTH2: give it { type: oauth2, credential: NAME }, or move the proxy account first',
    ]);
    const { message: protocol } = await failure(syncConfigFile(withFile(services, { servers: { 'file-smtp': { ...imap, auth: { type: 'oauth2', credential: 'm365' } }, 'file-imap': smtp('x.example.test') } })));
    expect(protocol).toContain('servers.file-smtp.protocol: is imap, but sender cli-route sends through it and a sender needs smtp');
    expect(protocol).toContain('servers.file-imap.protocol: is smtp, but proxy account tickets reads mail through it (imap or pop3): keep its protocol, or move it to another server first');
    expect((await services.servers.show('file-imap')).auth).toEqual({ type: 'oauth2', credential: 'm365' });
    expect(await names(services)).toEqual({ servers: ['file-imap', 'file-smtp'], senders: ['cli-route'] });
  });

  it('reports a missing credential and a missing relay or alert sender as notices, not refusals: they can be added while Mailgate runs', async () => {
    services = await openTestServices();
    const oauth = { ...smtp('smtp.office365.com'), auth: { type: 'oauth2', credential: 'not-yet' } };
    const notices = await syncConfigFile(withFile(services, { servers: { 'm365-smtp': oauth }, relaySender: 'scanner', alertSender: 'alerts' }));
    expect(notices).toEqual([
      { key: 'servers.m365-smtp.auth.credential', text: 'no credential named "not-yet" yet: the server cannot log in until it is added (`mailgate credential add not-yet …` or the web UI) and connected' },
      { key: 'relay.listeners[0].sender', text: 'no sender named "scanner" yet: unauthenticated submissions on this listener are deferred (451) until it is added under senders:, or with `mailgate sender add scanner …`' },
      { key: 'alerts.email.sender', text: 'no sender named "alerts" yet: alert e-mails cannot go out until it is added under senders:, or with `mailgate sender add alerts …`' },
    ]);
    expect(await names(services)).toEqual({ servers: ['m365-smtp'], senders: [] });
  });
});
