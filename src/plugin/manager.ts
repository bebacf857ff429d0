/**
 * PluginManager: the host's front door for plugins, and a coordinator. It
 * owns the registry, the state store and the alert bus, registers the
 * built-ins, restores what the operator set (enabled/disabled), and hands
 * each job to the file named for it: installing.ts (install, uninstall,
 * validate), watcher.ts (the plugin directory), auto-rollback.ts,
 * revocations.ts, version-guard.ts, audit.ts (the audit trail) and
 * external.ts (the plugin directory's plugins, each loaded by loader.ts).
 */

import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { type Alert, AlertBus, type AlertInput, type AlertListener } from '../alerts.ts';
import { createError } from '../errors.ts';
import { createLogger, type PinoLogger } from '../log.ts';
import { BUILTIN_PROCESSORS, builtInPluginId } from '../processors/index.ts';
import { type ConfinementReport, configureSandboxUid, overrideConfinement } from '../sandbox/confinement.ts';
import { processorHandle } from '../sandbox/inline-processor.ts';
import { ResourceMonitor } from '../sandbox/monitor.ts';
import type { SandboxAlert, SandboxHost } from '../sandbox/sandbox-host.ts';
import type { Processor, ProcessorInfo } from '../sdk/index.ts';
import { openStateStore } from '../store/open.ts';
import { type StoreStatus, storeStatus } from '../store/status.ts';
import type { StateStore } from '../store/types.ts';
import { AuditTrail } from './audit.ts';
import { AutoRollback } from './auto-rollback.ts';
import { ClusterNode } from './cluster.ts';
import { clusterHost } from './cluster-host.ts';
import { type PluginManagerConfig, type PluginManagerOptions, resolveConfig } from './config.ts';
import type { ManagerCore } from './core.ts';
import { ExternalPlugins, type ExternalRecord } from './external.ts';
import { type InstallOutcome, recoverInstalls } from './installer.ts';
import { Installing, type InstallOptions, type ValidateOptions } from './installing.ts';
import {
  type ConfinementInfo,
  type IsolationStatus,
  isolationStatus,
  pluginConfinement,
  probeHostConfinement,
  type SandboxIsolation,
  sandboxIsolation,
} from './isolation.ts';
import { KeyedQueue } from './keyed-queue.ts';
import { type ActorOption, type ForceOption, reload, restoreEnabledStates, setEnabled } from './lifecycle.ts';
import { Namespaces } from './namespaces.ts';
import { type PluginReport, sandboxReport, signatureOf } from './plugin-report.ts';
import { PluginStats } from './plugin-stats.ts';
import { PluginRegistry, type RegistryListener } from './registry.ts';
import { RevocationWatch } from './revocations.ts';
import { TrustStore } from './trust.ts';
import type { PluginInfo, PluginQuery, RegistryStats, SignatureInfo } from './types.ts';
import type { TrustPolicy, ValidationReport } from './validator.ts';
import { alertRefusedAtStart } from './version-guard.ts';
import { PluginWatcher } from './watcher.ts';

export type { ActorOption, ForceOption };

/**
 * Manages plugins: registry, state, lifecycle.
 *
 * @example
 * const manager = await createPluginManager({ dataDir: './data', pluginDir: './plugins' });
 * const processor = manager.getProcessor('GenerateFlowFile');
 * await manager.disable('builtin.LogAttribute', { actor: 'ops' });
 * await manager.shutdown();
 */
