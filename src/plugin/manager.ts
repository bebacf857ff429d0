/**
 * PluginManager: the host's front door for plugins. It owns the registry and
 * the state store, registers the built-ins, restores what the operator set
 * (enabled/disabled) and writes every change to the store and the audit log.
 * An orchestrator, so longer than most files.
 */

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createError } from '../errors.ts';
import { createLogger, type PinoLogger } from '../log.ts';
import { BUILTIN_PROCESSORS, builtInPluginId } from '../processors/index.ts';
import type { Processor, ProcessorInfo } from '../sdk/index.ts';
import { openSqliteStore } from '../store/sqlite.ts';
import type { StateStore } from '../store/types.ts';
import { type PluginManagerConfig, type PluginManagerOptions, resolveConfig } from './config.ts';
import { PluginRegistry, type RegistryListener } from './registry.ts';
import type { PluginInfo, PluginQuery, RegistryStats } from './types.ts';

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
  readonly log: PinoLogger;
  #store: StateStore | undefined;
  #state: 'new' | 'initializing' | 'ready' | 'closed' = 'new';

  /** Prefer `createPluginManager()`, which also initializes. Throws CONFIG_INVALID on bad options. */
  constructor(options: PluginManagerOptions = {}) {
    this.config = resolveConfig(options);
    this.log = createLogger(this.config.logLevel);
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
      mkdirSync(this.config.dataDir, { recursive: true });
      this.#store = await openSqliteStore({ file: join(this.config.dataDir, 'state.db') });
      if (this.config.builtins) {
        for (const builtin of BUILTIN_PROCESSORS)
          this.registerBuiltInProcessor(builtin.type, builtin.factory, builtin.info);
      }
      await this.#restoreEnabledStates();
      this.#state = 'ready';
      const stats = this.registry.stats();
      this.log.info({ plugins: stats.total, builtin: stats.bySource.builtin }, 'plugin manager ready');
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
    const owner = this.registry.processorOwner(type);
    if (owner === undefined) throw createError('COMPONENT_UNKNOWN', { kind: 'processor', component: type });
    return this.registry.getRegistration(owner).processors![type]!.info;
  }

  list(): PluginInfo[] {
    return this.registry.list();
  }

  get(id: string): PluginInfo {
    return this.registry.get(id);
  }

  search(query: PluginQuery): PluginInfo[] {
    return this.registry.search(query);
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
      info = this.registry.setEnabled(id, enabled, { force: options.force });
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'ERROR';
      await this.store.appendAudit({ actor, action, target: id, result: 'refused', details: { code } });
      throw err;
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
    return info;
  }

  /** Stops everything the manager started and closes the store. Safe to call twice. */
  async shutdown(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
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
