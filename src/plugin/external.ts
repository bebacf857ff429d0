/**
 * External plugins: the plugin directory scanned at start, each folder
 * validated (in parallel) and loaded (dependencies first); a broken one is
 * registered in `error` with its finding codes and the rest load. Reloads
 * validate and load the new files beside the old registration and swap
 * only when they succeed. Each plugin runs in the mode the operator's
 * trust lists and its manifest give it (isolation.ts), loaded by
 * loader.ts in that mode; one that needs a
 * process sandbox on a host that cannot confine it is refused with
 * ISOLATION_UNAVAILABLE unless the operator accepted weaker isolation.
 */

import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import semver from 'semver';
import { createError } from '../errors.ts';
import type { PinoLogger } from '../log.ts';
import type { ConfinementReport } from '../sandbox/confinement.ts';
import { checkGrants, DATABRIDGE_ROOT, folderUnreadable } from '../sandbox/grants.ts';
import type { ResourceLimits } from '../sandbox/limits.ts';
import type { ComponentInfos } from '../sandbox/protocol.ts';
import type { SandboxAlert, SandboxHost } from '../sandbox/sandbox-host.ts';
import type { StateStore } from '../store/types.ts';
import { VERSION } from '../version.ts';
import { errorCodes, type Finding, finding } from './findings.ts';
import { isReservedName } from './installer.ts';
import { isolationUnavailable, modeOf } from './isolation.ts';
import { COMPONENTS_CACHE, dependencyOrder, KINDS, loadPlugin, type SandboxedLoad } from './loader.ts';
import type { PluginManifest } from './manifest.ts';
import type { PluginRegistry } from './registry.ts';
import type { ScannerHook } from './scanner.ts';
import type { PluginRegistration, SandboxMode } from './types.ts';
import { type TrustPolicy, type ValidationReport, validatePluginDir } from './validator.ts';

/** The code of a refusal made before the plugin's module ran (its components are still named), or null. */
function refusedBeforeLoad(findings: readonly Finding[]): string | null {
  const codes = ['ISOLATION_UNAVAILABLE', 'PATH_FORBIDDEN', 'PATH_SYMLINK', 'PATH_NOT_ACCESSIBLE'];
  return findings.find((f) => f.severity === 'error' && codes.includes(f.code))?.code ?? null;
}

export interface ExternalPluginsOptions {
  pluginDir: string;
  dataDir: string;
  registry: PluginRegistry;
  store: StateStore;
  policy: TrustPolicy;
  scanners: readonly ScannerHook[];
  log: PinoLogger;
  /** Plugins (ids, `prefix.*`, `*`) the operator trusts to run on the host's thread. */
  inlinePlugins: readonly string[];
  /** Plugins the operator trusts to run in a worker thread. */
  workerPlugins: readonly string[];
  /** What this host can confine a process sandbox with (probed once, at start). */
  confinement: ConfinementReport;
  /** Load process-mode plugins with what holds when the confinement is not full. */
  allowWeakIsolation: boolean;
  defaultLimits: () => ResourceLimits;
  onAlert: (alert: SandboxAlert) => void;
}

/** What is known of one external plugin: where it is and its last validation. */
export interface ExternalRecord {
  id: string;
  dir: string;
  findings: Finding[];
  digest: string | null;
  signer: ValidationReport['signer'];
  /** Set when an operator installed this release without a trusted signature (`--allow-unsigned`). */
  acceptedUnsigned?: ValidationReport['acceptedUnsigned'];
}

/** A release that serves: its id, version, digest and the key that signed it (null when unsigned, where allowed). */
export interface RunningRelease {
  id: string;
  version: string;
  digest: string | null;
  keyId: string | null;
}

const ID_LIKE = /^[a-zA-Z0-9][a-zA-Z0-9._-]*$/;

export class ExternalPlugins {
  readonly #o: ExternalPluginsOptions;
  readonly #records = new Map<string, ExternalRecord>();
  readonly #sandboxes = new Map<string, SandboxHost>();
  /** Replaced sandboxes finishing their tasks, with the release each ran (a revocation closes them too). */
  readonly #retiring = new Map<SandboxHost, RunningRelease | undefined>();
  /** The release each plugin serves (a refused reload leaves it; its record then holds the refused files'). */
  readonly #running = new Map<string, RunningRelease>();
  /** Whether each loaded plugin's manifest declares `network` (its sandbox then shares the host's network). */
  readonly #network = new Map<string, boolean>();

