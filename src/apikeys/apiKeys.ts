// The API key service: create (the plain key leaves once), verify a presented key, list, revoke — over the api_keys table.
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { ErrorCode, MailgateError } from '../errors.js';
import { Secret } from '../secrets/secret.js';
import type { Store } from '../store/store.js';
import type { ApiKeysTable } from '../store/tables.js';
import { generateApiKey, hashApiKey, looksLikeApiKey } from './keyMaterial.js';
import { NAME_PATTERN, SCOPE_HINT, isScope, type ApiKeyPrincipal, type Scope } from './scopes.js';

export { allows, type ApiKeyPrincipal, type Scope } from './scopes.js';

/** What `create` accepts, from the CLI and the HTTP API alike; problems name the field and the fix. */
export const apiKeyInputSchema = z.strictObject(
  {
    name: z
      .string({ error: 'expected a name' })
      .regex(NAME_PATTERN, { error: 'expected 1-100 letters, digits, ".", "_" or "-" starting with a letter or digit, e.g. "alarm-system"' }),
    scopes: z
      .array(z.string({ error: `expected a scope: ${SCOPE_HINT}` }).refine(isScope, { error: `expected ${SCOPE_HINT}` }), {
        error: 'expected a list of scopes, e.g. ["send"]',
      })
      .min(1, { error: `expected at least one scope: ${SCOPE_HINT}` }),
  },
  { error: 'expected a JSON object { "name": …, "scopes": [ … ] }' },
);

export type ApiKeyInput = { name: string; scopes: Scope[] };

