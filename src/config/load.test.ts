// Proves that configuration is read from file and environment, and that each wrong value is named with its fix.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isMailgateError } from '../errors.js';
import { loadConfig } from './load.js';

function dirWithConfig(yaml?: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailgate-config-'));
  if (yaml !== undefined) fs.writeFileSync(path.join(dir, 'mailgate.yaml'), yaml);
  return dir;
}

function errorOf(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (err) {
    if (isMailgateError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected an error');
}

describe('loadConfig', () => {
  it('uses the embedded defaults when there is no file: 127.0.0.1:8025, SQLite and the key file in ./data', () => {
    const cwd = dirWithConfig();
    const config = loadConfig({ env: {}, cwd });
    expect(config.configFile).toBeUndefined();
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 8025 });
    expect(config.publicUrl).toBe('http://127.0.0.1:8025');
    expect(config.dataDir).toBe(path.join(cwd, 'data'));
    expect(config.database).toEqual({ kind: 'sqlite', file: path.join(cwd, 'data', 'mailgate.db') });
    expect(config.masterKey).toEqual({ kind: 'file', file: path.join(cwd, 'data', 'master.key') });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('reads ./mailgate.yaml and lets environment variables win over it', () => {
    const cwd = dirWithConfig('listen: 127.0.0.1:9000\ndataDir: ./state\npublicUrl: https://mail.example.com/\n');
    const fromFile = loadConfig({ env: {}, cwd });
    expect(fromFile.listen.port).toBe(9000);
    expect(fromFile.publicUrl).toBe('https://mail.example.com');
    expect(fromFile.dataDir).toBe(path.join(cwd, 'state'));

    const fromEnv = loadConfig({ env: { MAILGATE_LISTEN: '[::1]:9100', MAILGATE_DATA_DIR: '/srv/mg', MAILGATE_DATABASE_URL: 'sqlite:./x.db' }, cwd });
    expect(fromEnv.listen).toEqual({ host: '::1', port: 9100 });
    expect(fromEnv.dataDir).toBe('/srv/mg');
    expect(fromEnv.database).toEqual({ kind: 'sqlite', file: path.join(cwd, 'x.db') });
  });

  it('names the key, the problem and the value: servers.primary.port: expected 1-65535, got "587x"', () => {
    const cwd = dirWithConfig('servers:\n  primary:\n    protocol: smtp\n    host: smtp.office365.com\n    port: "587x"\n    security: starttls\n');
    const { code, message } = errorOf(() => loadConfig({ env: {}, cwd }));
    expect(code).toBe('CONFIG_INVALID');
    expect(message).toContain('servers.primary.port: expected 1-65535, got "587x"');
    expect(message).toContain(path.join(cwd, 'mailgate.yaml'));
  });

  it('reports every problem at once, unknown keys included', () => {
    const cwd = dirWithConfig('listen: nowhere\nlisten_port: 1\nservers:\n  a:\n    protocol: ftp\n    host: x\n    port: 70000\n    security: starttls\n');
    const { message } = errorOf(() => loadConfig({ env: {}, cwd }));
    expect(message).toContain('listen: expected "host:port"');
    expect(message).toContain('unknown key "listen_port"');
    expect(message).toContain('servers.a.protocol: expected one of smtp, imap, pop3, got "ftp"');
    expect(message).toContain('servers.a.port: expected 1-65535, got 70000');
  });

  it('never echoes a password from a bad value', () => {
    const cwd = dirWithConfig('servers:\n  a:\n    protocol: smtp\n    host: x\n    port: 25\n    security: none\n    auth: { type: password, password: 12345678 }\n');
    const { message } = errorOf(() => loadConfig({ env: {}, cwd }));
    expect(message).toContain('servers.a.auth.password');
    expect(message).not.toContain('12345678');
  });

  it('names the environment variable when its value is wrong, and hides database URLs that may hold a password', () => {
    const cwd = dirWithConfig();
    expect(errorOf(() => loadConfig({ env: { MAILGATE_LISTEN: '127.0.0.1:99999' }, cwd })).message).toContain('MAILGATE_LISTEN: expected "host:port" with a port 1-65535');
    const db = errorOf(() => loadConfig({ env: { MAILGATE_DATABASE_URL: 'mysql://root:hunter2@db/x' }, cwd }));
    expect(db.message).toContain('MAILGATE_DATABASE_URL: expected "sqlite:PATH" or "postgres://');
    expect(db.message).not.toContain('hunter2');
    expect(errorOf(() => loadConfig({ env: { MAILGATE_PUBLIC_URL: 'ftp://x' }, cwd })).message).toContain('MAILGATE_PUBLIC_URL: expected an http(s) URL');
  });

  it('says where YAML is broken, and that a missing --config file is missing', () => {
    const cwd = dirWithConfig('listen: [unclosed\n');
    const broken = errorOf(() => loadConfig({ env: {}, cwd }));
    expect(broken.code).toBe('CONFIG_UNREADABLE');
    expect(broken.message).toMatch(/line \d+, column \d+ is not valid YAML/);
    const missing = errorOf(() => loadConfig({ env: {}, cwd, configFile: 'nope.yaml' }));
    expect(missing.code).toBe('CONFIG_UNREADABLE');
    expect(missing.message).toContain('no such file (run `mailgate init`');
  });

  it('reports a bad databaseUrl, a schema type error and a sender naming a missing server together, one line each naming the key', () => {
    const cwd = dirWithConfig(
      [
        'databaseUrl: "mysql://root:hunter2@db/mailgate"',
        'outbox:',
        '  maxAttempts: "lots"',
        'servers:',
        '  smtp-main: { protocol: smtp, host: smtp.example.com, port: 587, security: starttls, username: a@example.com, auth: { type: password } }',
        'senders:',
        '  alarms: { primary: smtp-main, from: alarms@example.com }',
        '  reports: { primary: smtp-mian, from: reports@example.com }',
        '',
      ].join('\n'),
    );
    const { code, message } = errorOf(() => loadConfig({ env: {}, cwd }));
    expect(code).toBe('CONFIG_INVALID');
    const lines = message.split('\n');
    expect(lines[0]).toBe(`invalid configuration (config file ${path.join(cwd, 'mailgate.yaml')}), 3 problems:`);
    expect(lines.slice(1).sort()).toEqual(
      [
        '  databaseUrl: expected "sqlite:PATH" or "postgres://USER@HOST/DB", got a value starting with "mysql"',
        '  outbox.maxAttempts: expected 1-100, got "lots"',
        '  senders.reports.primary: no server named "smtp-mian" in this file (one made with the CLI is looked for once the other problems are fixed): add it under servers:, or create it with `mailgate server add smtp-mian …`',
      ].sort(),
    );
    expect(message).not.toContain('hunter2');
  });

  it('checks what one entry of the file says about another: a sender on an IMAP server, a server twice in a route, an address that does not parse, a login without a username', () => {
    const cwd = dirWithConfig(
      [
        'servers:',
        '  inbox: { protocol: imap, host: imap.example.com, port: 993, security: tls, username: a@example.com, auth: { type: password } }',
        '  out: { protocol: smtp, host: smtp.example.com, port: 587, security: starttls, auth: { type: oauth2, credential: m365 } }',
        'senders:',
        '  alarms: { primary: out, backups: [inbox, out], from: "Alarms <alarms@>" }',
        '',
      ].join('\n'),
    );
    const problems = errorOf(() => loadConfig({ env: {}, cwd })).message.split('\n').slice(1);
    expect(problems).toEqual(
      expect.arrayContaining([
        '  senders.alarms.backups[0]: server inbox is an imap server, a sender needs smtp: name an smtp server under servers:',
        '  senders.alarms.backups: server out appears twice in the route: name each server once',
        expect.stringMatching(/^ {2}senders\.alarms\.from: expected an e-mail address such as alerts@example\.com, got "Alarms <alarms@>"$/),
        '  servers.out.username: required with oauth2 authentication: the mailbox address the token belongs to',
      ]),
    );
    expect(problems).toHaveLength(4);
  });

  it('names list entries as the README does (relay.listeners[0].tls), and keeps one problem on one line', () => {
    const cwd = dirWithConfig('relay:\n  listeners:\n    - listen: "127.0.0.1:2525"\n      tls: bogus\n');
    const { message } = errorOf(() => loadConfig({ env: {}, cwd }));
    expect(message).toBe(`invalid configuration (config file ${path.join(cwd, 'mailgate.yaml')}): relay.listeners[0].tls: expected one of starttls, implicit, none, got "bogus"`);
  });

  it('loads a file whose sender names a server or whose server names a credential the file does not define: those may be in the store, checked when the file is applied', () => {
    const cwd = dirWithConfig(
      [
        'servers:',
        '  m365-smtp: { protocol: smtp, host: smtp.office365.com, port: 587, security: starttls, username: a@example.com, auth: { type: oauth2, credential: m365 } }',
        'senders:',
        '  alarms: { primary: made-with-the-cli, backups: [m365-smtp], from: alarms@example.com }',
        'relay:',
        '  listeners:',
        '    - { listen: "127.0.0.1:2525", requireAuth: false, allowUnauthenticatedFrom: [10.0.0.0/8], sender: scanner }',
        '',
      ].join('\n'),
    );
    const config = loadConfig({ env: {}, cwd });
    expect(Object.keys(config.senders)).toEqual(['alarms']);
    expect(config.relay.listeners[0]!.sender).toBe('scanner');
  });

  it('resolves relative paths in the file against the file\'s directory, wherever the command runs from; environment paths against the current directory', () => {
    const etc = dirWithConfig('dataDir: ./state\nmasterKeyFile: keys/master.key\ndatabaseUrl: "sqlite:db/mg.db"\n');
    const elsewhere = dirWithConfig();
    const config = loadConfig({ env: {}, cwd: elsewhere, configFile: path.join(etc, 'mailgate.yaml') });
    expect(config.dataDir).toBe(path.join(etc, 'state'));
    expect(config.masterKey).toEqual({ kind: 'file', file: path.join(etc, 'keys', 'master.key') });
    expect(config.database).toEqual({ kind: 'sqlite', file: path.join(etc, 'db', 'mg.db') });

    const bare = dirWithConfig('listen: 127.0.0.1:9000\n');
    const defaults = loadConfig({ env: {}, cwd: elsewhere, configFile: path.join(bare, 'mailgate.yaml') });
    expect(defaults.dataDir).toBe(path.join(bare, 'data'));
    expect(defaults.database).toEqual({ kind: 'sqlite', file: path.join(bare, 'data', 'mailgate.db') });

    const fromEnv = loadConfig({ env: { MAILGATE_DATA_DIR: 'here', MAILGATE_DATABASE_URL: 'sqlite:there.db' }, cwd: elsewhere, configFile: path.join(etc, 'mailgate.yaml') });
    expect(fromEnv.dataDir).toBe(path.join(elsewhere, 'here'));
    expect(fromEnv.database).toEqual({ kind: 'sqlite', file: path.join(elsewhere, 'there.db') });
  });
});
