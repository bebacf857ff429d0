/**
 * The PostgreSQL state store (the `pg` package): the same state as the
 * SQLite store, shared by every node of a cluster, plus what the cluster
 * shares beyond it (bundles, change notifications, membership). One
 * transaction per change; a server that goes away turns calls into
 * STORE_UNAVAILABLE, and the pool reconnects when it is back.
 */

import pg from 'pg';
import semver from 'semver';
import { backoffMs } from '../deadline.ts';
import { createError, isDataBridgeError } from '../errors.ts';
import type { ResourceLimits } from '../sandbox/limits.ts';
import { CHANNEL, POSTGRES_MIGRATIONS } from './postgres-migrations.ts';
import {
  patchedNamespace,
  patchedPluginState,
  type Row,
  toApiToken,
  toAudit,
  toInstall,
  toNamespace,
  toPluginState,
  toRevoked,
  toTrustedKey,
} from './rows.ts';
import type {
  ApiTokenRecord,
  AuditEntry,
  AuditInput,
  AuditQuery,
  BundleRecord,
  ClusterBackend,
  ClusterEvent,
  InstallInput,
  InstallRecord,
  NamespaceRecord,
  NodeRecord,
  PluginStatePatch,
  PluginStateRecord,
  RevokedRelease,
  StateStore,
  TokenRole,
  TrustedKey,
} from './types.ts';

export interface PostgresStoreOptions {
  /** `postgres://user:password@host:port/database` */
  url: string;
}

/** A migration lock id of our own ("DBrg"), so nodes starting together migrate once. */
const MIGRATION_LOCK = 0x44427267;

/** The address without its password, for messages and logs. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparsable address)';
  }
}

/** Whether an error means the server is not there (down, unreachable, restarting), not that the query was wrong. */
function isConnectionError(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  const code = e.code ?? '';
  return (
    code.startsWith('08') ||
    code.startsWith('57P') ||
    /^E(CONNREFUSED|CONNRESET|PIPE|TIMEDOUT|HOSTUNREACH|NOTFOUND|AI_AGAIN)$/.test(code) ||
    /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable/i.test(
      e.message ?? '',
    )
  );
}

