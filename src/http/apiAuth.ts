// Guards API routes with an API key: `Authorization: Bearer <key>`, 401 without a valid key, 403 without the scope.
import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
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

/**
 * A preHandler that admits only a valid, unrevoked API key holding `scope` (see `allows`).
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3 (WWW-Authenticate and its error codes)
 */
export function requireScope(apiKeys: ApiKeyService, scope: RequiredScope): preHandlerAsyncHookHandler {
  const scopeOf = typeof scope === 'function' ? scope : () => scope;
  return async function apiKeyGuard(request: FastifyRequest, reply: FastifyReply) {
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
      return deny(reply, 403, `Bearer realm="mailgate", error="insufficient_scope", scope="${required.replace(/["\\]/g, '')}"`, ErrorCode.FORBIDDEN, `this API key lacks the scope ${JSON.stringify(required)}`);
    }
    principals.set(request, principal);
  };
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
