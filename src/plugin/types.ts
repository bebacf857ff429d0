/**
 * The registry's vocabulary: what a plugin is, as the host, the API and the
 * console see it.
 */

import type {
  ControllerService,
  ControllerServiceInfo,
  Processor,
  ProcessorInfo,
  ReportingTask,
  ReportingTaskInfo,
} from '../sdk/index.ts';
import type { ConfinementInfo } from './isolation.ts';

export type PluginType = 'processor' | 'controller-service' | 'reporting-task';
export const PLUGIN_TYPES: readonly PluginType[] = ['processor', 'controller-service', 'reporting-task'];

export type PluginSource = 'builtin' | 'external';
export const PLUGIN_SOURCES: readonly PluginSource[] = ['builtin', 'external'];

/** `loading` while the loader works on it; `error` carries a reason. */
export type PluginStatus = 'active' | 'inactive' | 'error' | 'loading';
export const PLUGIN_STATUSES: readonly PluginStatus[] = ['active', 'inactive', 'error', 'loading'];

export type SandboxMode = 'inline' | 'worker' | 'process';

/** A component a plugin provides: its factory and what it says of itself. */
export interface ComponentEntry<F, I> {
  factory: F;
  info: I;
}

/** What is handed to `PluginRegistry.register()`. */
export interface PluginRegistration {
  id: string;
  name: string;
  version: string;
  type: PluginType;
  source: PluginSource;
  publisher?: string;
  author?: string;
  description?: string;
  tags?: readonly string[];
  /** Plugin id → semver range. */
  dependencies?: Readonly<Record<string, string>>;
  /** Defaults to true. */
  enabled?: boolean;
  isolation?: SandboxMode;
  processors?: Readonly<Record<string, ComponentEntry<() => Processor, ProcessorInfo>>>;
  controllerServices?: Readonly<Record<string, ComponentEntry<() => ControllerService, ControllerServiceInfo>>>;
  reportingTasks?: Readonly<Record<string, ComponentEntry<() => ReportingTask, ReportingTaskInfo>>>;
}

/** The public, JSON-ready view of one registered plugin. */
export interface PluginInfo {
  id: string;
  name: string;
  version: string;
  type: PluginType;
  source: PluginSource;
  publisher: string | null;
  author: string | null;
  description: string;
  tags: string[];
  status: PluginStatus;
  statusReason: string | null;
  enabled: boolean;
  dependencies: Record<string, string>;
  isolation: SandboxMode;
  components: { processors: string[]; controllerServices: string[]; reportingTasks: string[] };
  registeredAt: string;
  stats: { instancesCreated: number; errors: number };
  /** How the loaded release is signed (the manager fills it in; the registry does not know). */
  signature?: SignatureInfo;
  /**
   * What holds it where it runs (the manager fills it in): `full`, `partial`
   * or `none` OS confinement of its process sandbox, with what is missing;
   * `trusted` for worker, inline and built-in plugins: not a security boundary.
   */
  confinement?: ConfinementInfo;
}

/**
 * `trusted`: signed by a key the trust store holds for this publisher and id;
 * `unsigned`: no signature (accepted with `allowUnsigned`); `untrusted`:
 * signed by a key the trust store does not hold; `invalid`: a signature or
 * checksum that does not verify, or a revoked key; `builtin`: ships with
 * DataBridge.
 */
export interface SignatureInfo {
  state: 'trusted' | 'unsigned' | 'untrusted' | 'invalid' | 'builtin';
  publisher: string | null;
  keyId: string | null;
  /** Who installed this release without a trusted signature (`--allow-unsigned`) and when; later loads honour it. */
  acceptedUnsigned?: { actor: string; at: string };
}

/** Filters for `PluginRegistry.search()`; every given filter must hold. */
export interface PluginQuery {
  /** Free text over id, name, description, publisher, author, tags and component names. */
  text?: string;
  type?: PluginType;
  /** The plugin must carry every one of these tags. */
  tags?: readonly string[];
  status?: PluginStatus;
  enabled?: boolean;
  source?: PluginSource;
}

export interface RegistryStats {
  total: number;
  enabled: number;
  byType: Record<PluginType, number>;
  byStatus: Record<PluginStatus, number>;
  bySource: Record<PluginSource, number>;
  components: { processors: number; controllerServices: number; reportingTasks: number };
  instancesCreated: number;
  errors: number;
}

/** One change in the registry, as the API's event stream and the console see it. */
export interface RegistryEvent {
  type: 'registered' | 'unregistered' | 'enabled' | 'disabled' | 'status';
  pluginId: string;
  plugin: PluginInfo | null;
  at: string;
}