export class PluginManager {
  readonly config: PluginManagerConfig;
  readonly registry = new PluginRegistry();
  /** Publishers' keys and revocations (a change goes to the other nodes of a cluster). */
  readonly trust = new TrustStore(
    () => this.store,
    () => void this.#share(() => this.#cluster?.changed('trust', null), 'trust store'),
    // a revocation stops the plugins it concerns before the call returns (what fails here, the next look at the lists retries)
    (actor) =>
      this.#revocations
        .check(actor)
        .catch((err) => this.log.error({ err: (err as Error).message, actor }, 'stopping revoked plugins failed')),
  );
  /** Sessions, FlowFiles, bytes, errors, rollbacks and latency per plugin. */
  readonly pluginStats = new PluginStats();
  #monitor: ResourceMonitor | undefined;
  /** Namespaces and their resource limits. */
  readonly namespaces = new Namespaces(
    () => this.store,
    () => this.config.defaultLimits,
    // a namespace named after a sandboxed plugin shares that sandbox's slots and usage
    (name) => {
      const sandbox = this.sandboxOf(name);
      return {
        acquire: sandbox ? () => sandbox.acquire() : undefined,
        latest: () => this.#monitor?.latest(name),
      };
    },
    // a running sandbox takes new limits at once (its heap cap and RLIMIT_NOFILE at its next start)
    (name, limits) => {
      this.#external?.applyLimits(name, limits);
      void this.#share(() => this.#cluster?.changed('namespace', name), name);
    },
  );
  readonly log: PinoLogger;
  /** The one alert bus: the flow, the sandboxes, the monitor and the guards raise on it. */
  readonly alertBus: AlertBus;
  #store: StateStore | undefined;
  #state: 'new' | 'initializing' | 'ready' | 'closed' = 'new';
  #external: ExternalPlugins | undefined;
  #confinement: ConfinementReport | undefined;
  #cluster: ClusterNode | null = null;
  /** Changes to one plugin, one at a time (mutations are serialized per plugin). */
  readonly #locks = new KeyedQueue();
  /** The audit trail every change is written to. */
  readonly audit = new AuditTrail(() => this.store);
  /** What the manager's jobs share of it. */
  readonly #core: ManagerCore;
  readonly #watcher: PluginWatcher;
  readonly #autoRollback: AutoRollback;
  readonly #installs: Installing;
  readonly #revocations: RevocationWatch;

