// What to type into a program's five mail fields (server, port, security, user, password) for a relay or proxy account, one entry per configured listener.
import os from 'node:os';
import type { Config, ListenerConfig } from '../config/load.js';
import type { ListenerStatus } from '../listeners/registry.js';

export type ProgramProtocol = 'smtp' | 'imap' | 'pop3';

export interface ProgramSettings {
  /** The listener's config key: `relay.listeners[0]`, `proxy.imap`, `proxy.pop3`. */
  listener: string;
  protocol: ProgramProtocol;
  server: string;
  port: number;
  /** In the words mail programs use: `STARTTLS`, `SSL/TLS`, `None`. */
  security: 'STARTTLS' | 'SSL/TLS' | 'None';
  user: string;
  /** Things the person must know to make it work (a self-signed certificate, a listener on every address). */
  notes: string[];
}

const SECURITY_WORDS = { starttls: 'STARTTLS', implicit: 'SSL/TLS', none: 'None' } as const;
const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '']);
const LOOPBACK = /^(127\.|::1$|localhost$)/;

/**
 * The settings for `user` on each listener that serves `protocol`: the relay's listeners for `smtp`, `proxy.imap` or
 * `proxy.pop3` otherwise. `live` (the running process's listeners) gives the real port when the config asked for 0.
 */
export function programSettings(config: Pick<Config, 'relay' | 'proxy'>, protocol: ProgramProtocol, user: string, live: readonly ListenerStatus[] = []): ProgramSettings[] {
  const listeners: Array<[string, ListenerConfig]> =
    protocol === 'smtp'
      ? config.relay.listeners.map((l, i) => [`relay.listeners[${i}]`, l])
      : [[`proxy.${protocol}`, config.proxy[protocol]]].filter((entry): entry is [string, ListenerConfig] => entry[1] !== undefined);
  return listeners.map(([id, listener]) => {
    const running = live.find((l) => l.id === id);
    const { host, port } = addressOf(running?.listen, listener.listen);
    const notes: string[] = [];
    const wildcard = WILDCARD_HOSTS.has(host);
    if (wildcard) notes.push(`Mailgate listens on every address of this machine: use its name or IP address as the server (${os.hostname()} here)`);
    if (listener.tls !== 'none' && listener.certFile === undefined) {
      notes.push(`the certificate is self-signed: let the program trust it (${running?.certificate ? `SHA-256 fingerprint ${running.certificate.fingerprint256}` : 'its SHA-256 fingerprint is shown by mailgate status and on the Relay & proxies page once Mailgate listens'})`);
    }
    if (listener.tls === 'none' && !LOOPBACK.test(host)) {
      notes.push(listener.allowInsecureAuth ? 'the password crosses the network in clear text: use this only on a network you trust' : 'without TLS the password is accepted from this machine only');
    }
    return { listener: id, protocol, server: wildcard ? os.hostname() : host, port, security: SECURITY_WORDS[listener.tls], user, notes };
  });
}

/** `host:port` from the running listener when there is one (the real port), else the configured address. */
function addressOf(live: string | undefined, configured: { host: string; port: number }): { host: string; port: number } {
  const match = live ? /^\[?(.*?)\]?:(\d+)$/.exec(live) : null;
  return match ? { host: match[1]!, port: Number(match[2]) } : configured;
}

/** The settings as lines for a terminal. */
export function settingsLines(settings: readonly ProgramSettings[], password: string | undefined): string[] {
  const lines: string[] = [];
  for (const s of settings) {
    lines.push(`${s.protocol.toUpperCase()} (${s.listener}):`);
    lines.push(`  server:   ${s.server}`);
    lines.push(`  port:     ${s.port}`);
    lines.push(`  security: ${s.security}`);
    lines.push(`  user:     ${s.user}`);
    lines.push(`  password: ${password ?? '(the account\'s password)'}`);
    for (const note of s.notes) lines.push(`  note: ${note}`);
  }
  return lines;
}
