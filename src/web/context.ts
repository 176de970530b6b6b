// What every web UI page handler gets: the services, the admin accounts and sessions, and the request's signed-in session.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../services.js';
import type { AdminAccounts } from './adminAccounts.js';
import type { LoginGuard } from '../accounts/loginGuard.js';
import type { Flash, Session, SessionStore } from './sessions.js';
import type { SafeHtml } from './html.js';

export interface WebContext {
  services: Services;
  accounts: AdminAccounts;
  sessions: SessionStore;
  /** Failed sign-ins: the same guard as the relay and proxies' logins, one per process. */
  throttle: LoginGuard;
  /** Cookies get Secure (and the __Host- prefix) when the public URL is https. */
  secureCookies: boolean;
  sessionCookie: string;
  /** Renders a full page (layout, banner, flash) for the signed-in request. */
  page(request: FastifyRequest, reply: FastifyReply, content: PageContent): Promise<FastifyReply>;
  /** Redirects (303) after a successful form post, with a message for the next page. */
  redirectWithFlash(request: FastifyRequest, reply: FastifyReply, to: string, flash: Flash): Promise<FastifyReply>;
}

export interface PageContent {
  title: string;
  /** The navigation entry to mark as current. */
  section: Section;
  body: SafeHtml;
  status?: number;
}

export type Section = 'overview' | 'credentials' | 'servers' | 'outbox' | 'inbound' | 'relay' | 'alerts' | 'apikeys' | 'audit' | 'account';

// A WeakMap keeps the session with its request without decorating fastify's types.
const sessions = new WeakMap<FastifyRequest, Session>();

export function attachSession(request: FastifyRequest, session: Session): void {
  sessions.set(request, session);
}

/** The signed-in session; throws on a route the session guard does not cover (a wiring bug). */
export function sessionOf(request: FastifyRequest): Session {
  const session = sessions.get(request);
  if (!session) throw new Error(`web route ${request.method} ${request.url} is not behind the session guard`);
  return session;
}

export function findSession(request: FastifyRequest): Session | undefined {
  return sessions.get(request);
}
