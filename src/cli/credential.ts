// `mailgate credential add|list|show|remove|authorize|refresh` and `mailgate token access-token`: thin shells over the credential services.
import fs from 'node:fs';
import type { Command } from 'commander';
import { ErrorCode, MailgateError } from '../errors.js';
import type { CredentialView } from '../credentials/model.js';
import type { GrantOutcome } from '../oauth/userGrant.js';
import { readSecret } from './secretInput.js';
import { STATE_TTL_MS } from '../oauth/authorization.js';
import type { Services } from '../services.js';
import { withServices, type ConfigOption } from './context.js';
import { collect, collectWhole, CONFIG_OPTION_HELP, printLine, table, type Print } from './format.js';

interface AddOptions extends ConfigOption {
  provider: string;
  clientId?: string;
  email: string;
  tenant?: string;
  serviceAccountKeyFile?: string;
  clientCertificateFile?: string;
  protocols?: string[];
  scopes?: string;
  grant?: string;
  authority?: string;
  cloud?: string;
  authorizationUrl?: string;
  tokenUrl?: string;
  issuer?: string;
  deviceAuthorizationUrl?: string;
  revocationUrl?: string;
  userinfoUrl?: string;
  authParam: string[];
  clientSecretEnv?: string;
  clientSecretFile?: string;
  clientSecretExpiresAt?: string;
  json?: boolean;
}

