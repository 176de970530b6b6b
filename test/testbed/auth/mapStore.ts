// oidc-provider storage in plain Maps, one store per auth server, plus the registry of test clients.
// Why not the built-in memory adapter: it is an LRU of about 1,000 entries and silently drops grants under load.
import type { Adapter, AdapterPayload, KoaContext } from 'oidc-provider';

interface Entry {
  payload: AdapterPayload;
  /** epoch ms; undefined = no expiry */
  expiresAt: number | undefined;
}

/** How a client may authenticate at the token endpoint. `any` = both Basic and form-body secrets, like Entra ID and Google. */
export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'any' | 'none';

export interface ClientRecord {
  metadata: Record<string, unknown>;
  /** private_key_jwt: clients registered with a certificate (`addCertificateClient`), never through `addClient`. */
  authMethod: ClientAuthMethod | 'private_key_jwt';
}

const GRANT_BOUND_MODELS = ['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest'];

export class MapStore {
  private readonly models = new Map<string, Map<string, Entry>>();
  readonly clients = new Map<string, ClientRecord>();

  /** `currentRequest` is oidc-provider's `Provider.ctx` (the request being served), read lazily. */
  constructor(private readonly currentRequest: () => KoaContext | undefined) {}

  private model(name: string): Map<string, Entry> {
    let entries = this.models.get(name);
    if (!entries) this.models.set(name, (entries = new Map()));
    return entries;
  }

  private live(name: string, id: string): AdapterPayload | undefined {
    const entries = this.model(name);
    const entry = entries.get(id);
    if (!entry) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      entries.delete(id);
      return undefined;
    }
    return entry.payload;
  }

  /** Every live payload of a model (e.g. all Grants), for the harness's own admin actions. */
  *list(name: string): Iterable<[string, AdapterPayload]> {
    for (const id of [...this.model(name).keys()]) {
      const payload = this.live(name, id);
      if (payload) yield [id, payload];
    }
  }

  /** Deletes the grant and every token issued under it: what a user revoking consent does. */
  revokeGrant(grantId: string): void {
    for (const name of GRANT_BOUND_MODELS) {
      const entries = this.model(name);
      for (const [id, entry] of entries) if (entry.payload.grantId === grantId) entries.delete(id);
    }
    this.model('Grant').delete(grantId);
  }

  adapterFor(name: string): Adapter {
    const store = this;
    const entries = this.model(name);
    return {
      async upsert(id, payload, expiresIn) {
        entries.set(id, { payload, expiresAt: typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : undefined });
      },
      async find(id) {
        if (name === 'Client') return store.clientMetadataForCurrentRequest(id);
        return store.live(name, id);
      },
      async findByUserCode(userCode) {
        for (const [, payload] of store.list(name)) if (payload.userCode === userCode) return payload;
        return undefined;
      },
      async findByUid(uid) {
        for (const [, payload] of store.list(name)) if (payload.uid === uid) return payload;
        return undefined;
      },
      async consume(id) {
        const payload = store.live(name, id);
        if (payload) payload.consumed = Math.floor(Date.now() / 1000);
      },
      async destroy(id) {
        entries.delete(id);
      },
      async revokeByGrantId(grantId) {
        for (const [id, entry] of entries) if (entry.payload.grantId === grantId) entries.delete(id);
      },
    };
  }

  /**
   * oidc-provider allows exactly one token_endpoint_auth_method per client, while Entra ID and Google accept the
   * secret either as HTTP Basic or in the form body. For `any`, pick the method the current request actually uses.
   */
  private clientMetadataForCurrentRequest(clientId: string): AdapterPayload | undefined {
    const record = this.clients.get(clientId);
    if (!record) return undefined;
    let method: string = record.authMethod;
    if (method === 'any') {
      const authorization = this.currentRequest()?.get('authorization') ?? '';
      method = /^basic /i.test(authorization) ? 'client_secret_basic' : 'client_secret_post';
    }
    return { ...record.metadata, token_endpoint_auth_method: method };
  }
}
