/**
 * One node of a cluster: nodes that share a PostgreSQL state store keep the
 * same plugins. A change made here (install, uninstall, enable, disable,
 * reload, trust, namespace limits) goes to the database and out as a
 * notification; a change another node made comes in as one, and this node
 * applies it from the database: a release is fetched by digest, validated
 * and verified here as any install, and swapped in. At start, and after the
 * database comes back, the node catches up with everything it missed. While
 * the database is away the node keeps running what it has.
 */

import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import semver from 'semver';
import { createError, isDataBridgeError } from '../errors.ts';
import type { PinoLogger } from '../log.ts';
import type { ClusterBackend, ClusterEvent, NodeRecord, StateStore } from '../store/types.ts';
import { VERSION } from '../version.ts';
import { packPlugin } from './bundle.ts';
import { KeyedQueue } from './keyed-queue.ts';
import type { PluginRegistry } from './registry.ts';

/** What the cluster node needs of the manager: the local changes it applies, without sharing them again. */
export interface ClusterHost {
  registry: PluginRegistry;
  store: StateStore;
  log: PinoLogger;
  pluginDir: string;
  /** The digest of the release a plugin runs here (null for built-ins and failed loads). */
  digestOf(id: string): string | null;
  /** Installs a release the cluster accepted, verified here (a replica: the shared state is not written). */
  applyRelease(bytes: Buffer, id: string): Promise<void>;
  applyUninstall(id: string): Promise<void>;
  applyEnabled(id: string, enabled: boolean): Promise<void>;
  applyReload(id: string): Promise<void>;
  applyNamespace(name: string): Promise<void>;
  /** Stops what runs here of a key or release another node (`origin`) revoked. */
  applyTrust(origin: string): Promise<void>;
  /** Serializes changes to one plugin with the manager's own. */
  withLock<T>(id: string, fn: () => Promise<T>): Promise<T>;
  /** Raises CLUSTER_SYNC_FAILED: a change of another node that this node could not (or would not) apply. */
  alert(plugin: string, message: string): void;
}

export interface ClusterOptions {
  /** This node's id: kept in `<dataDir>/node-id` so it survives restarts. */
  dataDir: string;
  heartbeatMs: number;
}

export interface ClusterView {
  self: string;
  store: { kind: string; location: string; up: boolean; error: string | null };
  nodes: (NodeRecord & { alive: boolean; self: boolean })[];
  /** Plugin id → what the database holds, and each node that runs something else (or nothing). */
  plugins: Record<string, { version: string | null; digest: string | null; drift: string[] }>;
}

export class ClusterNode {
  readonly id: string;
  readonly #host: ClusterHost;
  readonly #backend: ClusterBackend;
  readonly #o: ClusterOptions;
  readonly #startedAt = new Date().toISOString();
  #address: string | null = null;
  #stopListening: (() => Promise<void>) | null = null;
  #heartbeat: NodeJS.Timeout | undefined;
  #up = false;
  #error: string | null = null;
  #syncedAt: string | null = null;
  #catchingUp: Promise<void> | null = null;
  #closed = false;
  /** Per plugin: this node's publishing and its applying of others' changes, one at a time. */
  readonly #serials = new KeyedQueue();

  constructor(host: ClusterHost, backend: ClusterBackend, options: ClusterOptions) {
    this.#host = host;
    this.#backend = backend;
    this.#o = options;
    this.id = nodeId(options.dataDir);
  }

  /** Where this node serves its API, shown to the others. */
  setAddress(address: string): void {
    this.#address = address;
    void this.beat();
  }