/** An API key as it may be shown anywhere: never the key, never its hash. */
export interface ApiKeyInfo {
  id: string;
  name: string;
  scopes: Scope[];
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

/** The answer to `create`: the only time the plain key exists outside the caller's hands. */
export interface CreatedApiKey {
  id: string;
  name: string;
  scopes: Scope[];
  createdAt: string;
  /** Shown to the operator once; Mailgate keeps only its SHA-256. */
  key: Secret;
}

export interface ApiKeyService {
  /** Throws INPUT_INVALID for a bad name or scope, ALREADY_EXISTS when an active key has the name. */
  create(name: string, scopes: readonly string[]): Promise<CreatedApiKey>;
  /** The principal for a valid, unrevoked key; undefined for anything else (never says why, to the caller). */
  verify(presentedKey: string): Promise<ApiKeyPrincipal | undefined>;
  /** Every key, revoked ones included (with `revokedAt`), by name. */
  list(): Promise<ApiKeyInfo[]>;
  /** Revokes the key with this name; revoking a revoked key changes nothing. Throws NOT_FOUND for an unknown name. */
  revoke(name: string): Promise<ApiKeyInfo>;
}

export interface ApiKeyServiceOptions {
  /** The clock, so tests can step over the last-used throttle. */
  now?: () => Date;
  /**
   * How long a verified key is trusted without asking the database again (default 1 s). Revocation in this
   * process takes effect at once; in another process sharing the database, within this time.
   */
  cacheMs?: number;
}

/** `last_used_at` is for the operator ("is this key still in use?"): minute precision spares a write per request. */
const LAST_USED_RESOLUTION_MS = 60_000;

/** Validates untrusted input for `create`: one INPUT_INVALID naming every wrong field. */
export function parseApiKeyInput(input: unknown): ApiKeyInput {
  const parsed = apiKeyInputSchema.safeParse(input, { reportInput: true });
  if (parsed.success) return { name: parsed.data.name, scopes: dedupe(parsed.data.scopes as Scope[]) };
  const problems = parsed.error.issues.map(describeIssue);
  throw new MailgateError(ErrorCode.INPUT_INVALID, problems.join('; '), { details: { problems } });
}

export function createApiKeyService(store: Store, options: ApiKeyServiceOptions = {}): ApiKeyService {
  const db = store.db;
  const now = options.now ?? (() => new Date());
  const cacheMs = options.cacheMs ?? 1000;
  // Keyed by the key's hash, never the key itself. Bounded: a flood of distinct valid keys cannot grow it forever.
  const verified = new Map<string, { principal: ApiKeyPrincipal; until: number }>();

  return {
    async create(name, scopes) {
      const input = parseApiKeyInput({ name, scopes });
      const key = generateApiKey();
      const row: ApiKeysTable = {
        id: randomUUID(),
        name: input.name,
        key_hash: hashApiKey(key),
        scopes: JSON.stringify(input.scopes),
        created_at: now().toISOString(),
        last_used_at: null,
        revoked_at: null,
      };
      // A revoked key gives its name up to the next key; the name column is unique, so its row must go.
      await db.deleteFrom('api_keys').where('name', '=', input.name).where('revoked_at', 'is not', null).execute();
      try {
        await db.insertInto('api_keys').values(row).execute();
      } catch (cause) {
        // The unique constraint, not a prior select, decides: two concurrent creates cannot both win.
        if (!isUniqueViolation(cause)) throw cause;
        throw new MailgateError(
          ErrorCode.ALREADY_EXISTS,
          `an API key named "${input.name}" exists already: choose another name, or revoke it first (mailgate apikey revoke ${input.name})`,
          { cause, details: { name: input.name } },
        );
      }
      return { id: row.id, name: row.name, scopes: input.scopes, createdAt: row.created_at, key: new Secret(key) };
    },

    async verify(presentedKey) {
      if (!looksLikeApiKey(presentedKey)) return undefined;
      // Looking up by hash needs no constant-time compare: a timing difference could only tell an attacker
      // about the SHA-256 of a guess, which says nothing about any real key.
      const hash = hashApiKey(presentedKey);
      const cached = verified.get(hash);
      if (cached && cached.until > now().getTime()) return cached.principal;
      const row = await db.selectFrom('api_keys').selectAll().where('key_hash', '=', hash).executeTakeFirst();
      if (row === undefined || row.revoked_at !== null) {
        verified.delete(hash);
        return undefined;
      }

      const at = now();
      const staleBefore = new Date(at.getTime() - LAST_USED_RESOLUTION_MS).toISOString();
      if (row.last_used_at === null || row.last_used_at < staleBefore) {
        // The same condition in the update keeps concurrent requests (and instances) to one write per minute.
        await db
          .updateTable('api_keys')
          .set({ last_used_at: at.toISOString() })
          .where('id', '=', row.id)
          .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', staleBefore)]))
          .execute();
      }
      const principal: ApiKeyPrincipal = { id: row.id, name: row.name, scopes: readScopes(row.scopes) };
      if (verified.size >= 1000) verified.clear();
      verified.set(hash, { principal, until: at.getTime() + cacheMs });
      return principal;
    },

    async list() {
      const rows = await db.selectFrom('api_keys').selectAll().orderBy('name').execute();
      return rows.map(toInfo);
    },

    async revoke(name) {
      verified.clear();
      await db.updateTable('api_keys').set({ revoked_at: now().toISOString() }).where('name', '=', name).where('revoked_at', 'is', null).execute();
      const row = await db.selectFrom('api_keys').selectAll().where('name', '=', name).executeTakeFirst();
      if (row === undefined) {
        throw new MailgateError(ErrorCode.NOT_FOUND, `no API key named ${JSON.stringify(name)} (see \`mailgate apikey list\`)`, { details: { name } });
      }
      return toInfo(row);
    },
  };
}

function toInfo(row: ApiKeysTable): ApiKeyInfo {
  return {
    id: row.id,
    name: row.name,
    scopes: readScopes(row.scopes),
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
  };
}

/** A scope this build does not know (written by a newer one) grants nothing rather than failing every request. */
function readScopes(text: string): Scope[] {
  const value: unknown = JSON.parse(text);
  return Array.isArray(value) ? value.filter((s): s is Scope => typeof s === 'string' && isScope(s)) : [];
}

function dedupe(scopes: Scope[]): Scope[] {
  return [...new Set(scopes)];
}

/** better-sqlite3 says SQLITE_CONSTRAINT_UNIQUE; PostgreSQL says 23505 (unique_violation). */
function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === '23505';
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const field = issue.path.reduce<string>((acc, part) => (typeof part === 'number' ? `${acc}[${part}]` : acc ? `${acc}.${String(part)}` : String(part)), '');
  if (issue.code === 'unrecognized_keys') return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')} (expected "name" and "scopes")`;
  return `${field || 'body'}: ${issue.message}, got ${renderInput(issue.input)}`;
}

function renderInput(input: unknown): string {
  if (input === undefined) return 'nothing';
  const text = JSON.stringify(input);
  if (text === undefined) return String(input);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
