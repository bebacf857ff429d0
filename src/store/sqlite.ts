/**
 * The SQLite state store (`node:sqlite`): WAL journal, one transaction per
 * change, so a crash leaves the file whole. A damaged or foreign file is a
 * clear error, never a silent reset.
 */

import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type SQLInputValue } from 'node:sqlite';
import { createError, type DataBridgeError } from '../errors.ts';
import type { ResourceLimits } from '../sandbox/limits.ts';
import {
  patchedNamespace,
  patchedPluginState,
  toApiToken,
  toAudit,
  toInstall,
  toNamespace,
  toPluginState,
  toRevoked,
  toTrustedKey,
} from './rows.ts';
import { APPLICATION_ID, SQLITE_MIGRATIONS } from './sqlite-migrations.ts';
import type {
  ApiTokenRecord,
  AuditEntry,
  AuditInput,
  AuditQuery,
  InstallInput,
  InstallRecord,
  NamespaceRecord,
  PluginStatePatch,
  PluginStateRecord,
  RevokedRelease,
  StateStore,
  TokenRole,
  TrustedKey,
} from './types.ts';

export interface SqliteStoreOptions {
  /** The database file; its folder is made if need be. */
  file: string;
}

/**
 * Opens (creating or migrating as needed) the SQLite state store.
 *
 * @example
 * const store = await openSqliteStore({ file: 'data/state.db' });
 */
export async function openSqliteStore(options: SqliteStoreOptions): Promise<StateStore> {
  const store = new SqliteStore(options.file);
  return store;
}

/** @internal use `openSqliteStore` */
export class SqliteStore implements StateStore {
  readonly kind = 'sqlite' as const;
  readonly location: string;
  readonly #db: DatabaseSync;

  constructor(file: string) {
    this.location = file;
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    this.#db = new DatabaseSync(file, { timeout: 5000 });
    try {
      this.#prepare();
    } catch (err) {
      this.#db.close();
      throw err;
    }
  }

  /** The database handle, for the other parts of the host that keep tables here. @internal */
  get db(): DatabaseSync {
    return this.#db;
  }

  #prepare(): void {
    const file = this.location;
    let appId: number;
    let version: number;
    let tables: number;
    try {
      appId = Number(this.#db.prepare('PRAGMA application_id').get()!.application_id);
      version = Number(this.#db.prepare('PRAGMA user_version').get()!.user_version);
      tables = Number(this.#db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get()!.n);
      const check = this.#db.prepare('PRAGMA quick_check').get()!.quick_check;
      if (check !== 'ok') throw new Error(String(check));
    } catch (err) {
      throw asStoreError(err, file);
    }
    if (appId !== APPLICATION_ID && (appId !== 0 || tables > 0)) throw createError('STORE_FOREIGN', { file });
    if (version > SQLITE_MIGRATIONS.length) {
      throw createError('STORE_TOO_NEW', { file, version, known: SQLITE_MIGRATIONS.length });
    }
    try {
      this.#db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;');
      for (let i = version; i < SQLITE_MIGRATIONS.length; i++) {
        this.#transaction(() => {
          this.#db.exec(SQLITE_MIGRATIONS[i]!);
          this.#db.exec(`PRAGMA user_version = ${i + 1}; PRAGMA application_id = ${APPLICATION_ID};`);
        });
      }
    } catch (err) {
      throw asStoreError(err, file);
    }
  }

