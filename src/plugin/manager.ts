/**
 * PluginManager: the host's front door for plugins. It owns the registry and
 * the state store, registers the built-ins, restores what the operator set
 * (enabled/disabled) and writes every change to the store and the audit log.
 * An orchestrator, so longer than most files.
 */

import { existsSync, mkdirSync, statSync } from 'node:fs';
import { chmod, cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { type FSWatcher, watch } from 'chokidar';
import { type Alert, AlertBus, type AlertInput, type AlertListener, isAlertCode } from '../alerts.ts';
import { createError } from '../errors.ts';
import { createLogger, type PinoLogger } from '../log.ts';
import { BUILTIN_PROCESSORS, builtInPluginId } from '../processors/index.ts';
import {
  type ConfinementReport,
  configureSandboxUid,
  overrideConfinement,
  probeConfinement,
} from '../sandbox/confinement.ts';
import type { ResourceLimits } from '../sandbox/limits.ts';
import { ResourceMonitor, type UsageSample } from '../sandbox/monitor.ts';
import type { SandboxAlert, SandboxHost } from '../sandbox/sandbox-host.ts';
import type { Processor, ProcessorInfo } from '../sdk/index.ts';
import { openPostgresStore } from '../store/postgres.ts';
import { openSqliteStore } from '../store/sqlite.ts';
import type { StateStore } from '../store/types.ts';
import { readBundle, writeEntries } from './bundle.ts';
import { type ClusterHost, ClusterNode } from './cluster.ts';
import { type PluginManagerConfig, type PluginManagerOptions, resolveConfig } from './config.ts';
import { ExternalPlugins, type ExternalRecord } from './external.ts';
import { MAX_DEPTH } from './files.ts';
import type { Finding, FindingCode } from './findings.ts';
import { revocationFindings, revocationsFingerprint } from './guards.ts';
import {
  type InstallContext,
  type InstallOutcome,
  install,
  isReservedName,
  PREVIOUS,
  recoverInstalls,
  removePluginFolder,
} from './installer.ts';
import {
  type ConfinementInfo,
  confinementOf,
  type IsolationStatus,
  isolationStatus,
  type SandboxIsolation,
  sandboxIsolation,
} from './isolation.ts';
import { KeyedQueue } from './keyed-queue.ts';
import { Namespaces } from './namespaces.ts';
import { type PluginStatistics, PluginStats } from './plugin-stats.ts';
import { PluginRegistry, type RegistryListener } from './registry.ts';
import { TrustStore } from './trust.ts';
import type { PluginInfo, PluginQuery, RegistryStats, SignatureInfo } from './types.ts';

/** Findings that mean a release's signature or checksums do not hold. */
const INVALID_SIGNATURE_CODES: readonly FindingCode[] = [
  'SIGNATURE_INVALID',
  'KEY_REVOKED',
  'NAMESPACE_FORBIDDEN',
  'CHECKSUM_MISMATCH',
  'FILE_MISSING',
  'FILE_UNLISTED',
];

import { type TrustPolicy, UNSIGNED_ACCEPTED, type UnsignedAcceptance, type ValidationReport } from './validator.ts';

/** How often the revocation lists are looked at for changes this manager did not hear of. */
const REVOCATION_CHECK_MS = 2000;

/** Who asked for a change, for the audit log (`cli:alice`, `api`, `embed`). */
export interface ActorOption {
  actor?: string;
}

export interface ForceOption {
  /** Do it even though enabled plugins depend on the target. */
  force?: boolean;
}

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
      this.#withdrawRevoked(actor).catch((err) =>
        this.log.error({ err: (err as Error).message, actor }, 'stopping revoked plugins failed'),
      ),
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
  /** Changes to one plugin, one at a time. */
  readonly #locks = new KeyedQueue();
  #watcher: FSWatcher | undefined;
  readonly #probation = new Map<string, { version: string; end: () => void }>();
  readonly #debounce = new Map<string, NodeJS.Timeout>();
  /** Plugin folder names that got another folder since they were last watched. */
  readonly #replaced = new Set<string>();
  #revocationTimer: NodeJS.Timeout | undefined;
  #revocationCheck: Promise<void> = Promise.resolve();

  /** Prefer `createPluginManager()`, which also initializes. Throws CONFIG_INVALID on bad options. */
  constructor(options: PluginManagerOptions = {}) {
    this.config = resolveConfig(options);
    this.log = createLogger(this.config.logLevel, this.config.logDestination);
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
      const stateFile = join(this.config.dataDir, 'state.db');
      // a read-only look makes nothing: a state database not there yet is an empty one
      const readOnly = this.config.readOnly;
      if (!readOnly) {
        mkdirSync(dirname(this.config.dataDir), { recursive: true });
        mkdirSync(this.config.dataDir, { recursive: true, mode: 0o700 });
      }
      this.#store = this.config.store
        ? await openPostgresStore({ url: this.config.store })
        : await openSqliteStore({ file: readOnly && !existsSync(stateFile) ? ':memory:' : stateFile });
      if (this.config.builtins) {
        for (const builtin of BUILTIN_PROCESSORS)
          this.registerBuiltInProcessor(builtin.type, builtin.factory, builtin.info);
      }
      await this.#restoreEnabledStates();
      if (!readOnly) mkdirSync(this.config.pluginDir, { recursive: true });
      // a report given for tests stands for the probe's, for the spawn path too (process-wide, as the probe's cache is)
      configureSandboxUid(this.config.sandboxUid);
      if (this.config.confinementReport) overrideConfinement(this.config.confinementReport);
      this.#confinement = await probeOrNone();
      if (this.#confinement.level !== 'full') {
        this.log.warn(
          {
            level: this.#confinement.level,
            missing: this.#confinement.missing,
            weakAccepted: this.config.allowWeakIsolation,
          },
          this.config.allowWeakIsolation
            ? 'process sandboxes run with weaker isolation: the operator accepted it'
            : 'process sandboxes cannot be confined fully: plugins that need one are refused (ISOLATION_UNAVAILABLE)',
        );
      }
      this.#external = new ExternalPlugins({
        pluginDir: this.config.pluginDir,
        dataDir: this.config.dataDir,
        registry: this.registry,
        store: this.#store,
        policy: this.policy,
        scanners: this.config.scanners,
        log: this.log,
        inlinePlugins: this.config.inlinePlugins,
        workerPlugins: this.config.workerPlugins,
        confinement: this.#confinement,
        allowWeakIsolation: this.config.allowWeakIsolation,
        defaultLimits: () => this.config.defaultLimits,
        onAlert: (a) => this.#sandboxAlert(a),
      });
      // a read-only look leaves an interrupted install for the next writer to finish
      if (!readOnly)
        for (const note of await recoverInstalls(this.config.pluginDir)) this.log.warn({ note }, 'install recovery');
      if (this.config.autoLoad) await this.#external.loadAll();
      if (this.#store.cluster && this.config.autoLoad) {
        this.#cluster = new ClusterNode(this.#clusterHost(), this.#store.cluster, {
          dataDir: this.config.dataDir,
          heartbeatMs: this.config.heartbeatMs,
        });
        await this.#cluster.start();
      }
      if (this.config.watchChanges) this.#startWatching();
      // after the cluster's catch-up: a lagging node's older folder was replaced by the cluster's release
      await this.#alertRefusedAtStart();
      await this.#watchRevocations();
      this.#monitor = new ResourceMonitor({
        intervalMs: this.config.monitorInterval,
        sandboxes: () => this.#external?.sandboxes() ?? [],
        onAlert: (a) => this.#sandboxAlert(a),
      });
      this.#monitor.start();
      this.#state = 'ready';
      const stats = this.registry.stats();
      this.log.info(
        {
          plugins: stats.total,
          builtin: stats.bySource.builtin,
          external: stats.bySource.external,
          failed: stats.byStatus.error,
        },
        'plugin manager ready',
      );
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
    const plugin = this.registry.get(id);
    if (plugin.source === 'builtin') return { state: 'builtin', publisher: null, keyId: null };
    const record = this.#external?.get(id);
    const codes = new Set((record?.findings ?? []).map((f) => f.code));
    const signer = record?.signer ?? null;
    const base = { publisher: signer?.publisher ?? null, keyId: signer?.keyId ?? null };
    if (INVALID_SIGNATURE_CODES.some((c) => codes.has(c))) return { state: 'invalid', ...base };
    const accepted = record?.acceptedUnsigned ? { acceptedUnsigned: record.acceptedUnsigned } : {};
    if (codes.has('SIGNATURE_MISSING') || !record) return { state: 'unsigned', ...base, ...accepted };
    if (codes.has('PUBLISHER_UNTRUSTED') || !signer) return { state: 'untrusted', ...base, ...accepted };
    return { state: 'trusted', ...base };
  }

  #signed(info: PluginInfo): PluginInfo {
    const confinement = this.#confinement ? this.#confinementOfInfo(info) : undefined;
    return { ...info, signature: this.signatureOf(info.id), ...(confinement ? { confinement } : {}) };
  }

  /**
   * What this host can confine a process sandbox with, probed once at start
   * (or the report the manager was given).
   */
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
    return this.#confinementOfInfo(this.registry.get(id));
  }

  /** What holds a running sandbox: its mode, level, what holds (bwrap, cgroup, prlimit, network) and what is missing. */
  sandboxIsolation(sandbox: SandboxHost): SandboxIsolation {
    const declaresNetwork = sandbox.plugins.some((id) => this.#external?.declaresNetwork(id));
    return sandboxIsolation(
      sandbox.mode,
      this.confinement,
      this.config.allowWeakIsolation,
      declaresNetwork,
      sandbox.confinement,
    );
  }

  #confinementOfInfo(plugin: PluginInfo): ConfinementInfo {
    const info = confinementOf(plugin.isolation, this.confinement, this.config.allowWeakIsolation);
    return plugin.source === 'builtin'
      ? { ...info, summary: "built in: ships with DataBridge and runs on the host's thread" }
      : info;
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
    return this.#setEnabled(id, true, options);
  }

  /** Disables a plugin, persistently; refused while enabled plugins depend on it, unless forced. */
  async disable(id: string, options: ActorOption & ForceOption = {}): Promise<PluginInfo> {
    return this.#setEnabled(id, false, options);
  }

  async #setEnabled(id: string, enabled: boolean, options: ActorOption & ForceOption): Promise<PluginInfo> {
    this.#assertOpen();
    const action = enabled ? 'enable' : 'disable';
    const actor = options.actor ?? 'embed';
    let info: PluginInfo;
    try {
      await this.store.ping();
      info = this.registry.setEnabled(id, enabled, { force: options.force });
    } catch (err) {
      return this.#refused(actor, action, id, err);
    }
    await this.store.savePluginState(id, { enabled, version: info.version });
    await this.store.appendAudit({
      actor,
      action,
      target: id,
      result: 'ok',
      details: options.force ? { force: true } : null,
    });
    this.log.info({ plugin: id, actor }, `plugin ${action}d`);
    await this.#share(() => this.#cluster?.changed(action, id), id);
    return info;
  }

  /** Whether the state store answers (within two seconds). */
  async storeStatus(): Promise<{ kind: string; location: string; up: boolean; error: string | null }> {
    const store = this.store;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        store.ping(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('no answer within 2 s')), 2000);
        }),
      ]);
      return { kind: store.kind, location: store.location, up: true, error: null };
    } catch (err) {
      return { kind: store.kind, location: store.location, up: false, error: (err as Error).message };
    } finally {
      clearTimeout(timer);
    }
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

  /** What the installer needs of this manager: where, the store, checks, loading, the per-plugin lock. */
  #installContext(): InstallContext {
    const external = this.#externals();
    return {
      pluginDir: this.config.pluginDir,
      store: this.store,
      limits: this.config.bundleLimits,
      // a replica is what the cluster accepted: validated as a load, without a trial load or a dependency veto
      validate: (dir, o) =>
        o.replica ? external.validate(dir, { checkRollback: false }) : external.check(dir, { force: o.force }),
      activate: async (dir, report) => {
        await external.activate(dir, report, report.manifest!.id);
      },
      lock: (id, fn) => this.#withLock(id, fn),
      installed: () => this.registry.list().filter((p) => p.source !== 'builtin'),
    };
  }

  /** What the cluster node applies here of the other nodes' changes. */
  #clusterHost(): ClusterHost {
    return {
      registry: this.registry,
      store: this.store,
      log: this.log,
      pluginDir: this.config.pluginDir,
      digestOf: (id) =>
        this.registry.has(id) && this.registry.get(id).status !== 'error'
          ? (this.#external?.get(id)?.digest ?? null)
          : null,
      applyRelease: async (bytes) => {
        const outcome = await install(this.#installContext(), { bundle: bytes }, { replica: true });
        await this.store.appendAudit({
          actor: `cluster:${this.#cluster?.id ?? 'node'}`,
          action: 'replicate',
          target: outcome.id,
          result: 'ok',
          details: { version: outcome.version, digest: outcome.digest },
        });
      },
      applyUninstall: async (id) => {
        this.registry.unregister(id, { force: true });
        await removePluginFolder(this.config.pluginDir, id);
        this.#externals().forget(id);
      },
      applyEnabled: async (id, enabled) => {
        this.registry.setEnabled(id, enabled, { force: true });
      },
      applyReload: (id) => this.#externals().reload(id),
      applyTrust: (origin) => this.#withdrawRevoked(`cluster:${origin}`),
      applyNamespace: async (name) => {
        const record = await this.store.getNamespace(name);
        this.#external?.applyLimits(name, record?.limits ?? this.config.defaultLimits);
      },
      withLock: (id, fn) => this.#withLock(id, fn),
      alert: (plugin, message) =>
        void this.raiseAlert({ code: 'CLUSTER_SYNC_FAILED', plugin, processor: null, message }),
    };
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

  /** Listens to alerts (parallel; a listener that throws is ignored); returns the function that stops listening. */
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
  statsOf(id: string): {
    stats: PluginStatistics;
    sandbox: null | {
      mode: string;
      state: string;
      limits: ResourceLimits;
      restarts: number;
      crashes: number;
      timeouts: number;
      lastCrash: string | null;
      usage: UsageSample | null;
      history: UsageSample[];
      isolation: SandboxIsolation;
    };
  } {
    this.registry.get(id);
    const s = this.sandboxOf(id);
    return {
      stats: this.pluginStats.get(id),
      sandbox: s
        ? {
            mode: s.mode,
            state: s.state,
            limits: s.limits,
            restarts: s.stats.restarts,
            crashes: s.stats.crashes,
            timeouts: s.stats.timeouts,
            lastCrash: s.stats.lastCrash,
            usage: this.#monitor?.latest(s.namespace) ?? null,
            history: this.#monitor?.history(s.namespace) ?? [],
            isolation: this.sandboxIsolation(s),
          }
        : null,
    };
  }

  /** The sandbox an external plugin runs in (none for built-ins and inline plugins). */
  sandboxOf(id: string): SandboxHost | undefined {
    return this.#external?.sandboxOf(id);
  }

  /**
   * Watches a freshly upgraded plugin: a sandbox crash, timeout, memory
   * kill or protocol violation, or `maxFailures` failed sessions within the probation window, and
   * the previous version (kept in `.previous/`) is put back.
   */
  #startProbation(id: string, version: string): void {
    const { enabled, probationMs, maxFailures } = this.config.autoRollback;
    if (!enabled || probationMs === 0) return;
    this.#probation.get(id)?.end();
    let failures = 0;
    const fatal = new Set([
      'SANDBOX_CRASHED',
      'EXECUTION_TIMEOUT',
      'MEMORY_LIMIT',
      'SANDBOX_FAILED',
      'SANDBOX_PROTOCOL_VIOLATION',
      'PROCESSOR_INIT_FAILED',
    ]);
    const off = this.onAlert((alert) => {
      if (alert.plugin !== id) return;
      if (alert.code === 'PROCESSOR_FAILED') failures++;
      const why = fatal.has(alert.code)
        ? `${alert.code}: ${alert.message}`
        : failures >= maxFailures
          ? `${failures} failed sessions: ${alert.message}`
          : null;
      if (why === null) return;
      end();
      void this.#rollBack(id, version, why).catch((err) =>
        this.log.error({ plugin: id, err: (err as Error).message }, 'automatic rollback failed'),
      );
    });
    const timer = setTimeout(() => end(), probationMs);
    timer.unref();
    const end = () => {
      off();
      clearTimeout(timer);
      if (this.#probation.get(id)?.end === end) this.#probation.delete(id);
    };
    this.#probation.set(id, { version, end });
  }

  async #rollBack(id: string, badVersion: string, reason: string): Promise<void> {
    if (this.#state !== 'ready') return;
    const previous = join(this.config.pluginDir, PREVIOUS, id);
    if (!existsSync(previous)) return;
    const copy = await mkdtemp(join(tmpdir(), 'databridge-rollback-'));
    try {
      // the install replaces .previous/ with the bad version: install from a copy of the good one
      await cp(previous, join(copy, id), { recursive: true });
      const { outcome } = await this.install(join(copy, id), { force: true, actor: 'auto-rollback' });
      await this.store.recordInstall({
        pluginId: id,
        version: outcome.version,
        digest: outcome.digest,
        action: 'rollback',
        actor: 'auto-rollback',
      });
      await this.store.appendAudit({
        actor: 'auto-rollback',
        action: 'rollback',
        target: id,
        result: 'ok',
        details: { from: badVersion, to: outcome.version, reason },
      });
      this.raiseAlert({
        code: 'AUTO_ROLLBACK',
        plugin: id,
        processor: null,
        message: `${id} ${badVersion} was replaced by ${outcome.version} during its probation: ${reason}`,
      });
    } finally {
      await rm(copy, { recursive: true, force: true });
    }
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
  async validate(
    target: string,
    options: {
      signatureOnly?: boolean;
      /** Past the rollback guard, as a forced install. */
      force?: boolean;
      /** Plugins (id → version) taken as installed: the other members of a set installed together. */
      assume?: ReadonlyMap<string, string>;
    } = {},
  ): Promise<ValidationReport> {
    this.#assertOpen();
    const external = this.#externals();
    // verify checks the signature only; validate what an install checks, a trial load included
    // (`assume`: plugins of a catalog set, counted as installed for the dependency check)
    const assumed = options.assume ? { installed: new Map([...external.installed(), ...options.assume]) } : {};
    const check = (dir: string) =>
      options.signatureOnly
        ? external.validate(dir, { checkRollback: false, signatureOnly: true })
        : external.check(dir, { force: options.force, ...assumed });
    if (statSync(target).isDirectory()) return check(target);
    const { entries, findings } = await readBundle(target, this.config.bundleLimits);
    const empty = { manifest: null, files: [], digest: null, statement: null, signer: null };
    if (findings.length) return { valid: false, findings, ...empty };
    const work = await mkdtemp(join(tmpdir(), 'databridge-validate-'));
    try {
      // the trial load's sandbox runs as another uid: it must read the extracted files
      await chmod(work, 0o755);
      await writeEntries(join(work, 'plugin'), entries);
      return await check(join(work, 'plugin'));
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  /**
   * Installs a `.tgz` bundle (a path or its bytes) or a plugin folder: checked,
   * staged, validated, moved in at once, loaded, recorded in the install
   * history and the audit log. Throws INSTALL_REFUSED or INSTALL_CONFLICT
   * (with every finding) and changes nothing when refused.
   */
  async install(
    source: string | Buffer,
    options: ActorOption & {
      force?: boolean;
      /** Plugins installed in the same set (a catalog install): the dependents guard leaves their ranges to the set. */
      together?: ReadonlySet<string>;
    } = {},
  ): Promise<{ plugin: PluginInfo; outcome: InstallOutcome }> {
    this.#assertOpen();
    const actor = options.actor ?? 'embed';
    const from = typeof source === 'string' && statSync(source).isDirectory() ? { folder: source } : { bundle: source };
    let outcome: InstallOutcome;
    let settled: { plugin: PluginInfo } | Error | null = null;
    // recorded, audited and read back inside the plugin's lock: an uninstall racing this install
    // comes after all of it, so the answer is the plugin as this install left it
    const settle = async (done: InstallOutcome) => {
      try {
        await this.store.recordInstall({
          pluginId: done.id,
          version: done.version,
          digest: done.digest,
          action: done.action,
          actor,
        });
        if (done.action === 'upgrade') this.#startProbation(done.id, done.version);
        // let in by --allow-unsigned: recorded for this release, so that every later load (and node) honours it
        const acceptedUnsigned = this.config.allowUnsigned && !this.#external?.get(done.id)?.signer;
        if (acceptedUnsigned) {
          const acceptance: UnsignedAcceptance = { actor, at: new Date().toISOString() };
          await this.store.saveScanResult(done.digest, UNSIGNED_ACCEPTED, acceptance);
          const record = this.#external?.get(done.id);
          if (record) record.acceptedUnsigned = acceptance;
        }
        await this.store.appendAudit({
          actor,
          action: 'install',
          target: done.id,
          result: 'ok',
          details: {
            version: done.version,
            digest: done.digest,
            kind: done.action,
            force: options.force ?? false,
            ...(acceptedUnsigned ? { acceptedUnsigned: true } : {}),
          },
        });
        this.log.info({ plugin: done.id, version: done.version, actor }, `plugin ${done.action}`);
        settled = { plugin: this.registry.get(done.id) };
      } catch (err) {
        // the plugin is in: a failure of the bookkeeping is not a refused install
        settled = err as Error;
      }
    };
    try {
      // a store that is away refuses the change before anything moves
      await this.store.ping();
      outcome = await install(
        this.#installContext(),
        from,
        { force: options.force, together: options.together },
        settle,
      );
    } catch (err) {
      return this.#refused(actor, 'install', typeof source === 'string' ? source : '(upload)', err);
    }
    const result = settled as { plugin: PluginInfo } | Error | null;
    if (result instanceof Error || !result) throw result ?? createError('INTERNAL', {});
    // the install moved a new folder in: watched from now on (its rename event would say so too, later)
    this.#rewatch(join(this.config.pluginDir, outcome.id));
    // outside the lock: when another node's higher version won, publishing installs that one here, under the lock
    await this.#share(() => this.#cluster?.published(outcome.id), outcome.id);
    return { plugin: result.plugin, outcome };
  }

  /** Uninstalls an external plugin; refused while enabled plugins depend on it, unless forced. */
  async uninstall(id: string, options: ActorOption & ForceOption = {}): Promise<void> {
    this.#assertOpen();
    const actor = options.actor ?? 'embed';
    await this.#withLock(id, async () => {
      try {
        const info = this.registry.get(id);
        if (info.source === 'builtin') throw createError('PLUGIN_BUILTIN', { id, action: 'uninstall' });
        await this.store.ping();
        this.registry.unregister(id, { force: options.force });
      } catch (err) {
        return this.#refused(actor, 'uninstall', id, err);
      }
      const state = await this.store.getPluginState(id);
      await removePluginFolder(this.config.pluginDir, id);
      this.#externals().forget(id);
      await this.store.savePluginState(id, { version: null });
      await this.store.recordInstall({
        pluginId: id,
        version: state?.version ?? '0.0.0',
        digest: null,
        action: 'uninstall',
        actor,
      });
      await this.store.appendAudit({
        actor,
        action: 'uninstall',
        target: id,
        result: 'ok',
        details: options.force ? { force: true } : null,
      });
      this.log.info({ plugin: id, actor }, 'plugin uninstalled');
      await this.#share(() => this.#cluster?.removed(id), id);
    });
  }

  /** Validates and loads a plugin's files again; when they fail, the loaded version keeps serving. */
  async reload(id: string, options: ActorOption = {}): Promise<PluginInfo> {
    this.#assertOpen();
    const actor = options.actor ?? 'embed';
    return this.#withLock(id, async () => {
      if (this.registry.get(id).source === 'builtin') throw createError('PLUGIN_BUILTIN', { id, action: 'reload' });
      try {
        await this.#externals().reload(id);
      } catch (err) {
        await this.#refusedRollback(id, actor);
        return this.#refused(actor, 'reload', id, err);
      }
      await this.store.appendAudit({ actor, action: 'reload', target: id, result: 'ok', details: null });
      await this.#share(() => this.#cluster?.changed('reload', id), id);
      return this.registry.get(id);
    });
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

  /** Records a refused change in the audit log (its code, and its findings' codes) and throws the error on. */
  async #refused(actor: string, action: string, target: string, err: unknown): Promise<never> {
    const e = err as { code?: string; details?: { findings?: { code: string }[] } | null };
    const findings = e.details?.findings?.map((f) => f.code);
    await this.store.appendAudit({
      actor,
      action,
      target,
      result: 'refused',
      details: findings ? { code: e.code ?? 'ERROR', findings } : { code: e.code ?? 'ERROR' },
    });
    throw err;
  }

  /** Runs `fn` when no other change to the same plugin is under way (mutations are serialized per plugin). */
  #withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.#locks.run(id, fn);
  }

  #externals(): ExternalPlugins {
    if (!this.#external) throw createError('MANAGER_SHUT_DOWN', {});
    return this.#external;
  }

  #startWatching(): void {
    const root = this.config.pluginDir;
    this.#watcher = watch(root, {
      ignoreInitial: true,
      // as deep as a plugin's folders may nest, under the plugin's own folder: a file changed anywhere in it is seen
      depth: MAX_DEPTH + 1,
      ignored: (path) => {
        const first = relative(root, path).split(sep)[0] ?? '';
        return first !== '' && isReservedName(first);
      },
    });
    const changed = (name: string | undefined, replaced: boolean) => {
      if (!name || isReservedName(name)) return;
      clearTimeout(this.#debounce.get(name));
      if (replaced) this.#replaced.add(name);
      this.#debounce.set(
        name,
        setTimeout(() => {
          this.#debounce.delete(name);
          // the folder now at this name is another one: watch it, not the one moved away; changes made while the
          // new watch is being set up are not reported by it, so the folder is looked at once more when it is
          if (this.#replaced.delete(name)) {
            this.#rewatch(join(root, name));
            setTimeout(() => changed(name, false), Math.max(500, this.config.watchDebounceMs)).unref();
          }
          void this.#folderChanged(name).catch((err) =>
            this.log.error({ plugin: name, err: (err as Error).message }, 'reload after a change failed'),
          );
        }, this.config.watchDebounceMs),
      );
    };
    this.#watcher.on('all', (_event, path) => changed(relative(root, path).split(sep)[0], false));
    // a folder renamed over another (an install's move, or by hand) keeps its name, so chokidar sees no change and
    // keeps watching the folder moved away; the plugin directory's own rename event says a name got a new folder
    this.#watcher.on('raw', (event, path, details) => {
      const watched = (details as { watchedPath?: string } | undefined)?.watchedPath;
      if (event === 'rename' && watched !== undefined && resolve(watched) === root && !path.includes(sep))
        changed(path, true);
    });
    this.#watcher.on('error', (err) =>
      this.log.error({ err: (err as Error).message }, 'watching the plugin directory failed'),
    );
  }

  /** Watches the folder now at `dir` in place of the one that was there. */
  #rewatch(dir: string): void {
    const watcher = this.#watcher;
    if (!watcher) return;
    watcher.unwatch(dir);
    if (existsSync(dir)) watcher.add(dir);
  }

  /** A plugin folder was added, changed or removed. */
  async #folderChanged(name: string): Promise<void> {
    if (this.#state !== 'ready') return;
    const dir = join(this.config.pluginDir, name);
    await this.#withLock(name, async () => {
      if (!existsSync(dir)) {
        if (this.registry.has(name) && this.registry.get(name).source === 'external') {
          this.registry.unregister(name, { force: true });
          this.#externals().forget(name);
          await this.store.appendAudit({
            actor: 'watcher',
            action: 'unload',
            target: name,
            result: 'ok',
            details: null,
          });
          this.log.info({ plugin: name }, 'plugin folder removed; unloaded');
        }
        return;
      }
      const external = this.#externals();
      const report = await external.validate(dir);
      const known = this.registry.has(name) && this.registry.get(name).status !== 'error';
      // an install (or a touch) that left the same bytes in place is no change
      if (known && report.digest !== null && report.digest === external.get(name)?.digest) return;
      const ok = await external.activate(dir, report, name);
      if (ok) {
        await this.store.appendAudit({
          actor: 'watcher',
          action: 'reload',
          target: name,
          result: 'ok',
          details: { digest: report.digest },
        });
        // a folder put in place by hand on a cluster node is a release for every node
        await this.#share(() => this.#cluster?.published(name), name);
      } else {
        const codes = [
          ...new Set(
            external
              .get(name)
              ?.findings.filter((f) => f.severity === 'error')
              .map((f) => f.code),
          ),
        ];
        if (known)
          this.registry.setNotice(
            name,
            `the changed files were refused (${codes.join(', ')}); the loaded version keeps serving`,
          );
        await this.#refusedRollback(name, 'watcher');
        await this.store.appendAudit({
          actor: 'watcher',
          action: 'reload',
          target: name,
          result: 'refused',
          details: { codes },
        });
      }
    });
  }

  /**
   * A release refused for VERSION_ROLLBACK or VERSION_CONFLICT where it was
   * found in the plugin directory (a folder swapped by hand): an alert, for
   * it is what an attacker with write access to the folder would do.
   */
  #alertRollback(id: string, findings: readonly Finding[]): void {
    for (const f of findings) {
      if (f.severity !== 'error' || (f.code !== 'VERSION_ROLLBACK' && f.code !== 'VERSION_CONFLICT')) continue;
      this.raiseAlert({ code: f.code, plugin: id, processor: null, message: `${id}: ${f.message}` });
    }
  }

  /**
   * A reload (watcher or API) refused the plugin folder for the rollback
   * guard. The release that serves keeps serving only while its files are
   * still on disk: swapped out, a restart of its sandbox could not load it
   * again, so it stops now, in `error` saying what was found.
   */
  async #refusedRollback(id: string, actor: string): Promise<void> {
    const external = this.#externals();
    const record = external.get(id);
    const findings = (record?.findings ?? []).filter(
      (f) => f.severity === 'error' && (f.code === 'VERSION_ROLLBACK' || f.code === 'VERSION_CONFLICT'),
    );
    if (findings.length === 0) return;
    this.#alertRollback(id, findings);
    const running = external.running().find((r) => r.id === id);
    if (!running || (record?.digest && record.digest === running.digest)) return;
    const why = findings.map((f) => ({
      ...f,
      message: `${f.message}; ${running.version}, which served, is no longer on disk and was stopped`,
    }));
    if (!(await external.withdraw(id, why))) return;
    await this.store.appendAudit({
      actor,
      action: 'withdraw',
      target: id,
      result: 'ok',
      details: { version: running.version, codes: why.map((f) => f.code), reason: why[0]!.message },
    });
  }

  /** Alerts and audits each plugin the start refused for the rollback guard, and still holds in `error`. */
  async #alertRefusedAtStart(): Promise<void> {
    for (const plugin of this.registry.list()) {
      if (plugin.source !== 'external' || plugin.status !== 'error') continue;
      const findings = (this.#external?.get(plugin.id)?.findings ?? []).filter(
        (f) => f.severity === 'error' && (f.code === 'VERSION_ROLLBACK' || f.code === 'VERSION_CONFLICT'),
      );
      if (findings.length === 0) continue;
      this.#alertRollback(plugin.id, findings);
      await this.store.appendAudit({
        actor: 'start',
        action: 'load',
        target: plugin.id,
        result: 'refused',
        details: { codes: findings.map((f) => f.code), version: plugin.version, message: findings[0]!.message },
      });
    }
  }

  /**
   * Revocations made where this manager does not hear of them (the CLI on
   * the same data directory, a one-shot command on a cluster's database)
   * are found by looking at the revocation lists every few seconds; a change
   * seen here (the API, the embedding program, another cluster node's
   * notification) is acted on at once.
   */
  async #watchRevocations(): Promise<void> {
    let seen = await revocationsFingerprint(this.store);
    this.#revocationTimer = setInterval(() => {
      void (async () => {
        const now = await revocationsFingerprint(this.store);
        if (now === seen) return;
        await this.#withdrawRevoked('trust-store');
        // seen only once acted on: a store that went away meanwhile (reported by /healthz) is tried again next time
        seen = now;
      })().catch((err) => this.log.debug({ err: (err as Error).message }, 'checking the revocation lists failed'));
    }, REVOCATION_CHECK_MS);
    this.#revocationTimer.unref();
  }

  /** Checks every running plugin against the revocation lists, one check at a time. */
  #withdrawRevoked(actor: string): Promise<void> {
    const run = this.#revocationCheck.then(() => this.#withdrawEach(actor));
    this.#revocationCheck = run.catch(() => {});
    return run;
  }

  /**
   * Stops each running plugin whose key or release is revoked: its sandbox
   * closed at once (what it ran is rolled back), status `error` with the
   * code, an alert, an audit entry. The flow stops its processors; their
   * queues keep what they hold.
   */
  async #withdrawEach(actor: string): Promise<void> {
    const external = this.#external;
    if (!external || this.#state === 'closed') return;
    // a sandbox replaced by an upgrade may still be finishing tasks of a revoked release: closed first, at once
    for (const { sandbox, release } of external.retiring()) {
      const findings = await revocationFindings(this.store, release);
      if (findings.length === 0) continue;
      await sandbox.close();
      this.log.warn(
        { plugin: release.id, version: release.version, actor },
        'revoked release’s retiring sandbox stopped',
      );
    }
    let failed: unknown = null;
    for (const release of external.running()) {
      // one plugin that cannot be stopped (the store went away mid-way) does not keep the others running
      await this.#withdrawOne(external, release.id, actor).catch((err) => {
        failed = err;
        this.log.error({ plugin: release.id, err: (err as Error).message }, 'stopping a revoked plugin failed');
      });
    }
    if (failed) throw failed;
  }

  /** Stops one plugin if the release it runs is revoked (under its lock: a reload or install may swap it meanwhile). */
  async #withdrawOne(external: ExternalPlugins, id: string, actor: string): Promise<void> {
    const running = external.running().find((r) => r.id === id);
    if (!running || (await revocationFindings(this.store, running)).length === 0) return;
    await this.#withLock(id, async () => {
      const current = external.running().find((r) => r.id === id);
      const findings = current ? await revocationFindings(this.store, current) : [];
      if (!current || findings.length === 0 || !(await external.withdraw(id, findings))) return;
      for (const f of findings) {
        // the lists' findings are KEY_REVOKED and RELEASE_REVOKED, both alert codes
        if (!isAlertCode(f.code)) continue;
        this.raiseAlert({
          code: f.code,
          plugin: id,
          processor: null,
          message: `${id} ${current.version} was stopped: ${f.message}`,
        });
      }
      await this.store.appendAudit({
        actor,
        action: 'withdraw',
        target: id,
        result: 'ok',
        details: {
          version: current.version,
          keyId: current.keyId,
          codes: findings.map((f) => f.code),
          reason: findings[0]!.message,
        },
      });
      this.log.warn({ plugin: id, version: current.version, actor }, 'revoked plugin stopped');
    });
  }

  /** Stops everything the manager started and closes the store. Safe to call twice. */
  async shutdown(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    for (const timer of this.#debounce.values()) clearTimeout(timer);
    for (const p of this.#probation.values()) p.end();
    this.#monitor?.stop();
    clearInterval(this.#revocationTimer);
    await this.#cluster?.stop();
    await this.#watcher?.close();
    await this.#locks.drain();
    await this.#external?.closeAll();
    if (this.config.confinementReport) overrideConfinement(null);
    await this.#store?.close();
    this.#store = undefined;
    this.log.flush?.();
  }

  async #restoreEnabledStates(): Promise<void> {
    for (const state of await this.store.listPluginStates()) {
      if (this.registry.has(state.id)) this.registry.setEnabled(state.id, state.enabled, { force: true });
    }
  }

  #assertOpen(): void {
    if (this.#state === 'closed') throw createError('MANAGER_SHUT_DOWN', {});
  }
}

/** The host's confinement; a probe that fails is a host that confines nothing, said so. */
async function probeOrNone(): Promise<ConfinementReport> {
  try {
    return await probeConfinement();
  } catch (err) {
    const detail = `the probe failed: ${(err as Error).message}`;
    return {
      bwrap: { ok: false, path: null, detail },
      cgroup: { version: null, memory: false, cpu: false, pids: false, detail },
      prlimit: false,
      level: 'none',
      missing: [`confinement (${detail})`],
    };
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
