/**
 * Named API tokens with roles, kept in the state store: a token's secret is
 * `dbt_` and 32 random bytes (base64url), shown once when it is made; the
 * store keeps only its sha256. A hash is right here, not a password KDF: the
 * secret has 256 bits of entropy, so there is nothing to guess slowly.
 *
 * Lookups are cached for a short time (TOKEN_CACHE_MS) so that a read does
 * not cost a database round trip per request (`GET /api/plugins` is
 * benchmarked). A revoke through this object drops the cache entry, so it
 * takes effect at once on this node; a revoke made elsewhere (the CLI,
 * another node of a cluster) takes effect here when the entry runs out.
 */

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createError } from '../errors.ts';
import type { ApiTokenRecord, StateStore } from '../store/types.ts';
import { type Authenticate, type Principal, ROLES, type Role } from './auth.ts';
import { tokenMatches } from './token.ts';

/** Every named token starts with this, so a leaked one can be found in logs and by secret scanners. */
export const TOKEN_PREFIX = 'dbt_';
/** A token's name: lower-case letters, digits, `.`, `_` and `-`, up to 64. */
export const TOKEN_NAME_PATTERN = '^[a-z0-9][a-z0-9._-]{0,63}$';
/** How long a token found in the store is taken without asking the store again. */
export const TOKEN_CACHE_MS = 2000;
/** `lastUsedAt` is written at most this often per token: never a write per request. */
const TOUCH_EVERY_MS = 60_000;
/** The admin token's name in the audit log; no stored token may take it. */
const ADMIN_NAME = 'admin';

/** A token just made: the only time its secret is seen. */
export interface CreatedToken {
  name: string;
  role: Role;
  token: string;
}

const sha256 = (secret: string): string => createHash('sha256').update(secret).digest('hex');

/** Throws USAGE unless `name` and `role` are a token's. */
export function checkToken(name: string, role: string): asserts role is Role {
  if (!new RegExp(TOKEN_NAME_PATTERN).test(name)) {
    throw createError('USAGE', {
      message: `token name "${name}" must be 1-64 lower-case letters, digits, ".", "_" or "-", starting with a letter or digit`,
    });
  }
  if (!(ROLES as readonly string[]).includes(role)) {
    throw createError('USAGE', { message: `role "${role}" is not one of ${ROLES.join(', ')}` });
  }
}

/**
 * The named tokens: made, listed and revoked (each change audited), and
 * found by their secret.
 *
 * @example
 * const tokens = new ApiTokens(() => manager.store);
 * const { token } = await tokens.create('dashboard', 'viewer', 'cli:alice');
 * await tokens.authenticate(token); // { name: 'dashboard', role: 'viewer' }
 */
export class ApiTokens {
  readonly #store: () => StateStore;
  /** sha256 of a secret → who it names, until when. Only tokens that exist: a miss always asks the store. */
  readonly #cache = new Map<string, { principal: Principal; until: number; touched: number }>();
  /** Counts revokes: a lookup that was in flight across one never fills the cache. */
  #revokes = 0;
  readonly #onRevoke = new Set<(name: string) => void>();

  constructor(store: () => StateStore) {
    this.#store = store;
  }

  /** Makes a token; its secret is in the answer and nowhere else. */
  async create(name: string, role: string, actor: string): Promise<CreatedToken> {
    checkToken(name, role);
    if (name === ADMIN_NAME) throw createError('TOKEN_EXISTS', { name });
    const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
    const store = this.#store();
    await store.createToken({ name, role, hash: sha256(token), createdBy: actor });
    await store.appendAudit({ actor, action: 'token.create', target: name, result: 'ok', details: { role } });
    return { name, role, token };
  }

  /** The tokens, never their secrets. */
  list(): Promise<ApiTokenRecord[]> {
    return this.#store().listTokens();
  }

  /** Revokes a token: from now on it names nobody. TOKEN_NOT_FOUND when unknown. */
  async revoke(name: string, actor: string): Promise<void> {
    const store = this.#store();
    if (!(await store.deleteToken(name))) throw createError('TOKEN_NOT_FOUND', { name });
    this.#revokes++;
    for (const [hash, entry] of this.#cache) if (entry.principal.name === name) this.#cache.delete(hash);
    // parallel: whatever the token holds open (an event stream) is ended before the answer
    for (const listener of this.#onRevoke) {
      try {
        listener(name);
      } catch {
        // a listener's failure must not undo a revoke
      }
    }
    await store.appendAudit({ actor, action: 'token.revoke', target: name, result: 'ok', details: null });
  }

  /** Calls `listener` with a token's name when it is revoked through this object; returns the unsubscribe. */
  onRevoke(listener: (name: string) => void): () => void {
    this.#onRevoke.add(listener);
    return () => this.#onRevoke.delete(listener);
  }

  /** Who a `dbt_` secret names, or null. */
  async authenticate(secret: string): Promise<Principal | null> {
    if (!secret.startsWith(TOKEN_PREFIX)) return null;
    const hash = sha256(secret);
    const now = Date.now();
    const cached = this.#cache.get(hash);
    if (cached && cached.until > now) return cached.principal;
    const store = this.#store();
    const revokes = this.#revokes;
    let row: Awaited<ReturnType<StateStore['findTokenByHash']>>;
    try {
      row = await store.findTokenByHash(hash);
    } catch (err) {
      // while the store is away no one can revoke through it: a token known a moment ago still names its holder
      if (cached) return cached.principal;
      throw err;
    }
    // the row was found by this hash; comparing again in constant time costs nothing and hides nothing
    if (!row || !timingSafeEqual(Buffer.from(row.hash, 'hex'), Buffer.from(hash, 'hex'))) {
      this.#cache.delete(hash);
      return null;
    }
    const principal: Principal = { name: row.name, role: row.role };
    const lastUsed = Math.max(cached?.touched ?? 0, row.lastUsedAt ? Date.parse(row.lastUsedAt) : 0);
    let touched = lastUsed;
    if (now - lastUsed > TOUCH_EVERY_MS) {
      touched = now;
      void store.touchToken(row.name, new Date(now).toISOString()).catch(() => {});
    }
    // a revoke while the store answered may have deleted this very row: ask again rather than cache a stale yes
    if (revokes !== this.#revokes) return this.authenticate(secret);
    this.#cache.set(hash, { principal, until: now + TOKEN_CACHE_MS, touched });
    return principal;
  }
}

/**
 * The server's authenticator: the admin token (`DATABRIDGE_TOKEN` or
 * `<data dir>/admin.token`, named `admin`) or a named token from the store.
 */
export function tokenAuthenticator(adminToken: string, tokens: ApiTokens): Authenticate {
  const admin: Principal = { name: ADMIN_NAME, role: 'admin' };
  return (secret) => (tokenMatches(secret, adminToken) ? admin : tokens.authenticate(secret));
}
