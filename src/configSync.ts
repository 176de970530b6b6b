// Applies mailgate.yaml's servers and senders to the store, after checking everything the file names against it: all problems in one error, nothing written unless none.
import { ErrorCode, MailgateError } from './errors.js';
import type { Services } from './services.js';
import { definedInFile, describeProblems, referencesOf, type ConfigProblem, type Reference } from './config/references.js';

type SyncServices = Pick<Services, 'config' | 'store' | 'serverRepo' | 'credentialRepo' | 'servers' | 'senders'>;

export interface ConfigSyncCheck {
  /** Refuse the sync: a sender's server that neither the file nor the store has, a removal that breaks a user. */
  problems: ConfigProblem[];
  /**
   * Names of things that may be added while Mailgate runs (a credential, through the web UI too; a relay listener's
   * or the alert e-mails' sender): reported, not refused, so that `serve` can start and the web UI add them.
   */
  notices: ConfigProblem[];
}

/**
 * Makes the store's file-defined servers and senders match the file. Throws CONFIG_INVALID listing every problem
 * (a sender's server that neither the file nor the store defines, an entry removed from the file that accounts or
 * watchers still use) before anything is written: the store is never half-synced. Returns the notices.
 */
export async function syncConfigFile(services: SyncServices): Promise<ConfigProblem[]> {
  const { problems, notices } = await checkConfigSync(services);
  if (problems.length > 0) {
    const where = services.config.configFile ? ` (config file ${services.config.configFile})` : '';
    throw new MailgateError(ErrorCode.CONFIG_INVALID, describeProblems(`the config file's servers and senders cannot be applied${where}; nothing was changed`, problems), { details: { problems } });
  }
  await services.servers.syncFromConfig(services.config.servers);
  await services.senders.syncFromConfig(services.config.senders);
  return notices;
}

