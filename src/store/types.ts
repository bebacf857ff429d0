/**
 * The state store: one interface, with SQLite (the default, one node) and
 * PostgreSQL (a cluster of nodes sharing one database) behind it. Every
 * method is async so that a networked database can stand behind it.
 */

import type { ResourceLimits } from '../sandbox/limits.ts';

/** What is kept of one plugin across restarts. */
export interface PluginStateRecord {
  id: string;
  enabled: boolean;
  /** The version last installed or registered. */
  version: string | null;
  /** The highest version ever installed, and its digest: the rollback guard. */
  highestVersion: string | null;
  highestDigest: string | null;
  updatedAt: string;
}

export type PluginStatePatch = Partial<Omit<PluginStateRecord, 'id' | 'updatedAt'>>;

export type AuditResult = 'ok' | 'refused' | 'error';

/** One line of the audit log: who did what to what, when, and how it ended. */
export interface AuditEntry {
  seq: number;
  at: string;
  actor: string;
  action: string;
  target: string;
  result: AuditResult;
  details: unknown;
}

export type AuditInput = Omit<AuditEntry, 'seq' | 'at'> & { at?: string };

export interface AuditQuery {
  target?: string;
  action?: string;
  /** Entries with `seq` below this (paging backwards). */
  before?: number;
  /** Defaults to 100. */
  limit?: number;
}

/** One install, upgrade or uninstall of a plugin. */
export interface InstallRecord {
  seq: number;
  pluginId: string;
  version: string;
  digest: string | null;
  action: 'install' | 'upgrade' | 'downgrade' | 'reinstall' | 'uninstall' | 'rollback';
  actor: string;
  at: string;
}

export type InstallInput = Omit<InstallRecord, 'seq' | 'at'>;

export interface NamespaceRecord {
  name: string;
  displayName: string;
  limits: ResourceLimits;
  createdAt: string;
  updatedAt: string;
}

/** A publisher's public key in the trust store, and the plugin ids it may sign. */
export interface TrustedKey {
  /** sha256 (hex) of the key's SPKI bytes. */
  keyId: string;
  publisher: string;
  /** SPKI PEM. */
  publicKey: string;
  /** Patterns such as `acme.*` (ids starting with `acme.`), an exact id, or `*`. */
  namespaces: string[];
  addedAt: string;
  revokedAt: string | null;
  revokedReason: string | null;
}

export interface RevokedRelease {
  pluginId: string;
  version: string;
  reason: string;
  at: string;
}

/** What an API token may do (src/server/auth.ts): each role may do all that the ones before it may. */
export type TokenRole = 'viewer' | 'operator' | 'admin';

/** A named API token as the store keeps it: never its secret, only the secret's sha256. */
export interface ApiTokenRecord {
  name: string;
  role: TokenRole;
  createdAt: string;
  /** Who made it, as the audit log names actors (`token:admin`, `cli:alice`). */
  createdBy: string;
  /** When a request last used it (recorded at most about once a minute); null if never. */
  lastUsedAt: string | null;
}

/**
 * Where DataBridge keeps what must survive a restart.
 *
 * @example
 * const store = await openSqliteStore({ file: './data/state.db' });
 * await store.savePluginState('acme.upper', { enabled: false });
 */
export interface StateStore {
  readonly kind: 'sqlite' | 'postgres';
  /** The file (or address, without its password) of the store, for messages. */
  readonly location: string;
  /** What nodes share beyond the state: PostgreSQL only. */
  readonly cluster?: ClusterBackend;

  /** Resolves when the store answers; rejects with STORE_UNAVAILABLE when it does not. */
  ping(): Promise<void>;

  getPluginState(id: string): Promise<PluginStateRecord | undefined>;
  listPluginStates(): Promise<PluginStateRecord[]>;
  /** Creates the record if need be; fields not in the patch keep their value. */
  savePluginState(id: string, patch: PluginStatePatch): Promise<PluginStateRecord>;
  deletePluginState(id: string): Promise<void>;

  recordInstall(record: InstallInput): Promise<InstallRecord>;
  installHistory(pluginId?: string): Promise<InstallRecord[]>;

  appendAudit(entry: AuditInput): Promise<AuditEntry>;
  listAudit(query?: AuditQuery): Promise<AuditEntry[]>;