/**
 * Opens (creating the tables or migrating as needed) the PostgreSQL store.
 * Throws STORE_UNAVAILABLE when the server does not answer.
 *
 * @example
 * const store = await openPostgresStore({ url: 'postgres://databridge@127.0.0.1/databridge' });
 */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<StateStore> {
  const store = new PostgresStore(options.url);
  try {
    await store.migrate();
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}

/** @internal use `openPostgresStore` */
export class PostgresStore implements StateStore, ClusterBackend {
  readonly kind = 'postgres' as const;
  readonly location: string;
  readonly cluster: ClusterBackend = this;
  readonly #url: string;
  readonly #pool: pg.Pool;
  #closed = false;
  readonly #listeners = new Set<() => Promise<void>>();

  constructor(url: string) {
    this.#url = url;
    this.location = redact(url);
    this.#pool = new pg.Pool({
      connectionString: url,
      max: 6,
      connectionTimeoutMillis: 5000,
      idleTimeoutMillis: 10_000,
    });
    // an idle client whose server went away: the next query reconnects
    this.#pool.on('error', () => {});
  }

  async migrate(): Promise<void> {
    await this.#tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await c.query('CREATE TABLE IF NOT EXISTS databridge_schema (version INTEGER NOT NULL)');
      const r = await c.query('SELECT version FROM databridge_schema');
      let version = r.rows.length ? Number(r.rows[0].version) : 0;
      if (!r.rows.length) await c.query('INSERT INTO databridge_schema (version) VALUES (0)');
      if (version > POSTGRES_MIGRATIONS.length) {
        throw createError('STORE_TOO_NEW', { file: this.location, version, known: POSTGRES_MIGRATIONS.length });
      }
      for (; version < POSTGRES_MIGRATIONS.length; version++) await c.query(POSTGRES_MIGRATIONS[version]!);
      await c.query('UPDATE databridge_schema SET version = $1', [version]);
    });
  }

  async #query(sql: string, args: unknown[] = []): Promise<Row[]> {
    try {
      return (await this.#pool.query(sql, args)).rows as Row[];
    } catch (err) {
      throw this.#error(err);
    }
  }

  async #tx<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (err) {
      throw this.#error(err);
    }
    try {
      await client.query('BEGIN');
      const out = await fn(client);
      await client.query('COMMIT');
      return out;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw this.#error(err);
    } finally {
      client.release();
    }
  }

  #error(err: unknown): Error {
    if (isDataBridgeError(err)) return err;
    if (this.#closed)
      return createError('STORE_UNAVAILABLE', { location: this.location, reason: 'the store is closed' });
    if (isConnectionError(err)) {
      return createError(
        'STORE_UNAVAILABLE',
        { location: this.location, reason: (err as Error).message || String((err as { code?: string }).code) },
        { cause: err },
      );
    }
    return err as Error;
  }

  async ping(): Promise<void> {
    await this.#query('SELECT 1');
  }

  async getPluginState(id: string): Promise<PluginStateRecord | undefined> {
    const [row] = await this.#query('SELECT * FROM plugin_state WHERE id = $1', [id]);
    return row ? toPluginState(row) : undefined;
  }

  async listPluginStates(): Promise<PluginStateRecord[]> {
    return (await this.#query('SELECT * FROM plugin_state ORDER BY id')).map(toPluginState);
  }

  async savePluginState(id: string, patch: PluginStatePatch): Promise<PluginStateRecord> {
    return this.#tx(async (c) => {
      const old = (await c.query('SELECT * FROM plugin_state WHERE id = $1 FOR UPDATE', [id])).rows[0] as
        | Row
        | undefined;
      const current = old ? toPluginState(old) : undefined;
      const next = patchedPluginState(id, current, patch);
      await c.query(
        `INSERT INTO plugin_state (id, enabled, version, highest_version, highest_digest, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO UPDATE SET enabled = excluded.enabled, version = excluded.version,
           highest_version = excluded.highest_version, highest_digest = excluded.highest_digest,
           updated_at = excluded.updated_at`,
        [id, next.enabled, next.version, next.highestVersion, next.highestDigest, next.updatedAt],
      );
      return next;
    });
  }

  async deletePluginState(id: string): Promise<void> {
    await this.#query('DELETE FROM plugin_state WHERE id = $1', [id]);
  }

  async recordInstall(record: InstallInput): Promise<InstallRecord> {
    const at = new Date().toISOString();
    const [row] = await this.#query(
      'INSERT INTO install_history (plugin_id, version, digest, action, actor, at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq',
      [record.pluginId, record.version, record.digest, record.action, record.actor, at],
    );
    return { ...record, seq: Number(row!.seq), at };
  }

  async installHistory(pluginId?: string): Promise<InstallRecord[]> {
    const rows =
      pluginId === undefined
        ? await this.#query('SELECT * FROM install_history ORDER BY seq')
        : await this.#query('SELECT * FROM install_history WHERE plugin_id = $1 ORDER BY seq', [pluginId]);
    return rows.map(toInstall);
  }

  async appendAudit(entry: AuditInput): Promise<AuditEntry> {
    const at = entry.at ?? new Date().toISOString();
    const details = entry.details === undefined ? null : JSON.stringify(entry.details);
    const [row] = await this.#query(
      'INSERT INTO audit_log (at, actor, action, target, result, details) VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq',
      [at, entry.actor, entry.action, entry.target, entry.result, details],
    );
    return { ...entry, details: entry.details ?? null, at, seq: Number(row!.seq) };
  }

  async listAudit(query: AuditQuery = {}): Promise<AuditEntry[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    const add = (clause: string, value: unknown) => {
      args.push(value);
      where.push(clause.replace('?', `$${args.length}`));
    };
    if (query.target !== undefined) add('target = ?', query.target);
    if (query.action !== undefined) add('action = ?', query.action);
    if (query.before !== undefined) add('seq < ?', query.before);
    args.push(Math.max(1, Math.min(query.limit ?? 100, 10_000)));
    const sql = `SELECT * FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT $${args.length}`;
    return (await this.#query(sql, args)).map(toAudit);
  }

  async createNamespace(name: string, displayName: string, limits: ResourceLimits): Promise<NamespaceRecord> {
    const now = new Date().toISOString();
    const rows = await this.#query(
      `INSERT INTO namespaces (name, display_name, limits, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (name) DO NOTHING RETURNING name`,
      [name, displayName, JSON.stringify(limits), now, now],
    );
    if (rows.length === 0) throw createError('NAMESPACE_EXISTS', { name });
    return { name, displayName, limits, createdAt: now, updatedAt: now };
  }

  async getNamespace(name: string): Promise<NamespaceRecord | undefined> {
    const [row] = await this.#query('SELECT * FROM namespaces WHERE name = $1', [name]);
    return row ? toNamespace(row) : undefined;
  }

  async listNamespaces(): Promise<NamespaceRecord[]> {
    return (await this.#query('SELECT * FROM namespaces ORDER BY name')).map(toNamespace);
  }

  async updateNamespace(
    name: string,
    patch: { displayName?: string; limits?: ResourceLimits },
  ): Promise<NamespaceRecord> {
    return this.#tx(async (c) => {
      const row = (await c.query('SELECT * FROM namespaces WHERE name = $1 FOR UPDATE', [name])).rows[0] as
        | Row
        | undefined;
      if (!row) throw createError('NAMESPACE_NOT_FOUND', { name });
      const next = patchedNamespace(toNamespace(row), patch);
      await c.query('UPDATE namespaces SET display_name = $1, limits = $2, updated_at = $3 WHERE name = $4', [
        next.displayName,
        JSON.stringify(next.limits),
        next.updatedAt,
        name,
      ]);
      return next;
    });
  }

  async deleteNamespace(name: string): Promise<boolean> {
    return (await this.#query('DELETE FROM namespaces WHERE name = $1 RETURNING name', [name])).length > 0;
  }

  async addTrustedKey(key: {
    keyId: string;
    publisher: string;
    publicKey: string;
    namespaces: string[];
  }): Promise<TrustedKey> {
    const [row] = await this.#query(
      `INSERT INTO trusted_keys (key_id, publisher, public_key, namespaces, added_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (key_id) DO UPDATE SET publisher = excluded.publisher, namespaces = excluded.namespaces
       RETURNING *`,
      [key.keyId, key.publisher, key.publicKey, JSON.stringify(key.namespaces), new Date().toISOString()],
    );
    return toTrustedKey(row!);
  }

  async getTrustedKey(keyId: string): Promise<TrustedKey | undefined> {
    const [row] = await this.#query('SELECT * FROM trusted_keys WHERE key_id = $1', [keyId]);
    return row ? toTrustedKey(row) : undefined;
  }

  async listTrustedKeys(): Promise<TrustedKey[]> {
    return (await this.#query('SELECT * FROM trusted_keys ORDER BY publisher, added_at')).map(toTrustedKey);
  }

  async revokeKey(keyId: string, reason: string): Promise<boolean> {
    const rows = await this.#query(
      'UPDATE trusted_keys SET revoked_at = coalesce(revoked_at, $1), revoked_reason = $2 WHERE key_id = $3 RETURNING key_id',
      [new Date().toISOString(), reason, keyId],
    );
    return rows.length > 0;
  }

  async revokeRelease(pluginId: string, version: string, reason: string): Promise<RevokedRelease> {
    const at = new Date().toISOString();
    await this.#query(
      `INSERT INTO revoked_releases (plugin_id, version, reason, at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (plugin_id, version) DO UPDATE SET reason = excluded.reason`,
      [pluginId, version, reason, at],
    );
    return { pluginId, version, reason, at };
  }

  async listRevokedReleases(): Promise<RevokedRelease[]> {
    return (await this.#query('SELECT * FROM revoked_releases ORDER BY plugin_id, version')).map(toRevoked);
  }

  async createToken(token: {
    name: string;
    role: TokenRole;
    hash: string;
    createdBy: string;
  }): Promise<ApiTokenRecord> {
    const now = new Date().toISOString();
    const rows = await this.#query(
      `INSERT INTO api_tokens (name, role, hash, created_at, created_by) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (name) DO NOTHING RETURNING name`,
      [token.name, token.role, token.hash, now, token.createdBy],
    );
    if (rows.length === 0) throw createError('TOKEN_EXISTS', { name: token.name });
    return { name: token.name, role: token.role, createdAt: now, createdBy: token.createdBy, lastUsedAt: null };
  }

  async findTokenByHash(hash: string): Promise<(ApiTokenRecord & { hash: string }) | undefined> {
    const [row] = await this.#query('SELECT * FROM api_tokens WHERE hash = $1', [hash]);
    return row ? { ...toApiToken(row), hash: String(row.hash) } : undefined;
  }

  async listTokens(): Promise<ApiTokenRecord[]> {
    return (await this.#query('SELECT * FROM api_tokens ORDER BY name')).map(toApiToken);
  }

  async deleteToken(name: string): Promise<boolean> {
    return (await this.#query('DELETE FROM api_tokens WHERE name = $1 RETURNING name', [name])).length > 0;
  }

  async touchToken(name: string, at: string): Promise<void> {
    await this.#query('UPDATE api_tokens SET last_used_at = $1 WHERE name = $2', [at, name]);
  }

  async getScanResult(sha256: string, scanner: string): Promise<unknown> {
    const [row] = await this.#query('SELECT result FROM scan_cache WHERE sha256 = $1 AND scanner = $2', [
      sha256,
      scanner,
    ]);
    return row ? JSON.parse(String(row.result)) : undefined;
  }

  async saveScanResult(sha256: string, scanner: string, result: unknown): Promise<void> {
    await this.#query(
      `INSERT INTO scan_cache (sha256, scanner, result) VALUES ($1, $2, $3)
       ON CONFLICT (sha256, scanner) DO UPDATE SET result = excluded.result`,
      [sha256, scanner, JSON.stringify(result)],
    );
  }

  // the cluster

  async publishBundle(
    bundle: Omit<BundleRecord, 'at'> & { bytes: Buffer },
  ): Promise<{ accepted: boolean; current: BundleRecord }> {
    return this.#tx(async (c) => {
      // one publisher per plugin id at a time, whether or not it has a row yet
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`bundle:${bundle.pluginId}`]);
      const old = (
        await c.query('SELECT plugin_id, version, digest, origin, at FROM bundles WHERE plugin_id = $1', [
          bundle.pluginId,
        ])
      ).rows[0] as Row | undefined;
      const current = old ? toBundle(old) : undefined;
      // a higher version stays; so does the first release of a version (other bytes under it are a conflict)
      if (
        current &&
        semver.valid(current.version) &&
        (semver.gt(current.version, bundle.version) ||
          (semver.eq(current.version, bundle.version) && current.digest !== bundle.digest))
      ) {
        return { accepted: false, current };
      }
      // the shared rollback guard follows the release the cluster runs
      const state = (await c.query('SELECT * FROM plugin_state WHERE id = $1 FOR UPDATE', [bundle.pluginId])).rows[0] as
        | Row
        | undefined;
      const highest = state ? toPluginState(state).highestVersion : null;
      if (!highest || !semver.valid(highest) || semver.lte(highest, bundle.version)) {
        const next = patchedPluginState(bundle.pluginId, state ? toPluginState(state) : undefined, {
          version: bundle.version,
          highestVersion: bundle.version,
          highestDigest: bundle.digest,
        });
        await c.query(
          `INSERT INTO plugin_state (id, enabled, version, highest_version, highest_digest, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (id) DO UPDATE SET version = excluded.version, highest_version = excluded.highest_version,
             highest_digest = excluded.highest_digest, updated_at = excluded.updated_at`,
          [next.id, next.enabled, next.version, next.highestVersion, next.highestDigest, next.updatedAt],
        );
      }
      const at = new Date().toISOString();
      await c.query(
        `INSERT INTO bundles (plugin_id, version, digest, bytes, origin, at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (plugin_id) DO UPDATE SET version = excluded.version, digest = excluded.digest,
           bytes = excluded.bytes, origin = excluded.origin, at = excluded.at`,
        [bundle.pluginId, bundle.version, bundle.digest, bundle.bytes, bundle.origin, at],
      );
      const event: ClusterEvent = {
        type: 'install',
        target: bundle.pluginId,
        digest: bundle.digest,
        origin: bundle.origin,
      };
      // delivered with the commit, never before it, never for a rolled-back change
      await c.query('SELECT pg_notify($1, $2)', [CHANNEL, JSON.stringify(event)]);
      const { bytes: _bytes, ...record } = bundle;
      return { accepted: true, current: { ...record, at } };
    });
  }

  async getBundle(pluginId: string): Promise<(BundleRecord & { bytes: Buffer }) | undefined> {
    const [row] = await this.#query('SELECT * FROM bundles WHERE plugin_id = $1', [pluginId]);
    return row ? { ...toBundle(row), bytes: row.bytes as Buffer } : undefined;
  }

  async listBundles(): Promise<BundleRecord[]> {
    return (await this.#query('SELECT plugin_id, version, digest, origin, at FROM bundles ORDER BY plugin_id')).map(
      toBundle,
    );
  }

  async removeBundle(pluginId: string, origin: string): Promise<void> {
    await this.#tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`bundle:${pluginId}`]);
      await c.query('DELETE FROM bundles WHERE plugin_id = $1', [pluginId]);
      const event: ClusterEvent = { type: 'uninstall', target: pluginId, origin };
      await c.query('SELECT pg_notify($1, $2)', [CHANNEL, JSON.stringify(event)]);
    });
  }

  async notify(event: ClusterEvent): Promise<void> {
    await this.#query('SELECT pg_notify($1, $2)', [CHANNEL, JSON.stringify(event)]);
  }

  async listen(
    onEvent: (event: ClusterEvent) => void,
    onState: (up: boolean, reason?: string) => void,
  ): Promise<() => Promise<void>> {
    let client: pg.Client | null = null;
    let stopped = false;
    let attempt = 0;
    let timer: NodeJS.Timeout | undefined;
    const connect = async (): Promise<void> => {
      if (stopped || this.#closed) return;
      const c = new pg.Client({ connectionString: this.#url, connectionTimeoutMillis: 5000 });
      let failed = false;
      const lost = (reason: string) => {
        if (failed || stopped) return;
        failed = true;
        client = null;
        void c.end().catch(() => {});
        onState(false, reason);
        const delay = backoffMs(++attempt, 250, 5000);
        timer = setTimeout(() => void connect(), delay);
      };
      c.on('error', (err) => lost(err.message));
      c.on('end', () => lost('the connection ended'));
      c.on('notification', (m) => {
        if (m.channel !== CHANNEL || !m.payload) return;
        try {
          onEvent(JSON.parse(m.payload) as ClusterEvent);
        } catch {
          // a payload that is not ours is not a change
        }
      });
      try {
        await c.connect();
        await c.query(`LISTEN ${CHANNEL}`);
        if (stopped) {
          await c.end();
          return;
        }
        client = c;
        attempt = 0;
        onState(true);
      } catch (err) {
        lost((err as Error).message);
      }
    };
    await connect();
    const stop = async () => {
      stopped = true;
      clearTimeout(timer);
      this.#listeners.delete(stop);
      await client?.end().catch(() => {});
      client = null;
    };
    this.#listeners.add(stop);
    return stop;
  }

  async heartbeat(node: NodeRecord): Promise<void> {
    await this.#query(
      `INSERT INTO nodes (id, address, version, started_at, heartbeat_at, plugins) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (id) DO UPDATE SET address = excluded.address, version = excluded.version,
         started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, plugins = excluded.plugins`,
      [node.id, node.address, node.version, node.startedAt, node.heartbeatAt, JSON.stringify(node.plugins)],
    );
  }

  async listNodes(): Promise<NodeRecord[]> {
    return (await this.#query('SELECT * FROM nodes ORDER BY id')).map((r) => ({
      id: String(r.id),
      address: r.address === null ? null : String(r.address),
      version: String(r.version),
      startedAt: String(r.started_at),
      heartbeatAt: String(r.heartbeat_at),
      plugins: JSON.parse(String(r.plugins)) as NodeRecord['plugins'],
    }));
  }

  async removeNode(id: string): Promise<void> {
    await this.#query('DELETE FROM nodes WHERE id = $1', [id]);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#listeners].map((stop) => stop()));
    await this.#pool.end().catch(() => {});
  }
}

function toBundle(r: Row): BundleRecord {
  return {
    pluginId: String(r.plugin_id),
    version: String(r.version),
    digest: String(r.digest),
    origin: String(r.origin),
    at: String(r.at),
  };
}