export function registerCredentialCommands(program: Command, print: Print = printLine): void {
  const credential = program.command('credential').description('OAuth2 credentials: register an app, connect an account, keep its tokens fresh');

  credential
    .command('add')
    .description('register a credential; the client secret comes from --client-secret-env, --client-secret-file or standard input, never an argument')
    .argument('<name>', 'a name for the credential, e.g. m365-alerts')
    .requiredOption('--provider <provider>', 'microsoft | google | generic')
    .option('--client-id <id>', 'Application (client) ID (a service account\'s is read from its key)')
    .requiredOption('--email <address>', 'the mailbox account that will sign in')
    .option('--tenant <tenant>', 'Microsoft: Directory (tenant) ID, or "organizations"')
    .option('--protocols <list>', 'smtp,imap,pop3,ews,graph (default smtp,imap): picks the preset scopes', collect)
    .option('--scopes <scopes>', 'explicit scopes, space-separated (instead of the preset per protocol)')
    .option('--grant <grant>', 'authorization_code (default) | client_credentials | device_code')
    .option('--cloud <cloud>', 'Microsoft: global (default) | usgov (US Government, GCC High) | china (21Vianet): sign-in host and Exchange Online scopes')
    .option('--authority <url>', 'Microsoft: the sign-in authority (default: the cloud\'s, https://login.microsoftonline.com); for a proxy or test server')
    .option('--authorization-url <url>', 'authorization endpoint (generic, or to override a preset)')
    .option('--token-url <url>', 'token endpoint (generic, or to override a preset)')
    .option('--issuer <url>', 'issuer: discovery for generic providers; expected ID token issuer otherwise')
    .option('--device-authorization-url <url>', 'device authorization endpoint (override)')
    .option('--revocation-url <url>', 'revocation endpoint (override)')
    .option('--userinfo-url <url>', 'userinfo endpoint (override)')
    .option('--auth-param <key=value>', 'extra authorization parameter, e.g. prompt=consent (repeatable)', collectWhole, [] as string[])
    .option('--client-secret-env <var>', 'read the client secret from this environment variable')
    .option('--client-secret-file <file>', 'read the client secret from this file')
    .option('--service-account-key-file <file>', 'Google service account with domain-wide delegation: its JSON key file (app-only; --email is the mailbox)')
    .option('--client-certificate-file <file>', 'Entra ID certificate credential: PEM with the certificate and its private key (app-only)')
    .option('--client-secret-expires-at <date>', 'when the client secret expires (warnings 30, 7 and 1 days ahead)')
    .option('--json', 'print the credential as JSON')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action(async (name: string, options: AddOptions) => {
      const keyMaterial = options.serviceAccountKeyFile
        ? { serviceAccountKey: readSecretFile(options.serviceAccountKeyFile, '--service-account-key-file') }
        : options.clientCertificateFile
          ? { clientCertificate: readSecretFile(options.clientCertificateFile, '--client-certificate-file') }
          : undefined;
      const clientSecret = keyMaterial ? undefined : await readClientSecret(options);
      const input = {
        name,
        provider: options.provider,
        ...(options.clientId ? { clientId: options.clientId } : {}),
        ...keyMaterial,
        email: options.email,
        ...(options.grant ? { grant: options.grant } : {}),
        ...(options.tenant ? { tenant: options.tenant } : {}),
        ...(options.protocols ? { protocols: options.protocols } : {}),
        ...(options.scopes ? { scopes: options.scopes.split(/\s+/).filter(Boolean) } : {}),
        ...(options.authority ? { authority: options.authority } : {}),
        ...(options.cloud ? { cloud: options.cloud } : {}),
        ...(options.authorizationUrl ? { authorizationUrl: options.authorizationUrl } : {}),
        ...(options.tokenUrl ? { tokenUrl: options.tokenUrl } : {}),
        ...(options.issuer ? { issuer: options.issuer } : {}),
        ...(options.deviceAuthorizationUrl ? { deviceAuthorizationUrl: options.deviceAuthorizationUrl } : {}),
        ...(options.revocationUrl ? { revocationUrl: options.revocationUrl } : {}),
        ...(options.userinfoUrl ? { userinfoUrl: options.userinfoUrl } : {}),
        ...(options.authParam.length ? { authParams: parseAuthParams(options.authParam) } : {}),
        ...(options.clientSecretExpiresAt ? { clientSecretExpiresAt: options.clientSecretExpiresAt } : {}),
        ...(clientSecret ? { clientSecret } : {}),
      };
      await withServices(options, async (services) => {
        const view = await services.credentials.add(input);
        if (options.json) return print(JSON.stringify(view, null, 2));
        print(`added credential ${view.name} (${view.provider}, ${view.grant})`);
        printSetupHints(view, print);
      }, { action: 'credential.add', target: name, fields: Object.keys(input).filter((k) => k !== 'name') });
    });

  credential
    .command('update')
    .description('change a credential in place (e.g. a new client secret before the old one expires); tokens are kept unless the app or account changes')
    .argument('<name>', 'the credential')
    .option('--client-secret-env <var>', 'the new client secret, from this environment variable')
    .option('--client-secret-file <file>', 'the new client secret, from this file')
    .option('--client-secret-stdin', 'the new client secret, from standard input')
    .option('--client-secret-expires-at <date>', 'when the (new) client secret expires (warnings 30, 7 and 1 days ahead)')
    .option('--client-id <id>', 'Application (client) ID')
    .option('--email <address>', 'the mailbox account that signs in')
    .option('--tenant <tenant>', 'Microsoft: Directory (tenant) ID')
    .option('--protocols <list>', 'smtp,imap,pop3,ews,graph: picks the preset scopes again', collect)
    .option('--scopes <scopes>', 'explicit scopes, space-separated')
    .option('--json', 'print the credential as JSON')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action(async (name: string, options: ConfigOption & { clientSecretEnv?: string; clientSecretFile?: string; clientSecretStdin?: boolean; clientSecretExpiresAt?: string; clientId?: string; email?: string; tenant?: string; protocols?: string[]; scopes?: string; json?: boolean }) => {
      const wantsSecret = Boolean(options.clientSecretEnv || options.clientSecretFile || options.clientSecretStdin);
      const clientSecret = wantsSecret ? await readSecret({ env: { variable: options.clientSecretEnv, option: '--client-secret-env' }, file: { path: options.clientSecretFile, option: '--client-secret-file' } }) : undefined;
      if (wantsSecret && !clientSecret) throw new MailgateError(ErrorCode.INPUT_INVALID, 'clientSecret: empty: pass the new secret through --client-secret-env, --client-secret-file or standard input');
      const patch = {
        ...(clientSecret ? { clientSecret } : {}),
        ...(options.clientSecretExpiresAt ? { clientSecretExpiresAt: options.clientSecretExpiresAt } : {}),
        ...(options.clientId ? { clientId: options.clientId } : {}),
        ...(options.email ? { email: options.email } : {}),
        ...(options.tenant ? { tenant: options.tenant } : {}),
        ...(options.protocols ? { protocols: options.protocols } : {}),
        ...(options.scopes ? { scopes: options.scopes.split(/\s+/).filter(Boolean) } : {}),
      };
      if (Object.keys(patch).length === 0) throw new MailgateError(ErrorCode.INPUT_INVALID, 'nothing to change: give at least one option (see `mailgate credential update --help`)');
      await withServices(options, async (services) => {
        const before = await services.credentials.show(name);
        const view = await services.credentials.update(name, patch);
        if (options.json) return print(JSON.stringify(view, null, 2));
        print(`updated credential ${view.name}: ${Object.keys(patch).join(', ')}`);
        if (before.hasRefreshToken && !view.hasRefreshToken) print(`the change names another app or account, so its tokens were dropped: connect again with \`mailgate credential authorize ${view.name}\``);
      }, { action: 'credential.update', target: name, fields: Object.keys(patch) });
    });

  credential
    .command('list')
    .description('list credentials with their status and token expiry')
    .option('--json', 'print JSON')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action((options: ConfigOption & { json?: boolean }) =>
      withServices(options, async (services) => {
        const all = await services.credentials.list();
        if (options.json) return print(JSON.stringify(all, null, 2));
        if (all.length === 0) return print('no credentials (add one with `mailgate credential add NAME --provider …`)');
        const rows = all.map((c) => [c.name, c.provider, c.grant, c.email, c.status, c.expiresAt ?? '-', c.lastError ? truncate(c.lastError, 60) : '']);
        for (const line of table([['NAME', 'PROVIDER', 'GRANT', 'ACCOUNT', 'STATUS', 'EXPIRES', 'LAST ERROR'], ...rows])) print(line);
      }),
    );

  credential
    .command('show')
    .description('show one credential: settings, status, token expiry, redirect URI (never a secret)')
    .argument('<name>')
    .option('--json', 'print JSON')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action((name: string, options: ConfigOption & { json?: boolean }) =>
      withServices(options, async (services) => {
        const view = await services.credentials.show(name);
        if (options.json) return print(JSON.stringify({ ...view, events: await services.credentials.events(name) }, null, 2));
        const lines: [string, string | undefined][] = [
          ['name', view.name],
          ['provider', `${view.provider}${view.tenant ? ` (tenant ${view.tenant})` : ''}`],
          ['grant', view.grant],
          ['client ID', view.clientId],
          ['client secret', view.hasClientSecret ? 'set' : 'none'],
          ['account', view.email],
          ['signed in as', view.identity?.email],
          ['scopes', view.scopes.join(' ')],
          ['status', `${view.status}${view.statusReason ? ` — ${view.statusReason}` : ''}`],
          ['access token expires', view.expiresAt],
          ['last refreshed', view.lastRefreshedAt],
          ['last used', view.lastUsedAt],
          ['last error', view.lastError],
          ['authorization URL', view.authorizationUrl],
          ['token URL', view.tokenUrl],
          ['redirect URI', view.redirectUri],
        ];
        for (const [label, value] of lines) if (value !== undefined) print(`${`${label}:`.padEnd(22)}${value}`);
        for (const w of view.warnings) print(`warning: ${w.message}`);
      }),
    );

  credential
    .command('remove')
    .description('remove a credential and its tokens')
    .argument('<name>')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action((name: string, options: ConfigOption) =>
      withServices(options, async (services) => {
        await services.credentials.remove(name);
        print(`removed credential ${name}`);
      }, { action: 'credential.remove', target: name }),
    );

  credential
    .command('authorize')
    .description('connect the account: prints the sign-in URL (or device code) and waits until the sign-in completes')
    .argument('<name>')
    .option('--timeout <seconds>', 'how long to wait for the sign-in', (v) => Number(v), STATE_TTL_MS / 1000)
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action((name: string, options: ConfigOption & { timeout: number }) =>
      withServices(options, async (services) => {
        const view = await services.credentials.show(name);
        let outcome: GrantOutcome | undefined;
        if (view.grant === 'client_credentials') {
          const token = await services.tokens.refresh(name);
          return print(`credential ${name} uses client credentials: no sign-in needed; access token issued, expires ${token.expiresAt ?? 'unknown'}`);
        }
        if (view.grant === 'device_code') {
          const { runDeviceFlow } = await import('../oauth/deviceFlow.js');
          outcome = await runDeviceFlow(services.credentialRepo, services.logger, name, (prompt) => {
            print(`To connect ${name}, open ${prompt.verificationUri} and enter the code ${prompt.userCode} (valid until ${prompt.expiresAt}).`);
            if (prompt.verificationUriComplete) print(`Or open ${prompt.verificationUriComplete}`);
            print('Waiting for the sign-in…');
          }, AbortSignal.timeout(options.timeout * 1000));
        } else {
          outcome = await authorizeInBrowser(services, name, options.timeout * 1000, print);
        }
        reportOutcome(outcome, print);
      }, { action: 'credential.authorize', target: name }),
    );

  credential
    .command('refresh')
    .description('refresh the access token now')
    .argument('<name>')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action((name: string, options: ConfigOption) =>
      withServices(options, async (services) => {
        const token = await services.tokens.refresh(name);
        print(`refreshed ${name}: access token expires ${token.expiresAt ?? 'unknown'}`);
      }, { action: 'credential.refresh', target: name }),
    );

  program
    .command('token')
    .description('access tokens for scripts and mail clients')
    .command('access-token')
    .description('print a valid access token for NAME (refreshed first when it expires within the margin)')
    .argument('<name>')
    .option('--json', 'print { accessToken, tokenType, expiresAt }')
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action((name: string, options: ConfigOption & { json?: boolean }) =>
      withServices(options, async (services) => {
        const token = await services.tokens.getAccessToken(name);
        print(options.json ? JSON.stringify({ accessToken: token.accessToken.reveal(), tokenType: token.tokenType, expiresAt: token.expiresAt }) : token.accessToken.reveal());
      }),
    );
}