  /** Runs `fn` in one IMMEDIATE transaction (writers queue rather than fail mid-way). */
  #transaction<T>(fn: () => T): T {
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const out = fn();
      this.#db.exec('COMMIT');
      return out;
    } catch (err) {
      this.#db.exec('ROLLBACK');
      throw err;
    }
  }

  async ping(): Promise<void> {
    if (!this.#db.isOpen) throw createError('STORE_UNAVAILABLE', { location: this.location, reason: 'closed' });
  }

  async getPluginState(id: string): Promise<PluginStateRecord | undefined> {
    const row = this.#db.prepare('SELECT * FROM plugin_state WHERE id = ?').get(id);
    return row ? toPluginState(row) : undefined;
  }

  async listPluginStates(): Promise<PluginStateRecord[]> {
    return this.#db.prepare('SELECT * FROM plugin_state ORDER BY id').all().map(toPluginState);
  }

  async savePluginState(id: string, patch: PluginStatePatch): Promise<PluginStateRecord> {
    return this.#transaction(() => {
      const old = this.#db.prepare('SELECT * FROM plugin_state WHERE id = ?').get(id);
      const current = old ? toPluginState(old) : undefined;
      const next = patchedPluginState(id, current, patch);
      this.#db
        .prepare(
          `INSERT INTO plugin_state (id, enabled, version, highest_version, highest_digest, updated_at)
           VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET enabled = excluded.enabled, version = excluded.version,
             highest_version = excluded.highest_version, highest_digest = excluded.highest_digest,
             updated_at = excluded.updated_at`,
        )
        .run(id, next.enabled ? 1 : 0, next.version, next.highestVersion, next.highestDigest, next.updatedAt);
      return next;
    });
  }

  async deletePluginState(id: string): Promise<void> {
    this.#db.prepare('DELETE FROM plugin_state WHERE id = ?').run(id);
  }

  async recordInstall(record: InstallInput): Promise<InstallRecord> {
    const at = new Date().toISOString();
    const result = this.#db
      .prepare('INSERT INTO install_history (plugin_id, version, digest, action, actor, at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(record.pluginId, record.version, record.digest, record.action, record.actor, at);
    return { ...record, seq: Number(result.lastInsertRowid), at };
  }

  async installHistory(pluginId?: string): Promise<InstallRecord[]> {
    const rows =
      pluginId === undefined
        ? this.#db.prepare('SELECT * FROM install_history ORDER BY seq').all()
        : this.#db.prepare('SELECT * FROM install_history WHERE plugin_id = ? ORDER BY seq').all(pluginId);
    return rows.map(toInstall);
  }

  async appendAudit(entry: AuditInput): Promise<AuditEntry> {
    const at = entry.at ?? new Date().toISOString();
    const details = entry.details === undefined ? null : JSON.stringify(entry.details);
    const result = this.#db
      .prepare('INSERT INTO audit_log (at, actor, action, target, result, details) VALUES (?, ?, ?, ?, ?, ?)')
      .run(at, entry.actor, entry.action, entry.target, entry.result, details);
    return { ...entry, details: entry.details ?? null, at, seq: Number(result.lastInsertRowid) };
  }

  async listAudit(query: AuditQuery = {}): Promise<AuditEntry[]> {
    const where: string[] = [];
    const args: SQLInputValue[] = [];
    if (query.target !== undefined) {
      where.push('target = ?');
      args.push(query.target);
    }
    if (query.action !== undefined) {
      where.push('action = ?');
      args.push(query.action);
    }
    if (query.before !== undefined) {
      where.push('seq < ?');
      args.push(query.before);
    }
    const sql = `SELECT * FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ?`;
    args.push(Math.max(1, Math.min(query.limit ?? 100, 10_000)));
    return this.#db
      .prepare(sql)
      .all(...args)
      .map(toAudit);
  }

  async createNamespace(name: string, displayName: string, limits: ResourceLimits): Promise<NamespaceRecord> {
    const now = new Date().toISOString();
    try {
      this.#db
        .prepare('INSERT INTO namespaces (name, display_name, limits, created_at, updated_at) VALUES (?, ?, ?, ?, ?)')
        .run(name, displayName, JSON.stringify(limits), now, now);
    } catch (err) {
      if ((err as { errcode?: number }).errcode === 1555 /* SQLITE_CONSTRAINT_PRIMARYKEY */) {
        throw createError('NAMESPACE_EXISTS', { name }, { cause: err });
      }
      throw err;
    }
    return { name, displayName, limits, createdAt: now, updatedAt: now };
  }

  async getNamespace(name: string): Promise<NamespaceRecord | undefined> {
    const row = this.#db.prepare('SELECT * FROM namespaces WHERE name = ?').get(name);
    return row ? toNamespace(row) : undefined;
  }

  async listNamespaces(): Promise<NamespaceRecord[]> {
    return this.#db.prepare('SELECT * FROM namespaces ORDER BY name').all().map(toNamespace);
  }

  async updateNamespace(
    name: string,
    patch: { displayName?: string; limits?: ResourceLimits },
  ): Promise<NamespaceRecord> {
    return this.#transaction(() => {
      const row = this.#db.prepare('SELECT * FROM namespaces WHERE name = ?').get(name);
      if (!row) throw createError('NAMESPACE_NOT_FOUND', { name });
      const next = patchedNamespace(toNamespace(row), patch);
      this.#db
        .prepare('UPDATE namespaces SET display_name = ?, limits = ?, updated_at = ? WHERE name = ?')
        .run(next.displayName, JSON.stringify(next.limits), next.updatedAt, name);
      return next;
    });
  }

  async deleteNamespace(name: string): Promise<boolean> {
    return this.#db.prepare('DELETE FROM namespaces WHERE name = ?').run(name).changes > 0;
  }

  async addTrustedKey(key: {
    keyId: string;
    publisher: string;
    publicKey: string;
    namespaces: string[];
  }): Promise<TrustedKey> {
    const now = new Date().toISOString();
    this.#db
      .prepare(
        `INSERT INTO trusted_keys (key_id, publisher, public_key, namespaces, added_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (key_id) DO UPDATE SET publisher = excluded.publisher, namespaces = excluded.namespaces`,
      )
      .run(key.keyId, key.publisher, key.publicKey, JSON.stringify(key.namespaces), now);
    return (await this.getTrustedKey(key.keyId))!;
  }

  async getTrustedKey(keyId: string): Promise<TrustedKey | undefined> {
    const row = this.#db.prepare('SELECT * FROM trusted_keys WHERE key_id = ?').get(keyId);
    return row ? toTrustedKey(row) : undefined;
  }

  async listTrustedKeys(): Promise<TrustedKey[]> {
    return this.#db.prepare('SELECT * FROM trusted_keys ORDER BY publisher, added_at').all().map(toTrustedKey);
  }

  async revokeKey(keyId: string, reason: string): Promise<boolean> {
    const r = this.#db
      .prepare('UPDATE trusted_keys SET revoked_at = coalesce(revoked_at, ?), revoked_reason = ? WHERE key_id = ?')
      .run(new Date().toISOString(), reason, keyId);
    return r.changes > 0;
  }

  async revokeRelease(pluginId: string, version: string, reason: string): Promise<RevokedRelease> {
    const at = new Date().toISOString();
    this.#db
      .prepare(
        `INSERT INTO revoked_releases (plugin_id, version, reason, at) VALUES (?, ?, ?, ?)
         ON CONFLICT (plugin_id, version) DO UPDATE SET reason = excluded.reason`,
      )
      .run(pluginId, version, reason, at);
    return { pluginId, version, reason, at };
  }

  async listRevokedReleases(): Promise<RevokedRelease[]> {
    return this.#db.prepare('SELECT * FROM revoked_releases ORDER BY plugin_id, version').all().map(toRevoked);
  }

  async createToken(token: {
    name: string;
    role: TokenRole;
    hash: string;
    createdBy: string;
  }): Promise<ApiTokenRecord> {
    const now = new Date().toISOString();
    const r = this.#db
      .prepare(
        `INSERT INTO api_tokens (name, role, hash, created_at, created_by) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (name) DO NOTHING`,
      )
      .run(token.name, token.role, token.hash, now, token.createdBy);
    if (r.changes === 0) throw createError('TOKEN_EXISTS', { name: token.name });
    return { name: token.name, role: token.role, createdAt: now, createdBy: token.createdBy, lastUsedAt: null };
  }

  async findTokenByHash(hash: string): Promise<(ApiTokenRecord & { hash: string }) | undefined> {
    const row = this.#db.prepare('SELECT * FROM api_tokens WHERE hash = ?').get(hash);
    return row ? { ...toApiToken(row), hash: String(row.hash) } : undefined;
  }

  async listTokens(): Promise<ApiTokenRecord[]> {
    return this.#db.prepare('SELECT * FROM api_tokens ORDER BY name').all().map(toApiToken);
  }

  async deleteToken(name: string): Promise<boolean> {
    return this.#db.prepare('DELETE FROM api_tokens WHERE name = ?').run(name).changes > 0;
  }

  async touchToken(name: string, at: string): Promise<void> {
    this.#db.prepare('UPDATE api_tokens SET last_used_at = ? WHERE name = ?').run(at, name);
  }

  async getScanResult(sha256: string, scanner: string): Promise<unknown> {
    const row = this.#db.prepare('SELECT result FROM scan_cache WHERE sha256 = ? AND scanner = ?').get(sha256, scanner);
    return row ? JSON.parse(String(row.result)) : undefined;
  }

  async saveScanResult(sha256: string, scanner: string, result: unknown): Promise<void> {
    this.#db
      .prepare('INSERT OR REPLACE INTO scan_cache (sha256, scanner, result) VALUES (?, ?, ?)')
      .run(sha256, scanner, JSON.stringify(result));
  }

  async close(): Promise<void> {
    if (this.#db.isOpen) this.#db.close();
  }
}

function asStoreError(err: unknown, file: string): DataBridgeError {
  const e = err as { errcode?: number; message?: string };
  if (e.errcode === 5 || e.errcode === 6) return createError('STORE_LOCKED', { file }, { cause: err });
  return createError('STORE_CORRUPT', { file, reason: e.message ?? String(err) }, { cause: err });
}
