/**
 * PluginRegistry: the in-memory catalogue of plugins and the components they
 * provide. It knows nothing of files, stores or sandboxes; the manager
 * persists what it decides.
 *
 * A plugin's status is derived, never set by hand: a load failure wins, then
 * `loading`, then disabled (`inactive`), then a dependency problem (`error`
 * with the reason), else `active`. Every change of the derived status is an
 * event.
 */

import semver from 'semver';
import { createError } from '../errors.ts';
import type {
  ControllerService,
  ControllerServiceInfo,
  Processor,
  ProcessorInfo,
  ReportingTask,
  ReportingTaskInfo,
} from '../sdk/index.ts';
import type {
  ComponentEntry,
  PluginInfo,
  PluginQuery,
  PluginRegistration,
  PluginStatus,
  RegistryEvent,
  RegistryStats,
} from './types.ts';
import { PLUGIN_SOURCES, PLUGIN_STATUSES, PLUGIN_TYPES } from './types.ts';

type ComponentKind = 'processors' | 'controllerServices' | 'reportingTasks';
const COMPONENT_KINDS: readonly ComponentKind[] = ['processors', 'controllerServices', 'reportingTasks'];
const KIND_NAMES: Record<ComponentKind, string> = {
  processors: 'processor',
  controllerServices: 'controller service',
  reportingTasks: 'reporting task',
};

interface Entry {
  reg: PluginRegistration;
  enabled: boolean;
  loading: boolean;
  loadFailure: string | null;
  status: PluginStatus;
  statusReason: string | null;
  /** Shown as the reason while the plugin is otherwise fine (a failed reload that left it serving). */
  notice: string | null;
  registeredAt: string;
  instancesCreated: number;
  errors: number;
}

const ID_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9._-]*$/;

export type RegistryListener = (event: RegistryEvent) => void;

/**
 * The catalogue of plugins.
 *
 * @example
 * const registry = new PluginRegistry();
 * registry.register({ id: 'acme.upper', name: 'Upper', version: '1.0.0', type: 'processor',
 *   source: 'external', processors: { UpperCase: { factory, info } } });
 * registry.search({ text: 'upper', status: 'active' });
 */
