// Guards API routes with an API key: `Authorization: Bearer <key>`, 401 without a valid key, 403 without the scope.
import type { FastifyReply, FastifyRequest, onRequestHookHandler, preHandlerAsyncHookHandler, RouteOptions } from 'fastify';
import { allows, type ApiKeyPrincipal, type ApiKeyService } from '../apikeys/apiKeys.js';
import { ErrorCode } from '../errors.js';

/** The scope a route requires, fixed or derived from the request (e.g. `token:${params.name}`). */
export type RequiredScope = string | ((request: FastifyRequest) => string);

// A WeakMap instead of decorateRequest: the guard needs nothing registered on the app, and a request's entry goes with it.
const principals = new WeakMap<FastifyRequest, ApiKeyPrincipal>();

/** Who called: set by `requireScope` before the handler runs. Throws if the route is not guarded (a wiring bug). */
export function principalOf(request: FastifyRequest): ApiKeyPrincipal {
  const principal = principals.get(request);
  if (principal === undefined) throw new Error(`route ${request.method} ${request.routeOptions.url ?? request.url} reads the caller but is not guarded by requireScope`);
  return principal;
}

/** The caller, or undefined when the route is not guarded. */
export function findPrincipal(request: FastifyRequest): ApiKeyPrincipal | undefined {
  return principals.get(request);
}

/** Marks the guards `requireScope` makes, so that `guardBeforeBody` can find them among a route's handlers. */
const API_KEY_GUARD = Symbol('mailgate.apiKeyGuard');

/**
 * A guard that admits only a valid, unrevoked API key holding `scope` (see `allows`). Routes list it as their
 * preHandler; `guardBeforeBody` (an onRoute hook) moves it to onRequest, so it runs before the body is read: the scope
 * function sees the URL's params, query and headers, never the body.
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3 (WWW-Authenticate and its error codes)
 */
export function requireScope(apiKeys: ApiKeyService, scope: RequiredScope): preHandlerAsyncHookHandler {
  const scopeOf = typeof scope === 'function' ? scope : () => scope;
  return Object.assign(async function apiKeyGuard(request: FastifyRequest, reply: FastifyReply) {
    const presented = bearerToken(request.headers.authorization);
    if (presented === undefined) {
      // RFC 6750 §3.1: a request with no credentials gets the challenge without an error code.
      return deny(reply, 401, 'Bearer realm="mailgate"', ErrorCode.UNAUTHENTICATED, 'send an API key as "Authorization: Bearer <key>" (create one with `mailgate apikey create`)');
    }
    const principal = await apiKeys.verify(presented);
    if (principal === undefined) {
      // Never echo the presented key: it may be a real secret pasted in the wrong place.
      return deny(reply, 401, 'Bearer realm="mailgate", error="invalid_token"', ErrorCode.UNAUTHENTICATED, 'the API key is not valid (unknown or revoked): check it, or create a new one with `mailgate apikey create`');
    }
    const required = scopeOf(request);
    if (!allows(principal, required)) {
      return deny(reply, 403, `Bearer realm="mailgate", error="insufficient_scope", scope="${headerSafe(required)}"`, ErrorCode.FORBIDDEN, `this API key lacks the scope ${JSON.stringify(required)}`);
    }
    principals.set(request, principal);
  }, { [API_KEY_GUARD]: true });
}

/**
 * An onRoute hook: a route's API key guards run in onRequest instead of preHandler, so an unauthenticated (or
 * unauthorized) request is answered before its body is read. Without it a 30 MB POST to /api/v1/messages was read
 * and parsed whole before its 401 (four at once took the process to 435 MB).
 */
export function guardBeforeBody(route: RouteOptions): void {
  const preHandlers = handlersOf(route.preHandler);
  const guards = preHandlers.filter(isApiKeyGuard);
  if (guards.length === 0) return;
  route.preHandler = preHandlers.filter((handler) => !isApiKeyGuard(handler)) as typeof route.preHandler;
  // Same signature (request, reply) in both phases; the guards run first, before any other onRequest hook of the route.
  route.onRequest = [...(guards as unknown as onRequestHookHandler[]), ...handlersOf(route.onRequest)] as typeof route.onRequest;
}

function handlersOf<T>(hooks: T | T[] | undefined): T[] {
  return hooks === undefined ? [] : Array.isArray(hooks) ? hooks : [hooks];
}

function isApiKeyGuard(handler: unknown): boolean {
  return typeof handler === 'function' && (handler as { [API_KEY_GUARD]?: boolean })[API_KEY_GUARD] === true;
}

/**
 * A header value may hold visible ASCII only: a scope built from a path parameter (`token:a%00`, `token:%E2%82%AC`)
 * would otherwise make Node refuse the header and turn a 403 into a 500. Quotes and backslashes would end the string.
 */
function headerSafe(value: string): string {
  return value.replace(/[^\x20-\x7e]|["\\]/g, '');
}

/** The token of `Bearer <token>`; the scheme is case-insensitive (RFC 9110 §11.1). */
function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer +(\S+) *$/i.exec(header ?? '');
  return match?.[1];
}

// Answered here rather than thrown: the challenge header belongs with the status, and nothing went wrong on our side.
function deny(reply: FastifyReply, status: 401 | 403, challenge: string, code: typeof ErrorCode.UNAUTHENTICATED | typeof ErrorCode.FORBIDDEN, message: string): FastifyReply {
  return reply.status(status).header('www-authenticate', challenge).send({ error: { code, message } });
}
