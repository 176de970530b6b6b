// The slice of oidc-provider 9's API the test bed uses (the package ships no types and @types is not installed).
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  /** Koa's context as oidc-provider hands it to middleware and configuration functions. */
  export interface KoaContext {
    method: string;
    path: string;
    querystring: string;
    query: Record<string, string | string[] | undefined>;
    status: number;
    body: unknown;
    type: string;
    state: Record<string, unknown>;
    req: IncomingMessage;
    get(header: string): string;
    set(header: string, value: string): void;
    /** Koa's content-type check: the matching type, or false. */
    is(...types: string[]): string | false | null;
    oidc?: {
      route?: string;
      params?: Record<string, unknown>;
      client?: OidcClient;
    };
  }
  export type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;

  export interface OidcClient {
    clientId: string;
    grantTypeAllowed(grantType: string): boolean;
  }

  export type AdapterPayload = Record<string, unknown> & {
    grantId?: string;
    userCode?: string;
    uid?: string;
    accountId?: string;
    consumed?: number;
  };

  export interface Adapter {
    upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void>;
    find(id: string): Promise<AdapterPayload | undefined>;
    findByUserCode(userCode: string): Promise<AdapterPayload | undefined>;
    findByUid(uid: string): Promise<AdapterPayload | undefined>;
    consume(id: string): Promise<void>;
    destroy(id: string): Promise<void>;
    revokeByGrantId(grantId: string): Promise<void>;
  }

  export interface InteractionDetails {
    uid: string;
    prompt: { name: string; details: Record<string, unknown> };
    params: Record<string, unknown>;
    session?: { accountId: string };
    grantId?: string;
  }

  export interface Grant {
    addOIDCScope(scope: string): void;
    addOIDCClaims(claims: string[]): void;
    addResourceScope(resource: string, scope: string): void;
    save(): Promise<string>;
  }

  export interface StoredToken {
    grantId?: string;
    accountId?: string;
    clientId?: string;
  }

  interface TokenModel {
    find(value: string, options?: { ignoreExpiration?: boolean }): Promise<StoredToken | undefined>;
  }

  export interface AccessTokenInstance {
    resourceServer: ResourceServer;
    /** Lifetime in seconds (from the `ttl.AccessToken` configuration). */
    readonly expiration: number;
    save(): Promise<string>;
  }

  export interface ResourceServer {
    identifier(): string;
  }

  export interface ResourceServerInfo {
    scope: string;
    audience: string;
    accessTokenFormat: 'opaque' | 'jwt';
    accessTokenTTL?: number;
  }

  export type Configuration = Record<string, unknown>;

  export default class Provider {
    constructor(issuer: string, configuration: Configuration);
    static readonly ctx: KoaContext | undefined;
    readonly issuer: string;
    proxy: boolean;
    use(middleware: Middleware): this;
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    on(event: string, listener: (ctx: KoaContext, err: Error & { error_detail?: string }) => void): this;
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>;
    interactionFinished(
      req: IncomingMessage,
      res: ServerResponse,
      result: Record<string, unknown>,
      options?: { mergeWithLastSubmission?: boolean },
    ): Promise<void>;
    readonly Grant: { new (init: { accountId: string; clientId: string }): Grant; find(id: string): Promise<Grant | undefined> };
    readonly AccessToken: TokenModel & {
      new (init: { accountId: string; client: OidcClient; grantId: string; gty: string; scope: string }): AccessTokenInstance;
    };
    readonly ResourceServer: new (identifier: string, info: ResourceServerInfo) => ResourceServer;
    /** A grant type of our own at the token endpoint; `params` are the body parameters it reads besides grant_type. */
    registerGrantType(name: string, handler: (ctx: KoaContext) => Promise<void>, params?: string | string[]): void;
    readonly RefreshToken: TokenModel;
  }

  export const errors: {
    InvalidTarget: new () => Error;
    /** invalid_client; the argument becomes error_detail (logged, not sent). */
    InvalidClientAuth: new (detail?: string) => Error;
    /** Any OAuth error code with the error_description given. */
    CustomOIDCProviderError: new (error: string, description?: string) => Error;
  };
}
