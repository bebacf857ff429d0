/**
 * The loader: loads a validated plugin in the mode it runs in and turns what
 * it provides into a registration. An inline plugin's entry module is
 * imported here, through the module guard; a worker or process plugin's is
 * imported in its new sandbox (or, for a release that loaded before, its
 * components are known by digest and the sandbox starts on first use), and
 * its components are handles on that sandbox. Either way the module must
 * provide exactly what the manifest declares. Every call into plugin code
 * has a deadline and names the plugin when it fails.
 */

import { withDeadline } from '../deadline.ts';
import type { PinoLogger } from '../log.ts';
import type { ResourceLimits } from '../sandbox/limits.ts';
import { guardedEntryUrl } from '../sandbox/module-guard.ts';
import type { ComponentInfos } from '../sandbox/protocol.ts';
import { RemoteControllerService, RemoteProcessor, RemoteReportingTask } from '../sandbox/remote-processor.ts';
import { type SandboxAlert, SandboxHost } from '../sandbox/sandbox-host.ts';
import type { ControllerService, PluginDefinition, Processor, ReportingTask } from '../sdk/index.ts';
import type { StateStore } from '../store/types.ts';
import { type Finding, finding } from './findings.ts';
import { componentNames, exportsProblem, type PluginManifest } from './manifest.ts';
import type { PluginRegistration, SandboxMode } from './types.ts';
import type { ValidationReport } from './validator.ts';

export const LOAD_TIMEOUT_MS = 10_000;
/** The scan-cache key under which a release's component infos are kept, by digest. */
export const COMPONENTS_CACHE = 'components/2';

type Kind = 'processors' | 'controllerServices' | 'reportingTasks';
export const KINDS: readonly Kind[] = ['processors', 'controllerServices', 'reportingTasks'];

/** What loading a plugin in a sandbox needs of the host. */
export interface SandboxedLoad {
  mode: 'worker' | 'process';
  store: Pick<StateStore, 'getNamespace' | 'getScanResult' | 'saveScanResult'>;
  /** The limits of a namespace the operator has not set. */
  defaultLimits(): ResourceLimits;
  /** Folders no declared path may touch (the data dir, the plugin dir). */
  protectedRoots: string[];
  log: PinoLogger;
  onAlert(alert: SandboxAlert): void;
  /** The sandbox failed for good (its restarts used up). */
  onFailed(sandbox: SandboxHost, reason: string): void;
}

/** A loaded plugin: its registration and its sandbox (none inline), or the findings that refused it. */
export interface Loaded {
  registration: PluginRegistration | null;
  findings: Finding[];
  sandbox: SandboxHost | null;
}

/**
 * Loads a plugin in the mode given (`{ mode: 'inline' }` or a sandbox's
 * needs) and builds its registration. Problems (a throwing module, a
 * missing or extra component, a factory that throws, a sandbox that does
 * not start) come back as LOAD_FAILED findings naming the plugin.
 */
export function loadPlugin(
  dir: string,
  report: ValidationReport,
  how: { mode: 'inline' } | SandboxedLoad,
): Promise<Loaded> {
  return how.mode === 'inline' ? loadInline(dir, report) : loadSandboxed(dir, report, how);
}

function failure(manifest: PluginManifest, message: string): Loaded {
  return {
    registration: null,
    findings: [finding('LOAD_FAILED', `${manifest.id}: ${message}`, { path: manifest.entryPoint })],
    sandbox: null,
  };
}

/** Whether a module provides exactly the components of a kind its manifest declares, each named as its info says. */
function providesProblem(
  manifest: PluginManifest,
  kind: Kind,
  infos: Record<string, { name?: unknown } | undefined>,
): string | null {
  const exported = Object.keys(infos);
  const misnamed = exported.find((n) => infos[n]?.name !== n);
  return (
    exportsProblem(componentNames(manifest.provides[kind]), exported, `${kind} `) ??
    (misnamed ? `${kind}.${misnamed}: getInfo() must return an object whose name is "${misnamed}"` : null)
  );
}

