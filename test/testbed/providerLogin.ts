// Drives the test authorization server like a browser would, over plain HTTP (fetch + a small cookie jar):
// sign in on its login page, approve a device code, or run the whole PKCE code flow to get tokens.
import { createHash, randomBytes } from 'node:crypto';
import { LOGIN_REJECTED_MARKER } from './auth/interaction.js';
import type { AuthServer, Layout, TestClient, TestUser } from './authServer.js';
import { TestbedError, TestbedErrorCode } from './errors.js';

export interface Credentials {
  login: string;
  password: string;
}

/** Cookies by name; the provider is one origin and sets no cookie twice with different paths that matter here. */
export class CookieJar {
  private readonly cookies = new Map<string, string>();

  header(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }

  remember(res: Response): void {
    for (const cookie of res.headers.getSetCookie()) {
      const [pair = ''] = cookie.split(';');
      const eq = pair.indexOf('=');
      if (eq > 0) this.cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1));
    }
  }
}

const MAX_HOPS = 20;

async function browse(jar: CookieJar, url: URL, init: RequestInit = {}): Promise<Response> {
  const res = await fetch(url, {
    redirect: 'manual',
    ...init,
    headers: { accept: 'text/html', ...(init.headers as Record<string, string> | undefined), cookie: jar.header() },
  });
  jar.remember(res);
  return res;
}

const postForm = (fields: Record<string, string>): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams(fields),
});

function loginFormAction(html: string): string | undefined {
  return /<form[^>]*action="([^"]*\/interaction\/[^"]+\/login)"/.exec(html)?.[1];
}

const decodeEntities = (s: string) =>
  s.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (_, e: string) => {
    const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
    if (e[0] !== '#') return named[e.toLowerCase()]!;
    return String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : Number(e.slice(1)));
  });

/**
 * The first POST form of a page with its hidden inputs: oidc-provider's device confirmation form and its
 * auto-submitting "Submitting Callback" page (which a browser posts by script).
 */
function firstPostForm(html: string): { action: string; fields: Record<string, string> } | undefined {
  const form = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(html);
  if (!form || !/method="post"/i.test(form[1]!)) return undefined;
  const action = /action="([^"]*)"/i.exec(form[1]!)?.[1];
  if (action === undefined) return undefined;
  const fields: Record<string, string> = {};
  for (const input of form[2]!.matchAll(/<input\b[^>]*>/gi)) {
    const tag = input[0];
    const name = /name="([^"]*)"/.exec(tag)?.[1];
    if (!name || !/type="hidden"/i.test(tag)) continue;
    fields[name] = decodeEntities(/value="([^"]*)"/.exec(tag)?.[1] ?? '');
  }
  return { action: decodeEntities(action), fields };
}

function unexpected(res: Response, html: string, where: string): TestbedError {
  return new TestbedError(TestbedErrorCode.LOGIN_FLOW_FAILED, `${where}: unexpected ${res.status} from ${res.url || 'provider'}: ${html.slice(0, 300)}`, {
    details: { status: res.status },
  });
}

/**
 * Opens `authorizationUrl`, signs in on the provider's login page and lets consent happen, following redirects
 * until one leaves the provider's origin. Returns that redirect (the client's redirect_uri with `code` or
 * `error`) WITHOUT fetching it: the caller decides whether to deliver it to the gateway's callback.
 */
export async function signInAtProvider(authorizationUrl: string | URL, credentials: Credentials, jar = new CookieJar()): Promise<URL> {
  const origin = new URL(authorizationUrl).origin;
  let res = await browse(jar, new URL(authorizationUrl));
  let submitted = false;
  for (let hop = 0; hop < MAX_HOPS; hop++) {
    if (res.status >= 300 && res.status < 400) {
      const location = new URL(res.headers.get('location') ?? '', res.url || origin);
      if (location.origin !== origin) return location;
      res = await browse(jar, location);
      continue;
    }
    const html = await res.text();
    const action = loginFormAction(html);
    if (res.status === 200 && action) {
      if (submitted && html.includes(LOGIN_REJECTED_MARKER)) {
        throw new TestbedError(TestbedErrorCode.LOGIN_FLOW_FAILED, `the provider refused the password of ${credentials.login}`, {
          details: { reason: 'invalid_login' },
        });
      }
      submitted = true;
      res = await browse(jar, new URL(action, origin), postForm({ login: credentials.login, password: credentials.password }));
      continue;
    }
    throw unexpected(res, html, 'sign-in');
  }
  throw new TestbedError(TestbedErrorCode.LOGIN_FLOW_FAILED, `sign-in: more than ${MAX_HOPS} hops`);
}

/**
 * The person's side of the device flow: opens `verification_uri_complete`, confirms the code, signs in.
 * Resolves when the provider shows its success page.
 */