  createNamespace(name: string, displayName: string, limits: ResourceLimits): Promise<NamespaceRecord>;
  getNamespace(name: string): Promise<NamespaceRecord | undefined>;
  listNamespaces(): Promise<NamespaceRecord[]>;
  updateNamespace(name: string, patch: { displayName?: string; limits?: ResourceLimits }): Promise<NamespaceRecord>;
  deleteNamespace(name: string): Promise<boolean>;

  /** Adds a key (or, for a key already known, replaces its publisher and namespaces and lifts no revocation). */
  addTrustedKey(key: {
    keyId: string;
    publisher: string;
    publicKey: string;
    namespaces: string[];
  }): Promise<TrustedKey>;
  getTrustedKey(keyId: string): Promise<TrustedKey | undefined>;
  listTrustedKeys(): Promise<TrustedKey[]>;
  /** Marks a key revoked; false when the key is unknown. */
  revokeKey(keyId: string, reason: string): Promise<boolean>;
  revokeRelease(pluginId: string, version: string, reason: string): Promise<RevokedRelease>;
  listRevokedReleases(): Promise<RevokedRelease[]>;

  /** Keeps a new API token; TOKEN_EXISTS when the name is taken. `hash` is the secret's sha256 (hex). */
  createToken(token: { name: string; role: TokenRole; hash: string; createdBy: string }): Promise<ApiTokenRecord>;
  /** The token whose secret has this sha256 (hex), with the hash as stored. */
  findTokenByHash(hash: string): Promise<(ApiTokenRecord & { hash: string }) | undefined>;
  listTokens(): Promise<ApiTokenRecord[]>;
  /** Removes a token; false when the name is unknown. */
  deleteToken(name: string): Promise<boolean>;
  /** Records that a request used the token at `at`. */
  touchToken(name: string, at: string): Promise<void>;

  /** What a scanner found in a file with this sha256 (the result depends on the bytes only). */
  getScanResult(sha256: string, scanner: string): Promise<unknown>;
  saveScanResult(sha256: string, scanner: string, result: unknown): Promise<void>;

  close(): Promise<void>;
}

/** A plugin's bundle as the cluster holds it: the release every node runs. */
export interface BundleRecord {
  pluginId: string;
  version: string;
  /** The release digest (sha256 over the signed file list). */
  digest: string;
  /** The node that published it. */
  origin: string;
  at: string;
}

/** A change one node made that the others apply. */
export interface ClusterEvent {
  type: 'install' | 'uninstall' | 'enable' | 'disable' | 'reload' | 'trust' | 'namespace';
  /** The plugin (or namespace) it concerns; none for trust changes. */
  target: string | null;
  digest?: string | null;
  /** The node that made it. */
  origin: string;
}

/** One node of the cluster as its heartbeat says. */
export interface NodeRecord {
  id: string;
  address: string | null;
  version: string;
  startedAt: string;
  heartbeatAt: string;
  /** Per plugin: the version and status this node runs. */
  plugins: Record<string, { version: string; status: string; enabled: boolean; digest: string | null }>;
}

/**
 * What the nodes of a cluster share through PostgreSQL beyond the state:
 * bundles (bytes and digest), change notifications (LISTEN/NOTIFY) and
 * membership (heartbeats).
 */
export interface ClusterBackend {
  /**
   * Makes `bundle` the release every node runs, unless a higher version is
   * there already (then it is not accepted and `current` says what is).
   * The notification goes out with the commit.
   */
  publishBundle(
    bundle: Omit<BundleRecord, 'at'> & { bytes: Buffer },
  ): Promise<{ accepted: boolean; current: BundleRecord }>;
  getBundle(pluginId: string): Promise<(BundleRecord & { bytes: Buffer }) | undefined>;
  listBundles(): Promise<BundleRecord[]>;
  /** Removes a plugin's bundle and tells the other nodes. */
  removeBundle(pluginId: string, origin: string): Promise<void>;
  notify(event: ClusterEvent): Promise<void>;
  /**
   * Listens for the other nodes' changes on a connection of its own,
   * reconnecting with backoff when it drops; `onState` says when it is up or
   * down (after a reconnect the node catches up: it may have missed events).
   */
  listen(
    onEvent: (event: ClusterEvent) => void,
    onState: (up: boolean, reason?: string) => void,
  ): Promise<() => Promise<void>>;
  heartbeat(node: NodeRecord): Promise<void>;
  listNodes(): Promise<NodeRecord[]>;
  removeNode(id: string): Promise<void>;
}