export class PluginRegistry {
  #entries = new Map<string, Entry>();
  /** component kind → component type name → plugin id */
  #owners: Record<ComponentKind, Map<string, string>> = {
    processors: new Map(),
    controllerServices: new Map(),
    reportingTasks: new Map(),
  };
  #listeners = new Set<RegistryListener>();

  /** Adds a plugin. Refuses a duplicate id, a component another plugin provides, or bad metadata. */
  register(registration: PluginRegistration): PluginInfo {
    const { id } = registration;
    checkRegistration(registration);
    if (this.#entries.has(id)) throw createError('PLUGIN_DUPLICATE', { id });
    for (const kind of COMPONENT_KINDS) {
      for (const component of Object.keys(registration[kind] ?? {})) {
        const owner = this.#owners[kind].get(component);
        if (owner !== undefined) throw createError('COMPONENT_DUPLICATE', { component, id, owner });
      }
    }
    const entry: Entry = {
      reg: registration,
      enabled: registration.enabled ?? true,
      loading: false,
      loadFailure: null,
      status: 'inactive',
      statusReason: null,
      notice: null,
      registeredAt: new Date().toISOString(),
      instancesCreated: 0,
      errors: 0,
    };
    this.#entries.set(id, entry);
    for (const kind of COMPONENT_KINDS) {
      for (const component of Object.keys(registration[kind] ?? {})) this.#owners[kind].set(component, id);
    }
    this.#resolve(id);
    this.#emit('registered', id);
    return this.#info(entry);
  }

  /**
   * Removes a plugin. Refused while enabled plugins depend on it, naming
   * them, unless `force` (they then go to `error`).
   */
  unregister(id: string, options: { force?: boolean } = {}): void {
    const entry = this.#get(id);
    if (!options.force) this.#refuseIfDependents(id, 'remove');
    this.#entries.delete(id);
    for (const kind of COMPONENT_KINDS) {
      for (const component of Object.keys(entry.reg[kind] ?? {})) this.#owners[kind].delete(component);
    }
    this.#emit('unregistered', id, null);
    this.#resolve();
  }

  /**
   * Replaces a plugin's registration in one step (a reload or upgrade): new
   * instances come from the new factories from now on. Its enabled state and
   * counters carry over.
   */
  replace(registration: PluginRegistration): PluginInfo {
    const entry = this.#get(registration.id);
    checkRegistration(registration);
    for (const kind of COMPONENT_KINDS) {
      for (const component of Object.keys(registration[kind] ?? {})) {
        const owner = this.#owners[kind].get(component);
        if (owner !== undefined && owner !== registration.id) {
          throw createError('COMPONENT_DUPLICATE', { component, id: registration.id, owner });
        }
      }
    }
    for (const kind of COMPONENT_KINDS) {
      for (const component of Object.keys(entry.reg[kind] ?? {})) this.#owners[kind].delete(component);
      for (const component of Object.keys(registration[kind] ?? {})) this.#owners[kind].set(component, registration.id);
    }
    entry.reg = registration;
    entry.loadFailure = null;
    entry.loading = false;
    entry.notice = null;
    this.#resolve(registration.id);
    this.#emit('registered', registration.id);
    return this.#info(entry);
  }

  has(id: string): boolean {
    return this.#entries.has(id);
  }

  get(id: string): PluginInfo {
    return this.#info(this.#get(id));
  }

  /** The registration as given, factories included. */
  getRegistration(id: string): PluginRegistration {
    return this.#get(id).reg;
  }

  list(): PluginInfo[] {
    return [...this.#entries.values()].map((e) => this.#info(e)).sort((a, b) => a.id.localeCompare(b.id));
  }

  /**
   * Plugins matching every given filter. With `text`, the best matches come
   * first (id or name before description), then by id.
   */
  search(query: PluginQuery = {}): PluginInfo[] {
    const text = query.text?.trim().toLowerCase() ?? '';
    const hits: { info: PluginInfo; score: number }[] = [];
    for (const entry of this.#entries.values()) {
      const info = this.#info(entry);
      if (query.type !== undefined && info.type !== query.type) continue;
      if (query.status !== undefined && info.status !== query.status) continue;
      if (query.enabled !== undefined && info.enabled !== query.enabled) continue;
      if (query.source !== undefined && info.source !== query.source) continue;
      if (query.tags?.length) {
        const have = new Set(info.tags.map((t) => t.toLowerCase()));
        if (!query.tags.every((t) => have.has(t.toLowerCase()))) continue;
      }
      const score = text === '' ? 1 : textScore(info, text);
      if (score > 0) hits.push({ info, score });
    }
    return hits.sort((a, b) => b.score - a.score || a.info.id.localeCompare(b.info.id)).map((h) => h.info);
  }

  /**
   * Enables or disables a plugin. Disabling is refused while enabled plugins
   * depend on it, unless `force`.
   */
  setEnabled(id: string, enabled: boolean, options: { force?: boolean } = {}): PluginInfo {
    const entry = this.#get(id);
    if (entry.enabled === enabled) return this.#info(entry);
    if (!enabled && !options.force) this.#refuseIfDependents(id, 'disable');
    entry.enabled = enabled;
    this.#resolve(id);
    this.#emit(enabled ? 'enabled' : 'disabled', id);
    return this.#info(entry);
  }

  /** Marks a plugin as being loaded (`loading`), loaded (`null`), or failed (a reason). */
  setLoadState(id: string, state: 'loading' | null | { failure: string }): PluginInfo {
    const entry = this.#get(id);
    entry.loading = state === 'loading';
    entry.loadFailure = state !== null && typeof state === 'object' ? state.failure : null;
    this.#resolve();
    return this.#info(entry);
  }

  /** Sets (or clears) a note shown as the status reason while the plugin is otherwise fine. */
  setNotice(id: string, notice: string | null): void {
    const entry = this.#get(id);
    if (entry.notice === notice) return;
    entry.notice = notice;
    this.#emit('status', id);
  }

  /** Counts an error against a plugin (a failed session, a crash). */
  recordError(id: string): void {
    const entry = this.#entries.get(id);
    if (entry) entry.errors++;
  }

  /** Enabled plugins that name `id` among their dependencies. */
  dependentsOf(id: string): string[] {
    const out: string[] = [];
    for (const entry of this.#entries.values()) {
      if (entry.enabled && entry.reg.dependencies && Object.hasOwn(entry.reg.dependencies, id)) out.push(entry.reg.id);
    }
    return out.sort();
  }

  /** A fresh processor instance of a component type, refusing a disabled or failed plugin. */
  createProcessor(component: string): { instance: Processor; pluginId: string } {
    return this.#create('processors', component) as { instance: Processor; pluginId: string };
  }

  createControllerService(component: string): { instance: ControllerService; pluginId: string } {
    return this.#create('controllerServices', component) as { instance: ControllerService; pluginId: string };
  }

  createReportingTask(component: string): { instance: ReportingTask; pluginId: string } {
    return this.#create('reportingTasks', component) as { instance: ReportingTask; pluginId: string };
  }

  /** The plugin that provides a processor type, if any. */
  processorOwner(component: string): string | undefined {
    return this.#owners.processors.get(component);
  }

  /** What a component type says of itself, without making an instance; COMPONENT_UNKNOWN when none is registered. */
  componentInfo(kind: 'processors', component: string): ProcessorInfo;
  componentInfo(kind: 'controllerServices', component: string): ControllerServiceInfo;
  componentInfo(kind: 'reportingTasks', component: string): ReportingTaskInfo;
  componentInfo(kind: ComponentKind, component: string): ProcessorInfo | ControllerServiceInfo | ReportingTaskInfo {
    const owner = this.#owners[kind].get(component);
    if (owner === undefined) throw createError('COMPONENT_UNKNOWN', { kind: KIND_NAMES[kind], component });
    return (this.#get(owner).reg[kind]![component] as ComponentEntry<unknown, ProcessorInfo>).info;
  }

  stats(): RegistryStats {
    const stats: RegistryStats = {
      total: 0,
      enabled: 0,
      byType: Object.fromEntries(PLUGIN_TYPES.map((t) => [t, 0])) as RegistryStats['byType'],
      byStatus: Object.fromEntries(PLUGIN_STATUSES.map((s) => [s, 0])) as RegistryStats['byStatus'],
      bySource: Object.fromEntries(PLUGIN_SOURCES.map((s) => [s, 0])) as RegistryStats['bySource'],
      components: {
        processors: this.#owners.processors.size,
        controllerServices: this.#owners.controllerServices.size,
        reportingTasks: this.#owners.reportingTasks.size,
      },
      instancesCreated: 0,
      errors: 0,
    };
    for (const entry of this.#entries.values()) {
      stats.total++;
      if (entry.enabled) stats.enabled++;
      stats.byType[entry.reg.type]++;
      stats.byStatus[entry.status]++;
      stats.bySource[entry.reg.source]++;
      stats.instancesCreated += entry.instancesCreated;
      stats.errors += entry.errors;
    }
    return stats;
  }

  /**
   * Listens to every change (sequential: listeners are called one after
   * another, in the order they were added, each synchronously; one that
   * throws does not stop the others or the registry).
   * Returns the function that stops listening.
   */
  on(listener: RegistryListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #get(id: string): Entry {
    const entry = this.#entries.get(id);
    if (!entry) throw createError('PLUGIN_NOT_FOUND', { id });
    return entry;
  }

  #refuseIfDependents(id: string, action: string): void {
    const dependents = this.dependentsOf(id).filter((d) => d !== id);
    if (dependents.length > 0) {
      throw createError('PLUGIN_HAS_DEPENDENTS', { id, action, dependents }, { details: { dependents } });
    }
  }

  #create(kind: ComponentKind, component: string): { instance: unknown; pluginId: string } {
    const pluginId = this.#owners[kind].get(component);
    if (pluginId === undefined) throw createError('COMPONENT_UNKNOWN', { kind: KIND_NAMES[kind], component });
    const entry = this.#get(pluginId);
    if (!entry.enabled) throw createError('PLUGIN_DISABLED', { id: pluginId, component });
    if (entry.status !== 'active') {
      throw createError('PLUGIN_FAILED', {
        id: pluginId,
        component,
        reason: entry.statusReason ?? `status is ${entry.status}`,
      });
    }
    const registered = entry.reg[kind]?.[component] as ComponentEntry<() => unknown, unknown>;
    const instance = registered.factory();
    entry.instancesCreated++;
    return { instance, pluginId };
  }

  /**
   * Recomputes every plugin's status; emits a `status` event for each that
   * changed, except `quiet`, whose own event the caller emits next.
   */
  #resolve(quiet?: string): void {
    const cycles = this.#findCycles();
    const memo = new Map<string, { status: PluginStatus; reason: string | null }>();
    const compute = (id: string): { status: PluginStatus; reason: string | null } => {
      const known = memo.get(id);
      if (known) return known;
      const entry = this.#entries.get(id)!;
      let result: { status: PluginStatus; reason: string | null } = { status: 'active', reason: null };
      if (entry.loadFailure !== null) result = { status: 'error', reason: entry.loadFailure };
      else if (entry.loading) result = { status: 'loading', reason: null };
      else if (!entry.enabled) result = { status: 'inactive', reason: null };
      else if (cycles.has(id)) result = { status: 'error', reason: cycles.get(id)! };
      else {
        // cycle members were settled above, so this recursion ends
        for (const [dep, range] of Object.entries(entry.reg.dependencies ?? {})) {
          const problem = this.#dependencyProblem(dep, range, compute);
          if (problem !== null) {
            result = { status: 'error', reason: problem };
            break;
          }
        }
      }
      memo.set(id, result);
      return result;
    };
    for (const [id, entry] of this.#entries) {
      const { status, reason } = compute(id);
      if (status !== entry.status || reason !== entry.statusReason) {
        entry.status = status;
        entry.statusReason = reason;
        if (id !== quiet) this.#emit('status', id);
      }
    }
  }

  /** Plugin id → "dependency cycle: a → b → a" for every plugin on a cycle. */
  #findCycles(): Map<string, string> {
    const found = new Map<string, string>();
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const visit = (id: string): void => {
      state.set(id, 'open');
      stack.push(id);
      for (const dep of Object.keys(this.#entries.get(id)!.reg.dependencies ?? {})) {
        if (!this.#entries.has(dep)) continue;
        const seen = state.get(dep);
        if (seen === undefined) visit(dep);
        else if (seen === 'open') {
          const members = stack.slice(stack.indexOf(dep));
          const reason = `dependency cycle: ${[...members, dep].join(' → ')}`;
          for (const m of members) if (!found.has(m)) found.set(m, reason);
        }
      }
      stack.pop();
      state.set(id, 'done');
    };
    for (const id of this.#entries.keys()) if (!state.has(id)) visit(id);
    return found;
  }

  #dependencyProblem(
    dep: string,
    range: string,
    compute: (id: string) => { status: PluginStatus; reason: string | null },
  ): string | null {
    const target = this.#entries.get(dep);
    if (!target) return `dependency ${dep} (${range}) is not installed`;
    if (!semver.satisfies(target.reg.version, range, { includePrerelease: true })) {
      return `dependency ${dep} ${range} is not satisfied by the installed ${target.reg.version}`;
    }
    const state = compute(dep);
    if (state.status === 'inactive') return `dependency ${dep} is disabled`;
    if (state.status === 'loading') return `dependency ${dep} is still loading`;
    if (state.status === 'error') return `dependency ${dep} is in error: ${state.reason}`;
    return null;
  }

  #emit(type: RegistryEvent['type'], pluginId: string, plugin?: PluginInfo | null): void {
    if (this.#listeners.size === 0) return;
    const entry = this.#entries.get(pluginId);
    const event: RegistryEvent = {
      type,
      pluginId,
      plugin: plugin !== undefined ? plugin : entry ? this.#info(entry) : null,
      at: new Date().toISOString(),
    };
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {
        // a faulty listener must not break the registry or the other listeners
      }
    }
  }

  #info(entry: Entry): PluginInfo {
    const r = entry.reg;
    return {
      id: r.id,
      name: r.name,
      version: r.version,
      type: r.type,
      source: r.source,
      publisher: r.publisher ?? null,
      author: r.author ?? null,
      description: r.description ?? '',
      tags: [...(r.tags ?? [])],
      status: entry.status,
      statusReason: entry.statusReason ?? entry.notice,
      enabled: entry.enabled,
      dependencies: { ...(r.dependencies ?? {}) },
      isolation: r.isolation ?? (r.source === 'builtin' ? 'inline' : 'process'),
      components: {
        processors: Object.keys(r.processors ?? {}),
        controllerServices: Object.keys(r.controllerServices ?? {}),
        reportingTasks: Object.keys(r.reportingTasks ?? {}),
      },
      registeredAt: entry.registeredAt,
      stats: { instancesCreated: entry.instancesCreated, errors: entry.errors },
    };
  }
}