export async function approveDeviceAtProvider(verificationUriComplete: string, credentials: Credentials, jar = new CookieJar()): Promise<void> {
  const origin = new URL(verificationUriComplete).origin;
  let res = await browse(jar, new URL(verificationUriComplete));
  for (let hop = 0; hop < MAX_HOPS; hop++) {
    if (res.status >= 300 && res.status < 400) {
      res = await browse(jar, new URL(res.headers.get('location') ?? '', origin));
      continue;
    }
    const html = await res.text();
    if (html.includes('data-testbed="device-success"')) return;
    const loginAction = loginFormAction(html);
    const form = loginAction ? undefined : firstPostForm(html);
    if (loginAction && !html.includes(LOGIN_REJECTED_MARKER)) {
      res = await browse(jar, new URL(loginAction, origin), postForm({ login: credentials.login, password: credentials.password }));
    } else if (form) {
      res = await browse(jar, new URL(form.action, origin), postForm(form.fields));
    } else {
      throw unexpected(res, html, 'device approval');
    }
  }
  throw new TestbedError(TestbedErrorCode.LOGIN_FLOW_FAILED, `device approval: more than ${MAX_HOPS} hops`);
}

export interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in: number;
  scope?: string;
  refresh_token?: string;
  id_token?: string;
  [extra: string]: unknown;
}

export interface TokenEndpointReply {
  status: number;
  body: Record<string, unknown>;
}

/** POSTs a token request with client_secret_basic and returns status and JSON body as they came (no throwing). */
export async function postTokenRequest(
  tokenUrl: string,
  client: Pick<TestClient, 'clientId' | 'clientSecret'>,
  params: Record<string, string>,
): Promise<TokenEndpointReply> {
  const basic = Buffer.from(`${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`).toString('base64');
  const res = await fetch(tokenUrl, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams(params),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Like postTokenRequest, but a non-2xx reply throws (TESTBED_TOKEN_REQUEST_FAILED with the body in details). */
export async function requestTokens(tokenUrl: string, client: Pick<TestClient, 'clientId' | 'clientSecret'>, params: Record<string, string>): Promise<TokenResponse> {
  const reply = await postTokenRequest(tokenUrl, client, params);
  if (reply.status !== 200) {
    throw new TestbedError(TestbedErrorCode.TOKEN_REQUEST_FAILED, `${tokenUrl} answered ${reply.status}: ${JSON.stringify(reply.body)}`, {
      details: { status: reply.status, body: reply.body },
    });
  }
  return reply.body as TokenResponse;
}

export interface LayoutEndpoints {
  authorizationUrl: string;
  tokenUrl: string;
  /** What a client of this layout sends: scope and the extra parameters that make the provider issue a refresh token. */
  defaultScope: string;
  extraParams: Record<string, string>;
}

export function layoutEndpoints(auth: AuthServer, layout: Layout): LayoutEndpoints {
  switch (layout) {
    case 'microsoft': {
      const s = auth.microsoft.scopes;
      return {
        ...auth.microsoft,
        defaultScope: `openid profile email offline_access ${s.imap} ${s.pop3} ${s.smtp}`,
        extraParams: { prompt: 'select_account' },
      };
    }
    case 'google':
      return { ...auth.google, defaultScope: `openid email ${auth.google.scope}`, extraParams: { access_type: 'offline', prompt: 'consent' } };
    case 'generic':
      return {
        authorizationUrl: auth.authorizationUrl,
        tokenUrl: auth.tokenUrl,
        defaultScope: 'openid email offline_access imap pop smtp',
        extraParams: { prompt: 'consent' },
      };
  }
}

export interface ObtainTokensOptions {
  user: TestUser | Credentials;
  /** Default: the layout's mail scopes with offline access (see layoutEndpoints). */
  scope?: string;
  /** Default `microsoft`. */
  layout?: Layout;
  /** Default: auth.testClient. Its first redirect URI is used. */
  client?: TestClient;
}

/** The authorization-code flow with PKCE (S256) through the real login page, then the code exchange. */
export async function obtainTokens(auth: AuthServer, options: ObtainTokensOptions): Promise<TokenResponse> {
  const layout = layoutEndpoints(auth, options.layout ?? 'microsoft');
  const client = options.client ?? auth.testClient;
  const credentials = 'login' in options.user ? options.user : { login: options.user.email, password: options.user.password };
  const verifier = randomBytes(32).toString('base64url');
  const state = randomBytes(12).toString('base64url');
  const url = new URL(layout.authorizationUrl);
  url.search = new URLSearchParams({
    client_id: client.clientId,
    response_type: 'code',
    redirect_uri: client.redirectUri,
    scope: options.scope ?? layout.defaultScope,
    state,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    ...layout.extraParams,
  }).toString();

  const callback = await signInAtProvider(url, credentials);
  const code = callback.searchParams.get('code');
  if (callback.searchParams.get('state') !== state || !code) {
    throw new TestbedError(TestbedErrorCode.LOGIN_FLOW_FAILED, `authorization did not return a code: ${callback.search}`, {
      details: { error: callback.searchParams.get('error') },
    });
  }
  return requestTokens(layout.tokenUrl, client, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: client.redirectUri,
    code_verifier: verifier,
  });
}
