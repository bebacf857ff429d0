/**
 * Rows of the state store's tables as records: the same columns in SQLite
 * and PostgreSQL, so both backends read them with these.
 */

import type { ResourceLimits } from '../sandbox/limits.ts';
import type {
  ApiTokenRecord,
  AuditEntry,
  InstallRecord,
  NamespaceRecord,
  PluginStatePatch,
  PluginStateRecord,
  RevokedRelease,
  TrustedKey,
} from './types.ts';

export type Row = Record<string, unknown>;

const text = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
/** JSON kept as text (SQLite) or as jsonb (PostgreSQL, parsed by the driver). */
const json = (v: unknown): unknown => (typeof v === 'string' ? JSON.parse(v) : (v ?? null));

export function toPluginState(r: Row): PluginStateRecord {
  return {
    id: String(r.id),
    enabled: r.enabled === true || Number(r.enabled) === 1,
    version: text(r.version),
    highestVersion: text(r.highest_version),
    highestDigest: text(r.highest_digest),
    updatedAt: String(r.updated_at),
  };
}

export function toTrustedKey(r: Row): TrustedKey {
  return {
    keyId: String(r.key_id),
    publisher: String(r.publisher),
    publicKey: String(r.public_key),
    namespaces: json(r.namespaces) as string[],
    addedAt: String(r.added_at),
    revokedAt: text(r.revoked_at),
    revokedReason: text(r.revoked_reason),
  };
}

export function toNamespace(r: Row): NamespaceRecord {
  return {
    name: String(r.name),
    displayName: String(r.display_name),
    limits: json(r.limits) as ResourceLimits,
    createdAt: String(r.created_at),
    updatedAt: String(r.updated_at),
  };
}

export function toInstall(r: Row): InstallRecord {
  return {
    seq: Number(r.seq),
    pluginId: String(r.plugin_id),
    version: String(r.version),
    digest: text(r.digest),
    action: String(r.action) as InstallRecord['action'],
    actor: String(r.actor),
    at: String(r.at),
  };
}

export function toAudit(r: Row): AuditEntry {
  return {
    seq: Number(r.seq),
    at: String(r.at),
    actor: String(r.actor),
    action: String(r.action),
    target: String(r.target),
    result: String(r.result) as AuditEntry['result'],
    details: json(r.details),
  };
}

export function toApiToken(r: Row): ApiTokenRecord {
  return {
    name: String(r.name),
    role: String(r.role) as ApiTokenRecord['role'],
    createdAt: String(r.created_at),
    createdBy: String(r.created_by),
    lastUsedAt: text(r.last_used_at),
  };
}

export function toRevoked(r: Row): RevokedRelease {
  return { pluginId: String(r.plugin_id), version: String(r.version), reason: String(r.reason), at: String(r.at) };
}

/** A plugin's state after a patch: fields the patch leaves out keep their value (or their default). */
export function patchedPluginState(
  id: string,
  current: PluginStateRecord | undefined,
  patch: PluginStatePatch,
): PluginStateRecord {
  return {
    id,
    enabled: patch.enabled ?? current?.enabled ?? true,
    version: patch.version !== undefined ? patch.version : (current?.version ?? null),
    highestVersion: patch.highestVersion !== undefined ? patch.highestVersion : (current?.highestVersion ?? null),
    highestDigest: patch.highestDigest !== undefined ? patch.highestDigest : (current?.highestDigest ?? null),
    updatedAt: new Date().toISOString(),
  };
}

/** A namespace after a patch of its display name or limits. */
export function patchedNamespace(
  current: NamespaceRecord,
  patch: { displayName?: string; limits?: ResourceLimits },
): NamespaceRecord {
  return {
    ...current,
    displayName: patch.displayName ?? current.displayName,
    limits: patch.limits ?? current.limits,
    updatedAt: new Date().toISOString(),
  };
}