  constructor(options: ExternalPluginsOptions) {
    this.#o = options;
  }

  get(id: string): ExternalRecord | undefined {
    return this.#records.get(id);
  }

  /** Installed ids and versions, for dependency checks. */
  installed(): Map<string, string> {
    return new Map(this.#o.registry.list().map((p) => [p.id, p.version]));
  }

  /** Component type → the plugin that provides it. */
  components(): Map<string, string> {
    const out = new Map<string, string>();
    for (const p of this.#o.registry.list()) {
      for (const names of Object.values(p.components)) for (const n of names) out.set(n, p.id);
    }
    return out;
  }

  async validate(
    dir: string,
    extra: {
      checkRollback?: boolean;
      force?: boolean;
      signatureOnly?: boolean;
      dependencies?: 'error' | 'warning';
      installed?: ReadonlyMap<string, string>;
    } = {},
  ): Promise<ValidationReport> {
    return validatePluginDir(dir, {
      policy: this.#o.policy,
      store: this.#o.store,
      engineVersion: VERSION,
      installed: this.installed(),
      components: this.components(),
      scanners: this.#o.scanners,
      // what the plugin directory holds meets the rollback guard at every load, not only at install
      checkRollback: 'load',
      ...extra,
    });
  }

  /**
   * What `plugin validate` and an install check: the validation, with unmet
   * dependencies as errors, then, when it is valid, a trial load of the
   * module as the host would run it (in its sandbox), so that a release
   * whose module does not export what its manifest provides, or throws as
   * it loads, is refused before anything moves rather than installed in
   * `error`. Nothing is registered. A host that cannot run the plugin at all
   * (its isolation unavailable, a declared path refused) skips the trial:
   * that is a finding of the load on this host, not of the release.
   */
  async check(
    dir: string,
    extra: { checkRollback?: boolean; force?: boolean; installed?: ReadonlyMap<string, string> } = {},
  ): Promise<ValidationReport> {
    const report = await this.validate(dir, { checkRollback: true, ...extra, dependencies: 'error' });
    const manifest = report.manifest;
    if (!report.valid || !manifest) return report;
    const mode = this.isolationOf(manifest);
    if (mode === 'process') {
      const { confinement, allowWeakIsolation } = this.#o;
      if (confinement.level !== 'full' && !allowWeakIsolation) return report;
      if (this.#grantFindings(dir, manifest, false).length) return report;
    }
    const loaded = await loadPlugin(dir, report, this.#loading(mode));
    await loaded.sandbox?.close();
    if (!loaded.findings.length) return report;
    const findings = [...report.findings, ...loaded.findings];
    return { ...report, findings, valid: !findings.some((f) => f.severity === 'error') };
  }

  /** Loads every plugin folder; returns how many loaded and how many failed. */
  async loadAll(): Promise<{ loaded: number; failed: number }> {
    let names: string[];
    try {
      names = (await readdir(this.#o.pluginDir, { withFileTypes: true }))
        .filter((e) => e.isDirectory() && !isReservedName(e.name))
        .map((e) => e.name)
        .sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { loaded: 0, failed: 0 };
      throw err;
    }
    // validation is I/O and hashing: a few at once; loading follows dependency order
    const reports: { name: string; report: ValidationReport; manifest: ValidationReport['manifest'] }[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(8, names.length) }, async () => {
        while (next < names.length) {
          const name = names[next++]!;
          const report = await this.validate(join(this.#o.pluginDir, name));
          reports.push({ name, report, manifest: report.manifest });
        }
      }),
    );
    let loaded = 0;
    let failed = 0;
    for (const { name, report } of dependencyOrder(reports)) {
      const ok = await this.activate(join(this.#o.pluginDir, name), report, name);
      if (ok) loaded++;
      else failed++;
    }
    return { loaded, failed };
  }

  /**
   * Registers (or replaces) the plugin in `dir` from its validation report.
   * A failure registers it in `error` when it is new, and leaves a loaded
   * version in place when there is one. Returns whether it loaded.
   */
  async activate(dir: string, report: ValidationReport, folderName?: string): Promise<boolean> {
    const { registry, log } = this.#o;
    const manifest = report.manifest;
    const id = manifest?.id ?? placeholderId(folderName ?? dir);
    let findings = report.findings;
    if (manifest && folderName !== undefined && folderName !== manifest.id) {
      findings = [
        ...findings,
        finding('STRUCTURE_INVALID', `the folder is named "${folderName}" but holds plugin ${manifest.id}`),
      ];
    }
    let registration: PluginRegistration | null = null;
    let sandbox: SandboxHost | null = null;
    const { confinement, allowWeakIsolation } = this.#o;
    if (!findings.some((f) => f.severity === 'error') && manifest) {
      const mode = this.isolationOf(manifest);
      if (mode === 'process' && confinement.level !== 'full' && !allowWeakIsolation) {
        findings = [...findings, finding('ISOLATION_UNAVAILABLE', isolationUnavailable(id, confinement).message)];
      }
      if (mode === 'process') findings = [...findings, ...this.#grantFindings(dir, manifest)];
    }
    if (!findings.some((f) => f.severity === 'error')) {
      const mode = this.isolationOf(report.manifest!);
      if (mode === 'process' && confinement.level !== 'full') {
        log.warn(
          { plugin: id, level: confinement.level, missing: confinement.missing },
          'plugin runs with weaker isolation: the operator accepted it',
        );
      }
      const loaded = await loadPlugin(dir, report, this.#loading(mode));
      registration = loaded.registration;
      sandbox = loaded.sandbox;
      findings = [...findings, ...loaded.findings];
    }
    const state = await this.#o.store.getPluginState(id);
    if (registration) {
      registration.enabled = state?.enabled ?? true;
      try {
        if (registry.has(id)) registry.replace(registration);
        else registry.register(registration);
        this.#record(id, dir, findings, report);
        // the old sandbox finishes what it runs, then goes; new sessions already go to the new one
        const old = this.#sandboxes.get(id);
        if (sandbox) this.#sandboxes.set(id, sandbox);
        else this.#sandboxes.delete(id);
        this.#network.set(id, manifest?.permissions?.network === true);
        if (old && old !== sandbox) this.#retire(old, this.#running.get(id));
        log.info({ plugin: id, version: registration.version, isolation: registration.isolation }, 'plugin loaded');
        this.#running.set(id, {
          id,
          version: registration.version,
          digest: report.digest,
          keyId: report.signer?.keyId ?? null,
        });
        await this.#recordLoaded(id, registration.version, report);
        return true;
      } catch (err) {
        findings = [...findings, finding('LOAD_FAILED', (err as Error).message)];
        await sandbox?.close();
      }
    }
    this.#record(id, dir, findings, report);
    const codes = errorCodes(findings);
    const reason = `${codes.join(', ')}: ${findings.find((f) => f.severity === 'error')?.message ?? 'failed'}`;
    log.warn({ plugin: id, codes }, 'plugin failed to load');
    if (!registry.has(id)) {
      registry.register({
        id,
        name: manifest?.name ?? id,
        version: manifest?.version && /^\d+\.\d+\.\d+/.test(manifest.version) ? manifest.version : '0.0.0',
        type: manifest?.type ?? 'processor',
        source: 'external',
        publisher: manifest?.publisher,
        description: manifest?.description,
        tags: manifest?.tags,
        enabled: state?.enabled ?? true,
        isolation: manifest ? this.isolationOf(manifest) : 'process',
        // refused before loading, it still names what it provides: a flow that uses one is told why, not 'unknown type'
        ...(manifest && refusedBeforeLoad(findings)
          ? await this.#unavailableComponents(manifest, report, refusedBeforeLoad(findings)!)
          : {}),
      });
      registry.setLoadState(id, { failure: reason });
    }
    return false;
  }

  /**
   * The components of a plugin refused before it loaded, as its last load
   * of these bytes said (kept by digest) or else as its manifest declares
   * them. Their factories are never called: the registry refuses a
   * component of a plugin in error first (PLUGIN_FAILED, with the reason).
   */
  async #unavailableComponents(
    manifest: PluginManifest,
    report: ValidationReport,
    reason: string,
  ): Promise<Pick<PluginRegistration, 'processors' | 'controllerServices' | 'reportingTasks'>> {
    const known = report.digest
      ? ((await this.#o.store.getScanResult(report.digest, COMPONENTS_CACHE)) as ComponentInfos | undefined)
      : undefined;
    const out: Record<string, Record<string, { factory: () => never; info: unknown }>> = {};
    for (const kind of KINDS) {
      out[kind] = {};
      for (const declared of manifest.provides[kind] ?? []) {
        const d = typeof declared === 'string' ? { name: declared } : declared;
        const info = known?.[kind]?.[d.name] ?? {
          name: d.name,
          description: d.description ?? manifest.description ?? '',
          version: manifest.version,
          tags: d.tags ?? [],
          properties: [],
          relationships: [],
        };
        const factory = (): never => {
          throw createError('PLUGIN_FAILED', { id: manifest.id, component: d.name, reason });
        };
        out[kind][d.name] = { factory, info };
      }
    }
    return out as Pick<PluginRegistration, 'processors' | 'controllerServices' | 'reportingTasks'>;
  }

  /** Validates and loads the plugin's folder again; on failure the loaded version stays. */
  async reload(id: string): Promise<void> {
    const record = this.#records.get(id);
    if (!record) throw createError('PLUGIN_NOT_FOUND', { id });
    const report = await this.validate(record.dir);
    const wasLoaded = this.#o.registry.get(id).status !== 'error';
    const ok = await this.activate(record.dir, report, id);
    if (!ok) {
      const codes = errorCodes(this.#records.get(id)!.findings);
      throw createError(
        'RELOAD_FAILED',
        { id, codes },
        { details: { findings: this.#records.get(id)!.findings, kept: wasLoaded } },
      );
    }
  }

  /**
   * Raises the rollback guard to a release that loaded above it (a folder
   * put in place by hand), so that a lower one swapped in later is refused.
   * Its digest is kept when a trusted key signed it: an unsigned release
   * (where the policy allows one) can be rebuilt in place at its version.
   */
  async #recordLoaded(id: string, version: string, report: ValidationReport): Promise<void> {
    try {
      const state = await this.#o.store.getPluginState(id);
      const highest = state?.highestVersion;
      if (highest && semver.valid(highest) && !semver.gt(version, highest)) {
        if (state.version !== version) await this.#o.store.savePluginState(id, { version });
        return;
      }
      await this.#o.store.savePluginState(id, {
        version,
        highestVersion: version,
        highestDigest: report.signer ? report.digest : null,
      });
    } catch (err) {
      this.#o.log.warn({ plugin: id, err: (err as Error).message }, 'the loaded version could not be recorded');
    }
  }

  /**
   * Stops a running plugin at once, for a finding that came after it loaded
   * (its key or release revoked): its sandbox is closed (tasks in flight are
   * rejected, so rolled back), the finding joins its record, and it goes to
   * `error`. Returns whether it was running.
   */
  async withdraw(id: string, findings: readonly Finding[]): Promise<boolean> {
    const { registry } = this.#o;
    if (!this.#running.delete(id) || !registry.has(id)) return false;
    const sandbox = this.#sandboxes.get(id);
    this.#sandboxes.delete(id);
    await sandbox?.close();
    const record = this.#records.get(id);
    if (record) record.findings = [...record.findings, ...findings];
    const first = findings[0];
    registry.setLoadState(id, { failure: first ? `${first.code}: ${first.message}` : 'withdrawn' });
    return true;
  }

  /** The releases that serve now: what the revocation lists are checked against. */
  running(): RunningRelease[] {
    return [...this.#running.values()];
  }

  forget(id: string): void {
    const release = this.#running.get(id);
    this.#running.delete(id);
    this.#records.delete(id);
    this.#network.delete(id);
    const sandbox = this.#sandboxes.get(id);
    this.#sandboxes.delete(id);
    if (sandbox) this.#retire(sandbox, release);
  }

  /** Gives a plugin's running sandbox its namespace's new limits. */
  applyLimits(namespace: string, limits: ResourceLimits): void {
    this.#sandboxes.get(namespace)?.setNamespaceLimits(limits);
  }

  /** The sandbox a plugin runs in, if any. */
  sandboxOf(id: string): SandboxHost | undefined {
    return this.#sandboxes.get(id);
  }

  /** Whether the loaded release of a plugin declares the `network` permission. */
  declaresNetwork(id: string): boolean {
    return this.#network.get(id) ?? false;
  }

  sandboxes(): SandboxHost[] {
    return [...this.#sandboxes.values()];
  }

  /**
   * Replaced sandboxes still finishing tasks, with the release each runs:
   * a revocation of that release (or its key) must close them too.
   */
  retiring(): { sandbox: SandboxHost; release: RunningRelease }[] {
    return [...this.#retiring].flatMap(([sandbox, release]) => (release ? [{ sandbox, release }] : []));
  }

  /** What a load of `dir` found, kept for the plugin's report. */
  #record(id: string, dir: string, findings: Finding[], report: ValidationReport): void {
    this.#records.set(id, {
      id,
      dir,
      findings,
      digest: report.digest,
      signer: report.signer,
      acceptedUnsigned: report.acceptedUnsigned ?? null,
    });
  }

  /** A replaced sandbox finishes the tasks it runs, then goes (at once when the manager shuts down). */
  #retire(sandbox: SandboxHost, release: RunningRelease | undefined): void {
    this.#retiring.set(sandbox, release);
    void sandbox
      .drain()
      .then(() => sandbox.close())
      .finally(() => this.#retiring.delete(sandbox));
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.#sandboxes.values(), ...this.#retiring.keys()].map((s) => s.close()));
    this.#retiring.clear();
    this.#sandboxes.clear();
  }

  /**
   * Where a plugin runs: a process sandbox unless the operator lists it as
   * trusted for a worker or inline; its manifest's `isolation` can only
   * make that stricter.
   */
  isolationOf(manifest: PluginManifest): SandboxMode {
    return modeOf(manifest.id, manifest.isolation, this.#o);
  }

  /** How a plugin of this mode loads: inline, or what its new sandbox needs. */
  #loading(mode: SandboxMode): { mode: 'inline' } | SandboxedLoad {
    if (mode === 'inline') return { mode };
    const { store, log, dataDir, pluginDir, registry } = this.#o;
    return {
      ...{ mode, store, log, protectedRoots: [dataDir, pluginDir] },
      defaultLimits: this.#o.defaultLimits,
      onAlert: this.#o.onAlert,
      // a sandbox that failed for good puts its plugin in error, unless a newer release took its place
      onFailed: (sandbox, reason) => {
        const id = sandbox.namespace;
        if (this.#sandboxes.get(id) === sandbox && registry.has(id)) {
          registry.setLoadState(id, { failure: `SANDBOX_FAILED: ${reason}` });
        }
      },
    };
  }

  /** Declared paths a process sandbox would be refused (grants.ts), and a plugin folder its uid cannot read. */
  #grantFindings(dir: string, manifest: PluginManifest, create = true): Finding[] {
    const uid = this.#o.confinement.uid?.switched ? this.#o.confinement.uid.uid : null;
    const { refused } = checkGrants(manifest.permissions ?? {}, {
      protectedRoots: [this.#o.dataDir, this.#o.pluginDir, DATABRIDGE_ROOT],
      uid,
      create,
    });
    const folder = folderUnreadable(dir, uid);
    return [...refused, ...(folder ? [folder] : [])].map((r) =>
      finding(r.code, `${manifest.id}: ${r.message}`, { path: 'manifest.json', pointer: '/permissions/fs' }),
    );
  }
}

function placeholderId(name: string): string {
  const base = name.split('/').pop() ?? name;
  return ID_LIKE.test(base)
    ? base
    : `invalid.${base.replace(/[^a-zA-Z0-9._-]/g, '_').replace(/^[._-]+/, '') || 'plugin'}`;
}