  /** Catches up, then listens for the other nodes' changes and starts the heartbeat. */
  async start(): Promise<void> {
    await this.catchUp();
    this.#stopListening = await this.#backend.listen(
      (event) => void this.#onEvent(event),
      (up, reason) => {
        const wasUp = this.#up;
        this.#up = up;
        this.#error = up ? null : (reason ?? 'the database is unreachable');
        if (!up && wasUp)
          this.#host.log.warn({ err: this.#error }, 'cluster: the database went away; running what we have');
        // back after a gap: whatever happened meanwhile was not heard; catch up
        if (up && !wasUp && this.#syncedAt) {
          this.#host.log.info('cluster: the database is back; catching up');
          void this.catchUp().catch((err) =>
            this.#host.log.error({ err: (err as Error).message }, 'cluster: catching up failed'),
          );
        }
      },
    );
    if (this.#o.heartbeatMs > 0) {
      await this.beat();
      this.#heartbeat = setInterval(() => void this.beat(), this.#o.heartbeatMs);
      this.#heartbeat.unref();
    }
  }

  /** Runs `fn` after whatever this node is doing about plugin `id` in the cluster. */
  #serial<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.#serials.run(id, fn);
  }

  /** Publishes this node's release of a plugin; when a higher version won a race, this node takes that one. */
  published(id: string): Promise<void> {
    return this.#serial(id, () => this.#publish(id));
  }

  async #publish(id: string): Promise<void> {
    const digest = this.#host.digestOf(id);
    const version = this.#host.registry.has(id) ? this.#host.registry.get(id).version : null;
    if (!digest || !version) return;
    const bytes = await packFolder(join(this.#host.pluginDir, id));
    const result = await this.#backend.publishBundle({ pluginId: id, version, digest, bytes, origin: this.id });
    if (!result.accepted) {
      this.#host.log.warn(
        { plugin: id, version, kept: result.current.version },
        'cluster: a higher version was installed meanwhile; taking it',
      );
      await this.#applyFromDatabase(id);
    }
  }

  removed(id: string): Promise<void> {
    return this.#serial(id, () => this.#backend.removeBundle(id, this.id));
  }

  /** Tells the other nodes of a change whose state is in the database already. */
  async changed(type: ClusterEvent['type'], target: string | null): Promise<void> {
    await this.#backend.notify({ type, target, origin: this.id });
  }

  /**
   * Makes this node run what the database says: each published release (by
   * digest), no plugin the cluster uninstalled, the shared enabled states.
   * A release of this node's that never reached the database (it went away
   * mid-way) is published now.
   */
  catchUp(): Promise<void> {
    this.#catchingUp ??= this.#catchUp().finally(() => {
      this.#catchingUp = null;
    });
    return this.#catchingUp;
  }

  async #catchUp(): Promise<void> {
    const { registry, store } = this.#host;
    const bundles = new Map((await this.#backend.listBundles()).map((b) => [b.pluginId, b]));
    const history = await store.installHistory();
    const lastAction = new Map(history.map((h) => [h.pluginId, h.action]));
    // one plugin that cannot be brought in line (a release refused here) does not hold up the others
    const each = async (id: string, what: string, fn: () => Promise<void>) => {
      try {
        await fn();
      } catch (err) {
        if (isDataBridgeError(err, 'STORE_UNAVAILABLE')) throw err;
        const e = err as Error & { code?: string };
        this.#host.log.error({ plugin: id, err: e.message }, `cluster: catching up (${what}) failed`);
        this.#host.alert(
          id,
          `catching up with the cluster (${what}) failed here: ${e.code ? `${e.code}: ` : ''}${e.message}`,
        );
      }
    };
    for (const [id, bundle] of bundles) {
      if (this.#host.digestOf(id) === bundle.digest) continue;
      const local = registry.has(id) ? registry.get(id) : null;
      if (
        local &&
        local.source === 'external' &&
        semver.valid(local.version) &&
        semver.gt(local.version, bundle.version)
      ) {
        await each(id, 'publish', () => this.published(id));
      } else await each(id, 'install', () => this.#serial(id, () => this.#applyFromDatabase(id)));
    }
    for (const plugin of registry.list()) {
      if (plugin.source !== 'external' || bundles.has(plugin.id)) continue;
      if (lastAction.get(plugin.id) === 'uninstall') {
        this.#host.log.info({ plugin: plugin.id }, 'cluster: uninstalled by another node; uninstalling');
        await each(plugin.id, 'uninstall', () =>
          this.#host.withLock(plugin.id, () => this.#host.applyUninstall(plugin.id)),
        );
      } else if (this.#host.digestOf(plugin.id)) {
        await each(plugin.id, 'publish', () => this.published(plugin.id));
      }
    }
    for (const state of await store.listPluginStates()) {
      if (registry.has(state.id) && registry.get(state.id).enabled !== state.enabled) {
        await this.#host.applyEnabled(state.id, state.enabled);
      }
    }
    // a revocation made while this node was not listening
    await this.#host.applyTrust('catch-up');
    this.#syncedAt = new Date().toISOString();
    void this.beat();
  }

  async #onEvent(event: ClusterEvent): Promise<void> {
    if (event.origin === this.id || this.#closed) return;
    const { log } = this.#host;
    try {
      const id = event.target;
      switch (event.type) {
        case 'install':
          if (id && this.#host.digestOf(id) !== event.digest) await this.#serial(id, () => this.#applyFromDatabase(id));
          break;
        case 'uninstall':
          if (id && this.#host.registry.has(id)) {
            await this.#serial(id, () => this.#host.withLock(id, () => this.#host.applyUninstall(id)));
          }
          break;
        case 'enable':
        case 'disable':
          if (id && this.#host.registry.has(id)) await this.#host.applyEnabled(id, event.type === 'enable');
          break;
        case 'reload':
          if (id && this.#host.registry.has(id)) await this.#host.withLock(id, () => this.#host.applyReload(id));
          break;
        case 'namespace':
          if (id) await this.#host.applyNamespace(id);
          break;
        case 'trust':
          // the trust store is the database's (validations here read it); a revocation stops what runs of it now
          await this.#host.applyTrust(event.origin);
          break;
      }
      log.info({ origin: event.origin, change: event.type, target: id }, 'cluster: applied a change of another node');
      void this.beat();
    } catch (err) {
      const e = err as Error & { code?: string };
      log.error(
        { origin: event.origin, change: event.type, target: event.target, err: e.message },
        'cluster: applying a change of another node failed; the next catch-up tries again',
      );
      this.#host.alert(
        event.target ?? '',
        `the ${event.type} of ${event.target ?? 'the trust store'} from node ${event.origin} was not applied here: ${e.code ? `${e.code}: ` : ''}${e.message}`,
      );
    }
  }

  /**
   * Fetches a plugin's release from the database and installs it here,
   * verified as any install. Never a lower version than this node runs: that
   * is a race this node's own publish settles (the database keeps the higher).
   */
  async #applyFromDatabase(id: string): Promise<void> {
    const bundle = await this.#backend.getBundle(id);
    if (!bundle) return;
    if (this.#host.digestOf(id) === bundle.digest) return;
    const local = this.#host.registry.has(id) ? this.#host.registry.get(id) : null;
    if (local?.status === 'active' && semver.valid(local.version) && semver.valid(bundle.version)) {
      if (semver.gt(local.version, bundle.version)) return;
    }
    try {
      await this.#host.applyRelease(bundle.bytes, id);
    } catch (err) {
      // this node's own higher install landed meanwhile: its publish settles the race
      const findings = (err as { details?: { findings?: { code: string }[] } }).details?.findings ?? [];
      if (isDataBridgeError(err, 'INSTALL_CONFLICT') && findings.some((f) => f.code === 'VERSION_ROLLBACK')) return;
      throw err;
    }
    this.#host.log.info(
      { plugin: id, version: bundle.version, digest: bundle.digest, origin: bundle.origin },
      'cluster: installed the release the cluster runs',
    );
  }

  /** Tells the database this node is alive and what it runs. */
  async beat(): Promise<void> {
    if (this.#closed || this.#o.heartbeatMs === 0) return;
    const plugins: NodeRecord['plugins'] = {};
    for (const p of this.#host.registry.list()) {
      if (p.source !== 'external') continue;
      plugins[p.id] = { version: p.version, status: p.status, enabled: p.enabled, digest: this.#host.digestOf(p.id) };
    }
    try {
      await this.#backend.heartbeat({
        id: this.id,
        address: this.#address,
        version: VERSION,
        startedAt: this.#startedAt,
        heartbeatAt: new Date().toISOString(),
        plugins,
      });
    } catch {
      // the listener reports the database's state; a missed beat is retried next interval
    }
  }

  /** Every node with what it runs, and where a node differs from what the database holds. */
  async view(): Promise<ClusterView> {
    const [nodes, bundles, states] = await Promise.all([
      this.#backend.listNodes(),
      this.#backend.listBundles(),
      this.#host.store.listPluginStates(),
    ]);
    const now = Date.now();
    const stale = this.#o.heartbeatMs * 3;
    const listed = nodes.map((n) => ({
      ...n,
      alive: now - Date.parse(n.heartbeatAt) <= stale,
      self: n.id === this.id,
    }));
    const plugins: ClusterView['plugins'] = {};
    const ids = new Set([...bundles.map((b) => b.pluginId), ...listed.flatMap((n) => Object.keys(n.plugins))]);
    for (const id of [...ids].sort()) {
      const bundle = bundles.find((b) => b.pluginId === id);
      const enabled = states.find((s) => s.id === id)?.enabled ?? true;
      const drift = listed
        .filter((n) => n.alive)
        .filter((n) => {
          const runs = n.plugins[id];
          if (!bundle) return runs !== undefined;
          return !runs || runs.digest !== bundle.digest || runs.enabled !== enabled;
        })
        .map((n) => n.id);
      plugins[id] = { version: bundle?.version ?? null, digest: bundle?.digest ?? null, drift };
    }
    const { kind, location } = this.#host.store;
    return { self: this.id, store: { kind, location, up: this.#up, error: this.#error }, nodes: listed, plugins };
  }

  /** Removes a node that no longer beats from the membership (a node still alive is refused). */
  async forget(id: string): Promise<void> {
    const node = (await this.#backend.listNodes()).find((n) => n.id === id);
    if (!node) throw createError('NODE_NOT_FOUND', { id });
    if (id === this.id || Date.now() - Date.parse(node.heartbeatAt) <= this.#o.heartbeatMs * 3) {
      throw createError('NODE_ALIVE', { id });
    }
    await this.#backend.removeNode(id);
  }

  async stop(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#heartbeat);
    await this.#catchingUp?.catch(() => {});
    await this.#stopListening?.();
  }
}

/** This node's id: made once, kept in the data directory. */
function nodeId(dataDir: string): string {
  const file = join(dataDir, 'node-id');
  if (existsSync(file)) {
    const id = readFileSync(file, 'utf8').trim();
    if (/^[A-Za-z0-9._-]{1,100}$/.test(id)) return id;
  }
  const id = `node-${randomUUID().slice(0, 8)}`;
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, `${id}\n`);
  return id;
}

/** A plugin folder as bundle bytes. */
async function packFolder(dir: string): Promise<Buffer> {
  const work = await mkdtemp(join(tmpdir(), 'databridge-publish-'));
  try {
    const file = join(work, 'bundle.tgz');
    const { findings } = await packPlugin(dir, file);
    if (findings.length) throw new Error(`cannot pack ${dir}: ${findings.map((f) => f.message).join('; ')}`);
    return await readFile(file);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
