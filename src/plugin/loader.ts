/**
 * The loader: imports a validated plugin's entry module through the module
 * guard and turns what it exports into a registration. Every call into
 * plugin code here has a deadline and names the plugin when it fails.
 */

import { withDeadline } from '../deadline.ts';
import { guardedEntryUrl } from '../sandbox/module-guard.ts';
import type { ControllerService, PluginDefinition, Processor, ReportingTask } from '../sdk/index.ts';
import { type Finding, finding } from './findings.ts';
import { componentNames, exportsProblem, type PluginManifest } from './manifest.ts';
import type { PluginRegistration, SandboxMode } from './types.ts';
import type { ValidationReport } from './validator.ts';

export const LOAD_TIMEOUT_MS = 10_000;

type Kind = 'processors' | 'controllerServices' | 'reportingTasks';
const KINDS: readonly Kind[] = ['processors', 'controllerServices', 'reportingTasks'];

/**
 * Imports a plugin and builds its registration. Problems (a throwing module,
 * a missing or extra component, a factory that throws) come back as
 * LOAD_FAILED findings naming the plugin.
 */
export async function loadPlugin(
  dir: string,
  report: ValidationReport,
): Promise<{ registration: PluginRegistration | null; findings: Finding[] }> {
  const manifest = report.manifest!;
  const fail = (message: string) => ({
    registration: null,
    findings: [finding('LOAD_FAILED', `${manifest.id}: ${message}`, { path: manifest.entryPoint })],
  });
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
  const registration = registrationOf(manifest, 'inline');
  for (const kind of KINDS) {
    const declared = componentNames(manifest.provides[kind]);
    const exported = def[kind] ?? {};
    if (typeof exported !== 'object') return fail(`${kind} must be an object of factories`);
    const names = Object.keys(exported);
    const mismatch = exportsProblem(declared, names);
    if (mismatch) return fail(mismatch);
    const entries: Record<string, { factory: () => unknown; info: unknown }> = {};
    for (const name of names) {
      const factory = (exported as Record<string, unknown>)[name];
      if (typeof factory !== 'function') return fail(`${kind}.${name} is not a factory function`);
      let info: { name?: unknown } | undefined;
      try {
        const instance = factory() as Processor | ControllerService | ReportingTask;
        info = instance?.getInfo?.();
      } catch (err) {
        return fail(`${kind}.${name}: the factory or getInfo() threw: ${(err as Error).message}`);
      }
      if (!info || typeof info !== 'object' || info.name !== name) {
        return fail(`${kind}.${name}: getInfo() must return an object whose name is "${name}"`);
      }
      entries[name] = { factory: factory as () => never, info };
    }
    (registration as unknown as Record<Kind, unknown>)[kind] = entries;
  }
  return { registration, findings: [] };
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