/**
 * Prints the sign-in URL and waits. If `serve` already listens on the configured address, its /oauth/callback
 * completes the flow and we watch the store; otherwise a temporary listener on that address takes the callback.
 */
async function authorizeInBrowser(services: Services, name: string, timeoutMs: number, print: Print): Promise<GrantOutcome> {
  const { listen } = services.config;
  const [{ default: Fastify }, { registerCallbackRoute }] = await Promise.all([import('fastify'), import('../oauth/callbackRoute.js')]);
  const temporary = Fastify({ logger: false });
  let resolveOutcome!: (outcome: GrantOutcome) => void;
  const outcome = new Promise<GrantOutcome>((resolve) => (resolveOutcome = resolve));
  registerCallbackRoute(temporary, services.authorization, { onOutcome: (o) => resolveOutcome(o) });
  let ownListener = true;
  try {
    await temporary.listen({ host: listen.host, port: listen.port });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    ownListener = false; // a running `serve` will take the callback
  }
  try {
    const startedAt = new Date().toISOString();
    const { authorizationUrl } = await services.authorization.start(name);
    print(`Open this URL in a browser and sign in as ${(await services.credentials.show(name)).email} (a private window avoids signing in with the wrong account):`);
    print(authorizationUrl);
    print(ownListener ? `Waiting for the provider to redirect to ${services.credentials.redirectUri} …` : 'Waiting for the running Mailgate to receive the sign-in …');
    const deadline = Date.now() + timeoutMs;
    if (ownListener) {
      const timeout = new Promise<GrantOutcome>((resolve) => setTimeout(() => resolve(timedOut(name)), timeoutMs).unref());
      return await Promise.race([outcome, timeout]);
    }
    while (Date.now() < deadline) {
      const view = await services.credentials.show(name);
      if (view.updatedAt > startedAt) {
        if (view.lastRefreshedAt && view.lastRefreshedAt >= startedAt && view.status === 'active') return { ok: true, credential: name, signedInAs: view.identity?.email, warnings: view.warnings };
        if (view.lastError) return { ok: false, code: ErrorCode.OAUTH_PROVIDER_ERROR, credential: name, title: 'Sign-in failed', message: view.lastError };
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    return timedOut(name);
  } finally {
    if (ownListener) await temporary.close();
  }
}

const TIMED_OUT = 'Timed out';

function timedOut(name: string): GrantOutcome {
  return { ok: false, code: ErrorCode.OAUTH_STATE_INVALID, credential: name, title: TIMED_OUT, message: 'nobody completed the sign-in in time: run the command again' };
}

function reportOutcome(outcome: GrantOutcome, print: Print): void {
  if (!outcome.ok) throw new MailgateError(outcome.title === TIMED_OUT ? ErrorCode.WAIT_TIMED_OUT : ErrorCode.SIGN_IN_FAILED, `${outcome.title}: ${outcome.message}`, { details: { code: outcome.code } });
  print(`connected ${outcome.credential}${outcome.signedInAs ? ` as ${outcome.signedInAs}` : ''}; Mailgate keeps its tokens fresh from now on`);
  for (const w of outcome.warnings) print(`warning: ${w.message}`);
}

function printSetupHints(view: CredentialView, print: Print): void {
  if (view.grant === 'authorization_code') {
    print(`redirect URI (paste into the provider's app registration, platform "Web"): ${view.redirectUri}`);
    print(`next: mailgate credential authorize ${view.name}`);
  } else if (view.grant === 'device_code') {
    print(`next: mailgate credential authorize ${view.name} (shows a code to enter on any device)`);
  } else {
    print(`next: mailgate credential refresh ${view.name} (checks that the app can get a token)`);
  }
  for (const w of view.warnings) print(`warning: ${w.message}`);
}

function parseAuthParams(pairs: string[]): Record<string, string> {
  const params: Record<string, string> = {};
  for (const pair of pairs) {
    const i = pair.indexOf('=');
    if (i <= 0) throw new MailgateError(ErrorCode.INPUT_INVALID, `--auth-param: expected KEY=VALUE, got ${JSON.stringify(pair)}`);
    params[pair.slice(0, i)] = pair.slice(i + 1);
  }
  return params;
}

/** The client secret never travels as an argument (`ps` shows arguments to every user). */
function readClientSecret(options: AddOptions): Promise<string | undefined> {
  return readSecret({ env: { variable: options.clientSecretEnv, option: '--client-secret-env' }, file: { path: options.clientSecretFile, option: '--client-secret-file' } });
}

function readSecretFile(file: string, option: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (cause) {
    throw new MailgateError(ErrorCode.INPUT_INVALID, `${option}: cannot read ${file}: ${(cause as NodeJS.ErrnoException).code ?? 'unreadable'}`, { cause });
  }
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