async function loadInline(dir: string, report: ValidationReport): Promise<Loaded> {
  const manifest = report.manifest!;
  const fail = (message: string) => failure(manifest, message);
  let mod: { default?: unknown };
  try {
    const url = guardedEntryUrl(dir, manifest.entryPoint, report.files, report.digest!, manifest.id);
    mod = await withDeadline(
      import(url) as Promise<{ default?: unknown }>,
      LOAD_TIMEOUT_MS,
      `loading the entry module did not finish within ${LOAD_TIMEOUT_MS} ms`,
    );
  } catch (err) {
    return fail(`the entry module failed to load: ${(err as Error).message}`);
  }
  const def = mod.default as PluginDefinition | undefined;
  if (!def || typeof def !== 'object')
    return fail('the entry module has no default export { processors, controllerServices, reportingTasks }');
  const components: Partial<Record<Kind, Record<string, { factory: () => unknown; info: unknown }>>> = {};
  for (const kind of KINDS) {
    const exported = def[kind] ?? {};
    if (typeof exported !== 'object') return fail(`${kind} must be an object of factories`);
    const entries: Record<string, { factory: () => unknown; info: { name?: unknown } | undefined }> = {};
    for (const [name, factory] of Object.entries(exported as Record<string, unknown>)) {
      if (typeof factory !== 'function') return fail(`${kind}.${name} is not a factory function`);
      try {
        const instance = factory() as Processor | ControllerService | ReportingTask;
        const info = instance?.getInfo?.();
        entries[name] = { factory: factory as () => never, info: info && typeof info === 'object' ? info : undefined };
      } catch (err) {
        return fail(`${kind}.${name}: the factory or getInfo() threw: ${(err as Error).message}`);
      }
    }
    const problem = providesProblem(
      manifest,
      kind,
      Object.fromEntries(Object.entries(entries).map(([n, e]) => [n, e.info])),
    );
    if (problem) return fail(problem);
    components[kind] = entries;
  }
  // each component checked above: provided as declared, named as its info says
  const registration = { ...registrationOf(manifest, 'inline'), ...(components as Pick<PluginRegistration, Kind>) };
  return { registration, findings: [], sandbox: null };
}

async function loadSandboxed(dir: string, report: ValidationReport, how: SandboxedLoad): Promise<Loaded> {
  const manifest = report.manifest!;
  const namespace = await how.store.getNamespace(manifest.id);
  const sandbox: SandboxHost = new SandboxHost({
    namespace: manifest.id,
    mode: how.mode,
    limits: namespace?.limits ?? how.defaultLimits(),
    requested: manifest.limits,
    permissions: manifest.permissions ?? {},
    readPaths: [dir],
    protectedRoots: how.protectedRoots,
    log: how.log,
    onAlert: (a) => how.onAlert(a),
    onFailed: (reason) => how.onFailed(sandbox, reason),
  });
  const load = {
    pluginId: manifest.id,
    root: dir,
    entryPoint: manifest.entryPoint,
    digest: report.digest!,
    files: report.files,
  };
  // a release whose module loaded before (same digest) starts its sandbox on first use
  const known = (await how.store.getScanResult(report.digest!, COMPONENTS_CACHE)) as ComponentInfos | undefined;
  let loaded: ComponentInfos;
  if (known) {
    sandbox.idle(load);
    loaded = known;
  } else {
    try {
      await sandbox.start();
      loaded = await sandbox.load(load);
    } catch (err) {
      await sandbox.close();
      return failure(manifest, `the entry module failed to load in its sandbox: ${(err as Error).message}`);
    }
  }
  for (const kind of KINDS) {
    const problem = providesProblem(manifest, kind, loaded[kind]);
    if (problem) {
      await sandbox.close();
      return failure(manifest, problem);
    }
  }
  const entries = <I, C>(infos: Record<string, I>, make: (name: string, info: I) => C) =>
    Object.fromEntries(Object.entries(infos).map(([name, info]) => [name, { factory: () => make(name, info), info }]));
  const registration: PluginRegistration = {
    ...registrationOf(manifest, how.mode),
    processors: entries(loaded.processors, (n, i) => new RemoteProcessor(sandbox, manifest.id, n, i)),
    controllerServices: entries(
      loaded.controllerServices,
      (n, i) => new RemoteControllerService(sandbox, manifest.id, n, i),
    ),
    reportingTasks: entries(loaded.reportingTasks, (n, i) => new RemoteReportingTask(sandbox, manifest.id, n, i)),
  };
  if (!known) {
    const { processors, controllerServices, reportingTasks } = loaded;
    await how.store.saveScanResult(report.digest!, COMPONENTS_CACHE, {
      processors,
      controllerServices,
      reportingTasks,
    });
  }
  return { registration, findings: [], sandbox };
}

/** What an external plugin's registration takes from its manifest; the components are added by who loads it. */
export function registrationOf(manifest: PluginManifest, isolation: SandboxMode): PluginRegistration {
  return {
    id: manifest.id,
    name: manifest.name,
    version: manifest.version,
    type: manifest.type,
    source: 'external',
    publisher: manifest.publisher,
    author: manifest.author,
    description: manifest.description,
    tags: manifest.tags,
    dependencies: manifest.dependencies,
    isolation,
  };
}

/** Orders manifests so that dependencies come first (cycles and unknowns keep their place). */
export function dependencyOrder<T extends { manifest: PluginManifest | null }>(items: readonly T[]): T[] {
  const byId = new Map(items.filter((i) => i.manifest).map((i) => [i.manifest!.id, i]));
  const out: T[] = [];
  const state = new Map<T, 'visiting' | 'done'>();
  const visit = (item: T) => {
    if (state.has(item)) return;
    state.set(item, 'visiting');
    for (const dep of Object.keys(item.manifest?.dependencies ?? {})) {
      const d = byId.get(dep);
      if (d && state.get(d) !== 'visiting') visit(d);
    }
    state.set(item, 'done');
    out.push(item);
  };
  for (const item of items) visit(item);
  return out;
}
