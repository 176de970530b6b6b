// What an API key may do: the scope grammar (admin, send, metrics, token:<credential>, token:*) and the one rule that checks it.

/**
 * - `admin`: everything, including managing API keys, credentials and servers.
 * - `send`: submit messages (`POST /api/v1/messages`) and read their status; `send:<sender>` the same, through
 *   that sender only (a key may hold several).
 * - `metrics`: read `GET /metrics` (for a Prometheus scraper's bearer token).
 * - `token:<credential>`: fetch that credential's access token; `token:*` for every credential.
 */
export type Scope = 'admin' | 'send' | 'metrics' | `send:${string}` | `token:${string}`;

/**
 * Names of API keys and credentials (the same rule as src/credentials/input.ts): safe in URLs, shell arguments
 * and log lines without quoting; the first character is never "-", so a name is never taken for a CLI option.
 */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** Every credential, present and future; only meaningful after `token:`. */
export const ANY_CREDENTIAL = '*';

export const SCOPE_HINT = '"admin", "send", "send:<sender>", "metrics", "token:<credential>" or "token:*"';

export function isScope(value: string): value is Scope {
  if (value === 'admin' || value === 'send' || value === 'metrics') return true;
  if (value.startsWith('send:')) return NAME_PATTERN.test(value.slice('send:'.length));
  if (!value.startsWith('token:')) return false;
  const credential = value.slice('token:'.length);
  return credential === ANY_CREDENTIAL || NAME_PATTERN.test(credential);
}

/** Whoever presented a valid API key: handlers read it to know who called. */
export interface ApiKeyPrincipal {
  readonly id: string;
  readonly name: string;
  readonly scopes: readonly Scope[];
}

/**
 * True when `principal` may do what `requiredScope` guards: its exact scope, `admin`, `token:*` for any `token:…`,
 * and `send` for any `send:<sender>`. A `send:<sender>` key passes the `send` routes; which sender it may use is
 * checked on the message (`sendersAllowed`).
 */
export function allows(principal: Pick<ApiKeyPrincipal, 'scopes'>, requiredScope: string): boolean {
  return principal.scopes.some(
    (held) =>
      held === 'admin' ||
      held === requiredScope ||
      (held === `token:${ANY_CREDENTIAL}` && requiredScope.startsWith('token:')) ||
      (held === 'send' && requiredScope.startsWith('send:')) ||
      (requiredScope === 'send' && held.startsWith('send:')),
  );
}

/** The senders a key may send through: undefined for every one (`send`, `admin`), else the names of its `send:<sender>` scopes. */
export function sendersAllowed(principal: Pick<ApiKeyPrincipal, 'scopes'>): string[] | undefined {
  if (principal.scopes.some((held) => held === 'admin' || held === 'send')) return undefined;
  return principal.scopes.filter((held) => held.startsWith('send:')).map((held) => held.slice('send:'.length));
}