/** Every problem the sync would meet, found by reading the store only. */
export async function checkConfigSync(services: SyncServices): Promise<ConfigSyncCheck> {
  const { config, store } = services;
  const db = store.db;
  const fileServers = config.servers;
  const fileSenders = config.senders;
  const [serverRows, senderRows, watchers, proxyAccounts, relayAccounts] = await Promise.all([
    services.serverRepo.list(),
    db.selectFrom('senders').select(['name', 'source', 'primary_server', 'backups']).execute(),
    db.selectFrom('watchers').select(['name', 'server']).orderBy('name').execute(),
    db.selectFrom('proxy_accounts').select(['name', 'server']).orderBy('name').execute(),
    db.selectFrom('relay_accounts').select(['name', 'sender']).orderBy('name').execute(),
  ]);
  // What stays besides the file's own after the sync: objects made with the CLI or API whose names the file does
  // not take over. File-defined rows no longer in the file go.
  const keptServers = new Map(serverRows.filter((r) => r.source !== 'config' && !Object.hasOwn(fileServers, r.name)).map((r) => [r.name, r]));
  const keptSenders = senderRows.filter((r) => r.source !== 'config' && !Object.hasOwn(fileSenders, r.name));
  const keptSenderNames = new Set(keptSenders.map((r) => r.name));
  const routeOf = (row: { primary_server: string; backups: string }) => [row.primary_server, ...(JSON.parse(row.backups) as string[])];

  const problems: ConfigProblem[] = [];
  const notices: ConfigProblem[] = [];
  const parts = { servers: fileServers, senders: fileSenders, relay: config.relay, alerts: config.alerts };
  for (const ref of referencesOf(parts)) {
    if (definedInFile(parts, ref)) continue;
    const problem = await unresolved(ref, keptServers, keptSenderNames, services);
    if (problem) (ref.kind === 'server' ? problems : notices).push({ key: ref.key, text: problem });
  }

  // Removed from the file while something made outside it still uses it: refused, naming the users.
  for (const row of serverRows) {
    if (row.source !== 'config' || Object.hasOwn(fileServers, row.name)) continue;
    const users = [
      named('sender', keptSenders.filter((s) => routeOf(s).includes(row.name)).map((s) => s.name)),
      named('watcher', watchers.filter((w) => w.server === row.name).map((w) => w.name)),
      named('proxy account', proxyAccounts.filter((a) => a.server === row.name).map((a) => a.name)),
    ].filter(Boolean);
    if (users.length > 0) {
      problems.push({ key: `servers.${row.name}`, text: `removed from the file, but still used by ${users.join(' and ')}: put it back under servers:, or point them to another server (or remove them) first` });
    }
  }
  for (const row of senderRows) {
    if (row.source !== 'config' || Object.hasOwn(fileSenders, row.name)) continue;
    const accounts = relayAccounts.filter((a) => a.sender === row.name).map((a) => a.name);
    if (accounts.length > 0) {
      const one = accounts.length === 1;
      problems.push({ key: `senders.${row.name}`, text: `removed from the file, but ${named('relay account', accounts)} still send${one ? 's' : ''} through it: put it back under senders:, or give ${one ? 'it' : 'them'} another sender (PATCH /api/v1/relay-accounts/NAME) or remove ${one ? 'it' : 'them'} (\`mailgate relay-account remove NAME\`) first` });
    }
  }

  // Still in the file, but changed so that what uses it from outside the file no longer fits.
  for (const [name, value] of Object.entries(fileServers)) {
    const server = value as { protocol?: string; auth?: { type?: string } };
    if (server.protocol !== 'smtp') {
      const senders = keptSenders.filter((s) => routeOf(s).includes(name)).map((s) => s.name);
      if (senders.length > 0) problems.push({ key: `servers.${name}.protocol`, text: `is ${server.protocol}, but ${named('sender', senders)} send${senders.length === 1 ? 's' : ''} through it and a sender needs smtp: keep it smtp, or move the sender${senders.length === 1 ? '' : 's'} to another server first` });
    }
    if (server.protocol === 'smtp') {
      const watching = watchers.filter((w) => w.server === name).map((w) => w.name);
      const proxied = proxyAccounts.filter((a) => a.server === name).map((a) => a.name);
      const readers = [named('watcher', watching), named('proxy account', proxied)].filter(Boolean);
      const one = watching.length + proxied.length === 1;
      if (readers.length > 0) problems.push({ key: `servers.${name}.protocol`, text: `is smtp, but ${readers.join(' and ')} read${one ? 's' : ''} mail through it (imap or pop3): keep its protocol, or move ${one ? 'it' : 'them'} to another server first` });
    } else if (server.auth?.type !== 'oauth2') {
      const accounts = proxyAccounts.filter((a) => a.server === name).map((a) => a.name);
      if (accounts.length > 0) problems.push({ key: `servers.${name}.auth`, text: `is not oauth2, but ${named('proxy account', accounts)} log${accounts.length === 1 ? 's' : ''} in through it and the proxy logs in upstream with XOAUTH2: give it { type: oauth2, credential: NAME }, or move the proxy account${accounts.length === 1 ? '' : 's'} first` });
    }
  }
  return { problems, notices };
}

async function unresolved(ref: Reference, keptServers: Map<string, { protocol: string }>, keptSenders: Set<string>, services: SyncServices): Promise<string | undefined> {
  if (ref.kind === 'credential') {
    if (await services.credentialRepo.find(ref.name)) return undefined;
    return `no credential named ${JSON.stringify(ref.name)} yet: the server cannot log in until it is added (\`mailgate credential add ${ref.name} …\` or the web UI) and connected`;
  }
  if (ref.kind === 'sender') {
    if (keptSenders.has(ref.name)) return undefined;
    const until = ref.key === 'alerts.email.sender' ? 'alert e-mails cannot go out' : 'unauthenticated submissions on this listener are deferred (451)';
    return `no sender named ${JSON.stringify(ref.name)} yet: ${until} until it is added under senders:, or with \`mailgate sender add ${ref.name} …\``;
  }
  const row = keptServers.get(ref.name);
  if (!row) return `no server named ${JSON.stringify(ref.name)} in the file or the store: add it under servers:, or create it with \`mailgate server add ${ref.name} …\``;
  if (ref.protocols && !ref.protocols.includes(row.protocol)) return `server ${ref.name} is an ${row.protocol} server, ${ref.usedAs ?? 'this'} needs ${ref.protocols.join(' or ')}: name an ${ref.protocols.join(' or ')} server`;
  return undefined;
}

/** `relay account a`, `relay accounts a, b`; empty for none. */
function named(word: string, names: readonly string[]): string {
  return names.length === 0 ? '' : `${word}${names.length > 1 ? 's' : ''} ${names.join(', ')}`;
}
