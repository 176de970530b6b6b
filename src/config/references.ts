// Names one part of mailgate.yaml gives another (a sender's servers, a server's credential, a listener's sender): checked inside the file at load, against the store at sync.
import { parseAddress } from '../outbox/addresses.js';

/** One problem with one key, already worded for the operator. */
export interface ConfigProblem {
  key: string;
  text: string;
}

export type ReferenceKind = 'server' | 'sender' | 'credential';

/** A name given in the file: where (`senders.alarms.primary`), of what, and which server protocols fit. */
export interface Reference {
  key: string;
  kind: ReferenceKind;
  name: string;
  /** Servers only: the protocols the referring entry can use (a sender: smtp). */
  protocols?: readonly string[];
  /** Servers only: what the referring entry is, for the message ("a sender"). */
  usedAs?: string;
}

/** The parts of the file (raw YAML or the validated configuration: same shape) that name other objects. */
export interface ReferringParts {
  servers?: unknown;
  senders?: unknown;
  relay?: unknown;
  alerts?: unknown;
}

const record = (value: unknown): Record<string, unknown> => (value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {});
const text = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);

/** Every reference by name in the file, whatever else is wrong with the entry that holds it. */
export function referencesOf(file: ReferringParts): Reference[] {
  const refs: Reference[] = [];
  for (const [name, value] of Object.entries(record(file.senders))) {
    const sender = record(value);
    const primary = text(sender.primary);
    if (primary) refs.push({ key: `senders.${name}.primary`, kind: 'server', name: primary, protocols: ['smtp'], usedAs: 'a sender' });
    if (Array.isArray(sender.backups)) {
      sender.backups.forEach((backup, i) => {
        const server = text(backup);
        if (server) refs.push({ key: `senders.${name}.backups[${i}]`, kind: 'server', name: server, protocols: ['smtp'], usedAs: 'a sender' });
      });
    }
  }
  for (const [name, value] of Object.entries(record(file.servers))) {
    const auth = record(record(value).auth);
    const credential = text(auth.credential);
    if (auth.type === 'oauth2' && credential) refs.push({ key: `servers.${name}.auth.credential`, kind: 'credential', name: credential });
  }
  const listeners = record(file.relay).listeners;
  if (Array.isArray(listeners)) {
    listeners.forEach((listener, i) => {
      const sender = text(record(listener).sender);
      if (sender) refs.push({ key: `relay.listeners[${i}].sender`, kind: 'sender', name: sender });
    });
  }
  const alertSender = text(record(record(file.alerts).email).sender);
  if (alertSender) refs.push({ key: 'alerts.email.sender', kind: 'sender', name: alertSender });
  return refs;
}

/** Whether the file itself defines what `ref` names (credentials never are: they live in the store only). */
export function definedInFile(file: ReferringParts, ref: Reference): boolean {
  if (ref.kind === 'server') return Object.hasOwn(record(file.servers), ref.name);
  if (ref.kind === 'sender') return Object.hasOwn(record(file.senders), ref.name);
  return false;
}

/**
 * What is wrong inside the file alone, beyond the types the schema checks: a sender naming a file server of another
 * protocol or one server twice, an address that does not parse, a server that logs in without a username.
 */
export function problemsInFile(file: ReferringParts): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const servers = record(file.servers);
  for (const ref of referencesOf(file)) {
    if (ref.kind !== 'server' || !definedInFile(file, ref) || !ref.protocols) continue;
    const protocol = text(record(servers[ref.name]).protocol);
    if (protocol && ['smtp', 'imap', 'pop3'].includes(protocol) && !ref.protocols.includes(protocol)) {
      problems.push({ key: ref.key, text: `server ${ref.name} is an ${protocol} server, ${ref.usedAs ?? 'this'} needs ${ref.protocols.join(' or ')}: name an ${ref.protocols.join(' or ')} server under servers:` });
    }
  }
  for (const [name, value] of Object.entries(record(file.senders))) {
    const sender = record(value);
    const route = [sender.primary, ...(Array.isArray(sender.backups) ? sender.backups : [])].filter((s): s is string => typeof s === 'string');
    const twice = route.find((server, i) => route.indexOf(server) !== i);
    if (twice !== undefined) problems.push({ key: `senders.${name}.backups`, text: `server ${twice} appears twice in the route: name each server once` });
    for (const field of ['from', 'replyTo'] as const) {
      const address = text(sender[field]);
      if (!address) continue;
      const parsed = parseAddress(address);
      if (!parsed.ok) problems.push({ key: `senders.${name}.${field}`, text: parsed.problem });
    }
  }
  for (const [name, value] of Object.entries(servers)) {
    const server = record(value);
    const type = record(server.auth).type;
    if ((type === 'password' || type === 'oauth2') && (server.username === undefined || server.username === '')) {
      problems.push({ key: `servers.${name}.username`, text: type === 'oauth2' ? 'required with oauth2 authentication: the mailbox address the token belongs to' : 'required with password authentication: the login name at the server' });
    }
  }
  return problems;
}

/** The problems as one error text: one problem on one line, several on one line each under a heading. */
export function describeProblems(heading: string, problems: readonly ConfigProblem[]): string {
  if (problems.length === 1) return `${heading}: ${problems[0]!.key}: ${problems[0]!.text}`;
  return `${heading}, ${problems.length} problems:\n${problems.map((p) => `  ${p.key}: ${p.text}`).join('\n')}`;
}