  /** Prefer `createPluginManager()`, which also initializes. Throws CONFIG_INVALID on bad options. */
  constructor(options: PluginManagerOptions = {}) {
    this.config = resolveConfig(options);
    this.log = createLogger(this.config.logLevel, this.config.logDestination);
    this.#core = {
      config: this.config,
      registry: this.registry,
      log: this.log,
      audit: this.audit,
      store: () => this.store,
      externals: () => this.#externals(),
      withLock: (id, fn) => this.#locks.run(id, fn),
      cluster: () => this.#cluster,
      share: (fn, target) => this.#share(fn, target),
      raiseAlert: (a) => this.raiseAlert(a),
      onAlert: (l) => this.onAlert(l),
      isReady: () => this.#state === 'ready',
      isClosed: () => this.#state === 'closed',
    };
    this.#watcher = new PluginWatcher(this.#core);
    this.#autoRollback = new AutoRollback(this.#core, (dir, o) => this.install(dir, o));
    this.#installs = new Installing(this.#core, this.#autoRollback);
    this.#revocations = new RevocationWatch(this.#core);
    this.alertBus = new AlertBus({
      onRaise: (a) => this.log.warn({ plugin: a.plugin, processor: a.processor, code: a.code }, a.message),
    });
  }

  /** The state store; there once `initialize()` has run. */
  get store(): StateStore {
    if (!this.#store) throw createError('MANAGER_SHUT_DOWN', {});
    return this.#store;
  }

  /**
   * Opens the state store, registers the built-ins and restores each
   * plugin's enabled state. Idempotent.
   */
  async initialize(): Promise<void> {
    if (this.#state === 'ready' || this.#state === 'initializing') return;
    if (this.#state === 'closed') throw createError('MANAGER_SHUT_DOWN', {});
    this.#state = 'initializing';
    try {
      // 0700: a sandbox's uid (as root, 65534) has no business in it, even if a bind were led there
      // a read-only look makes nothing: a state database not there yet is an empty one
      const { readOnly, dataDir } = this.config;
      if (!readOnly) {
        mkdirSync(dirname(dataDir), { recursive: true });
        mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      }
      this.#store = await openStateStore({ url: this.config.store, dataDir, readOnly });
      if (this.config.builtins) {
        for (const builtin of BUILTIN_PROCESSORS)
          this.registerBuiltInProcessor(builtin.type, builtin.factory, builtin.info);
      }
      await restoreEnabledStates(this.#core);
      if (!readOnly) mkdirSync(this.config.pluginDir, { recursive: true });
      // a report given for tests stands for the probe's, for the spawn path too (process-wide, as the probe's cache is)
      configureSandboxUid(this.config.sandboxUid);
      if (this.config.confinementReport) overrideConfinement(this.config.confinementReport);
      this.#confinement = await probeHostConfinement(this.config.allowWeakIsolation, this.log);
      const { pluginDir, scanners, inlinePlugins, workerPlugins, allowWeakIsolation } = this.config;
      this.#external = new ExternalPlugins({
        ...{ pluginDir, dataDir, scanners, inlinePlugins, workerPlugins, allowWeakIsolation, log: this.log },
        ...{ registry: this.registry, store: this.#store, policy: this.policy, confinement: this.#confinement },
        defaultLimits: () => this.config.defaultLimits,
        onAlert: (a) => this.#sandboxAlert(a),
      });
      // a read-only look leaves an interrupted install for the next writer to finish
      if (!readOnly)
        for (const note of await recoverInstalls(this.config.pluginDir)) this.log.warn({ note }, 'install recovery');
      if (this.config.autoLoad) await this.#external.loadAll();
      if (this.#store.cluster && this.config.autoLoad) {
        this.#cluster = new ClusterNode(
          clusterHost(this.#core, this.#installs, this.#revocations),
          this.#store.cluster,
          { dataDir: this.config.dataDir, heartbeatMs: this.config.heartbeatMs },
        );
        await this.#cluster.start();
      }
      if (this.config.watchChanges) this.#watcher.start();
      // after the cluster's catch-up: a lagging node's older folder was replaced by the cluster's release
      await alertRefusedAtStart(this.#core);
      await this.#revocations.start();
      this.#monitor = new ResourceMonitor({
        intervalMs: this.config.monitorInterval,
        sandboxes: () => this.#external?.sandboxes() ?? [],
        onAlert: (a) => this.#sandboxAlert(a),
      });
      this.#monitor.start();
      this.#state = 'ready';
      const { total: plugins, bySource, byStatus } = this.registry.stats();
      const counts = { plugins, builtin: bySource.builtin, external: bySource.external, failed: byStatus.error };
      this.log.info(counts, 'plugin manager ready');
    } catch (err) {
      this.#state = 'new';
      await this.#store?.close();
      this.#store = undefined;
      throw err;
    }
  }

  /**
   * Registers a processor that ships with the host (or the embedding
   * program): no manifest, no sandbox, no loading cost.
   */
  registerBuiltInProcessor(type: string, factory: () => Processor, info: ProcessorInfo): PluginInfo {
    return this.registry.register({
      id: builtInPluginId(type),
      name: type,
      version: info.version,
      type: 'processor',
      source: 'builtin',
      publisher: 'databridge',
      author: info.author ?? 'DataBridge',
      description: info.description,
      tags: info.tags,
      isolation: 'inline',
      processors: { [type]: { factory, info } },
    });
  }

  /** A fresh instance of a processor type; refuses a disabled or failed plugin with a coded error. */
  getProcessor(type: string): Processor {
    this.#assertOpen();
    return this.registry.createProcessor(type).instance;
  }

  /** The flow's handle on a processor instance (`FlowHost`): inline, or the sandboxed instance itself. */
  readonly processorHandle = processorHandle;

  /** The info of a processor type without making an instance. */
  getProcessorInfo(type: string): ProcessorInfo {
    return this.registry.componentInfo('processors', type);
  }

  list(): PluginInfo[] {
    return this.registry.list().map((p) => this.#signed(p));
  }

  get(id: string): PluginInfo {
    return this.#signed(this.registry.get(id));
  }

  search(query: PluginQuery): PluginInfo[] {
    return this.registry.search(query).map((p) => this.#signed(p));
  }

  /** How a plugin's loaded release is signed, from its last validation. */
  signatureOf(id: string): SignatureInfo {
    return signatureOf(this.registry.get(id), this.#external?.get(id));
  }

  #signed(info: PluginInfo): PluginInfo {
    const confinement = this.#confinement
      ? pluginConfinement(info, this.confinement, this.config.allowWeakIsolation)
      : undefined;
    return { ...info, signature: this.signatureOf(info.id), ...(confinement ? { confinement } : {}) };
  }

  /** What this host can confine a process sandbox with, probed once at start (or the report it was given). */
  get confinement(): ConfinementReport {
    if (!this.#confinement) throw createError('MANAGER_SHUT_DOWN', {});
    return this.#confinement;
  }

  /** The host's isolation, as `/healthz` shows it: the level, what is missing, whether weaker isolation was accepted. */
  isolationStatus(): IsolationStatus {
    return isolationStatus(this.confinement, this.config.allowWeakIsolation);
  }

  /**
   * What holds a plugin: for a process sandbox, the host's confinement
   * level and what is missing; for a worker, inline or built-in plugin,
   * `trusted` (not a security boundary).
   */
  confinementOf(id: string): ConfinementInfo {
    return pluginConfinement(this.registry.get(id), this.confinement, this.config.allowWeakIsolation);
  }

  /** What holds a running sandbox: its mode, level, what holds (bwrap, cgroup, prlimit, network) and what is missing. */
  sandboxIsolation(sandbox: SandboxHost): SandboxIsolation {
    const network = sandbox.plugins.some((id) => this.#external?.declaresNetwork(id));
    return sandboxIsolation(
      sandbox.mode,
      this.confinement,
      this.config.allowWeakIsolation,
      network,
      sandbox.confinement,
    );
  }

  stats(): RegistryStats {
    return this.registry.stats();
  }

  /** Listens to registry changes; returns the function that stops listening. */
  on(listener: RegistryListener): () => void {
    return this.registry.on(listener);
  }

  /** Enables a plugin, persistently. */
  async enable(id: string, options: ActorOption = {}): Promise<PluginInfo> {
    this.#assertOpen();
    return setEnabled(this.#core, id, true, options);
  }

  /** Disables a plugin, persistently; refused while enabled plugins depend on it, unless forced. */
  async disable(id: string, options: ActorOption & ForceOption = {}): Promise<PluginInfo> {
    this.#assertOpen();
    return setEnabled(this.#core, id, false, options);
  }

  /** Whether the state store answers (within two seconds). */
  storeStatus(): Promise<StoreStatus> {
    return storeStatus(this.store);
  }

  /** This node's place in a cluster (a PostgreSQL store), or null on its own (SQLite). */
  get cluster(): ClusterNode | null {
    return this.#cluster;
  }

  /**
   * Tells the cluster of a change made here. The change stands whatever
   * happens: when the database went away in between, the node's next
   * catch-up publishes it.
   */
  async #share(fn: () => Promise<void> | undefined, target: string): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.log.error(
        { plugin: target, err: (err as Error).message },
        'cluster: sharing a change failed; the next catch-up will',
      );
    }
  }

  /** Raises an alert on the bus: kept (the last 1000), logged, and sent to every listener. */
  raiseAlert(alert: AlertInput): Alert {
    return this.alertBus.raise(alert);
  }

  /** A sandbox's alert concerns each plugin in it (a namespace with none yet: the namespace). */
  #sandboxAlert(a: SandboxAlert): void {
    for (const plugin of a.plugins.length ? a.plugins : [a.namespace]) {
      this.raiseAlert({ code: a.code, plugin, processor: null, message: a.message });
    }
  }

  /** Alerts raised so far, oldest first. */
  alerts(): Alert[] {
    return this.alertBus.list();
  }

  /** Listens to alerts (sequential, each in turn; a listener that throws is ignored); returns the function that stops listening. */
  onAlert(listener: AlertListener): () => void {
    return this.alertBus.on(listener);
  }

  /** The resource monitor (usage history per namespace). */
  get monitor(): ResourceMonitor | undefined {
    return this.#monitor;
  }

  /**
   * A plugin's statistics and, when it runs in a sandbox, the sandbox's
   * mode, limits, restarts and latest usage.
   */
  statsOf(id: string): PluginReport {
    this.registry.get(id);
    const s = this.sandboxOf(id);
    return {
      stats: this.pluginStats.get(id),
      sandbox: s ? sandboxReport(s, this.#monitor, this.sandboxIsolation(s)) : null,
    };
  }

  /** The sandbox an external plugin runs in (none for built-ins and inline plugins). */
  sandboxOf(id: string): SandboxHost | undefined {
    return this.#external?.sandboxOf(id);
  }

  /** The trust policy validation applies. */
  get policy(): TrustPolicy {
    return {
      allowUnsigned: this.config.allowUnsigned,
      trustedPublishers: this.config.trustedPublishers,
      requireChecksum: this.config.requireChecksum,
    };
  }

  /**
   * Validates a plugin folder or `.tgz` bundle without installing it:
   * every finding, as install would see it (rollback included).
   */
  async validate(target: string, options: ValidateOptions = {}): Promise<ValidationReport> {
    this.#assertOpen();
    return this.#installs.validate(target, options);
  }

  /**
   * Installs a `.tgz` bundle (a path or its bytes) or a plugin folder: checked,
   * staged, validated, moved in at once, loaded, recorded in the install
   * history and the audit log. Throws INSTALL_REFUSED or INSTALL_CONFLICT
   * (with every finding) and changes nothing when refused.
   */
  async install(
    source: string | Buffer,
    options: InstallOptions = {},
  ): Promise<{ plugin: PluginInfo; outcome: InstallOutcome }> {
    this.#assertOpen();
    return this.#installs.install(source, options);
  }

  /** Uninstalls an external plugin; refused while enabled plugins depend on it, unless forced. */
  async uninstall(id: string, options: ActorOption & ForceOption = {}): Promise<void> {
    this.#assertOpen();
    return this.#installs.uninstall(id, options);
  }

  /** Validates and loads a plugin's files again; when they fail, the loaded version keeps serving. */
  async reload(id: string, options: ActorOption = {}): Promise<PluginInfo> {
    this.#assertOpen();
    return reload(this.#core, id, options);
  }

  /** The last validation of an external plugin: findings, digest, signer. */
  validation(id: string): ExternalRecord {
    const record = this.#externals().get(id);
    if (!record) {
      this.registry.get(id);
      return { id, dir: '', findings: [], digest: null, signer: null };
    }
    return record;
  }

  #externals(): ExternalPlugins {
    if (!this.#external) throw createError('MANAGER_SHUT_DOWN', {});
    return this.#external;
  }

  /** Stops everything the manager started and closes the store. Safe to call twice. */
  async shutdown(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#watcher.stopTimers();
    this.#autoRollback.close();
    this.#monitor?.stop();
    this.#revocations.close();
    await this.#cluster?.stop();
    await this.#watcher.close();
    await this.#locks.drain();
    await this.#external?.closeAll();
    if (this.config.confinementReport) overrideConfinement(null);
    await this.#store?.close();
    this.#store = undefined;
    this.log.flush?.();
  }

  #assertOpen(): void {
    if (this.#state === 'closed') throw createError('MANAGER_SHUT_DOWN', {});
  }
}

/**
 * Makes a ready plugin manager: configuration checked, store open,
 * built-ins registered, saved state restored.
 *
 * @example
 * const manager = await createPluginManager({ dataDir: 'data', allowUnsigned: false });
 */
export async function createPluginManager(options: PluginManagerOptions = {}): Promise<PluginManager> {
  const manager = new PluginManager(options);
  await manager.initialize();
  return manager;
}