function checkRegistration(r: PluginRegistration): void {
  const id = typeof r.id === 'string' ? r.id : String(r.id);
  const fail = (reason: string) => createError('REGISTRATION_INVALID', { id, reason });
  if (typeof r.id !== 'string' || !ID_PATTERN.test(r.id)) throw fail('the id must be letters, digits, ".", "_" or "-"');
  if (typeof r.name !== 'string' || r.name.trim() === '') throw fail('a name is required');
  if (semver.valid(r.version) === null) throw fail(`version "${r.version}" is not semver`);
  if (!PLUGIN_TYPES.includes(r.type)) throw fail(`type "${r.type}" is not one of ${PLUGIN_TYPES.join(', ')}`);
  if (!PLUGIN_SOURCES.includes(r.source)) throw fail(`source "${r.source}" is not one of ${PLUGIN_SOURCES.join(', ')}`);
  for (const [dep, range] of Object.entries(r.dependencies ?? {})) {
    if (semver.validRange(range) === null) throw fail(`dependency ${dep} has an invalid semver range "${range}"`);
  }
}

function textScore(info: PluginInfo, text: string): number {
  const id = info.id.toLowerCase();
  const name = info.name.toLowerCase();
  if (id === text || name === text) return 100;
  if (id.startsWith(text) || name.startsWith(text)) return 50;
  if (id.includes(text) || name.includes(text)) return 30;
  const components = [
    ...info.components.processors,
    ...info.components.controllerServices,
    ...info.components.reportingTasks,
  ];
  if (components.some((c) => c.toLowerCase().includes(text))) return 25;
  if (info.tags.some((t) => t.toLowerCase() === text)) return 20;
  if (info.tags.some((t) => t.toLowerCase().includes(text))) return 10;
  const rest = [info.description, info.publisher ?? '', info.author ?? ''].join('\n').toLowerCase();
  return rest.includes(text) ? 5 : 0;
}
