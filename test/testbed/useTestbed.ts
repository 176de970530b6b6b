// Vitest wiring for a whole bed: starts the authorization server and Dovecot before the file's tests, stops both
// after them, and when any test failed keeps the logs in test-output/testbed-logs/<file>-<time>/.
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { startAuthServer, type AuthServer, type AuthServerOptions } from './authServer.js';
import { startMailServer, type MailServer, type MailServerOptions } from './mailServer.js';

export interface TestbedOptions {
  auth?: AuthServerOptions;
  /** Mail server options besides the introspection settings (taken from the auth server); `false` = no Dovecot. */
  mail?: Omit<MailServerOptions, 'introspectionUrl' | 'introspectionClientId' | 'introspectionClientSecret'> | false;
}

export interface Testbed {
  /** Available from the first test on (throws if read before beforeAll ran). */
  readonly auth: AuthServer;
  readonly mail: MailServer;
}

const LOG_ROOT = resolve('test-output', 'testbed-logs');

/** Call at the top of a test file (or describe). */
export function useTestbed(options: TestbedOptions = {}): Testbed {
  let auth: AuthServer | undefined;
  let mail: MailServer | undefined;
  let label = 'testbed';
  let failed = false;

  beforeAll(async ({}, suite) => {
    label = `${'filepath' in suite ? basename(suite.filepath) : suite.name}-${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}`;
    auth = await startAuthServer(options.auth);
    if (options.mail !== false) mail = await startMailServer({ ...auth.introspection, ...options.mail });
  });

  // onTestFailed fires once per failed test, before afterAll: the one reliable "did anything fail" signal.
  beforeEach((context) => {
    context.onTestFailed(() => {
      failed = true;
    });
  });

  afterAll(async () => {
    const problems: unknown[] = [];
    if (failed) {
      const authLog = auth?.logs() ?? '';
      try {
        const dir = mail
          ? await mail.keepLogs(label, { 'auth.log': authLog })
          : await writeAuthLogOnly(label, authLog);
        console.warn(`[testbed] a test failed: logs kept in ${dir}`);
      } catch (err) {
        problems.push(err);
      }
    }
    // Both are stopped even when one of them fails to: nothing is left running.
    await mail?.stop().catch((err: unknown) => problems.push(err));
    await auth?.stop().catch((err: unknown) => problems.push(err));
    if (problems.length > 0) throw problems[0];
  });

  return {
    get auth() {
      if (!auth) throw new Error('testbed auth server is not started yet (read it inside a test or hook)');
      return auth;
    },
    get mail() {
      if (!mail) throw new Error(options.mail === false ? 'this testbed has no mail server' : 'testbed mail server is not started yet');
      return mail;
    },
  };
}

async function writeAuthLogOnly(label: string, authLog: string): Promise<string> {
  const dir = join(LOG_ROOT, label);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'auth.log'), authLog);
  return dir;
}
