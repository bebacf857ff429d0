/**
 * What the flow needs of the program that hosts it, as an interface the
 * flow owns: components made by type and their info, a plugin's version and
 * state, its changes, the alert bus, statistics, and the handles of
 * components that run in a sandbox. The plugin manager implements it; the
 * flow imports nothing from `src/plugin` or `src/sandbox`.
 */

import type { Alert, AlertInput, AlertListener } from '../alerts.ts';
import type { PinoLogger } from '../log.ts';
import type {
  ControllerService,
  ControllerServiceInfo,
  FlowFile,
  Processor,
  ProcessorInfo,
  ReportingTask,
  ReportingTaskInfo,
} from '../sdk/index.ts';
import type { OutputFlowFile } from '../session/outcome.ts';

/** One task of a processor, for its plugin's statistics. */
export interface TaskRecord {
  inputs: number;
  outputs: number;
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
  failed: boolean;
  /** Inputs the task gave back (rolled back or released). */
  rolledBack: number;
}

/** A plugin changed: registered (new or replaced), unregistered, enabled, disabled, or its status. */
export interface PluginChange {
  type: 'registered' | 'unregistered' | 'enabled' | 'disabled' | 'status';
  pluginId: string;
  /** The plugin after the change (null once unregistered). */
  plugin: { version: string; status: string; statusReason: string | null } | null;
}

/** The components the flow can make, by type, and what it needs to know of their plugins. */
export interface FlowRegistry {
  createProcessor(type: string): { instance: Processor; pluginId: string };
  createControllerService(type: string): { instance: ControllerService; pluginId: string };
  createReportingTask(type: string): { instance: ReportingTask; pluginId: string };
  componentInfo(kind: 'processors', type: string): ProcessorInfo;
  componentInfo(kind: 'controllerServices', type: string): ControllerServiceInfo;
  componentInfo(kind: 'reportingTasks', type: string): ReportingTaskInfo;
  has(pluginId: string): boolean;
  get(pluginId: string): { version: string; enabled: boolean };
  /** Counts a failure against the plugin. */
  recordError(pluginId: string): void;
}

/**
 * The flow's host. `createFlowController({ manager })` takes the plugin
 * manager, which implements it.
 */
export interface FlowHost {
  readonly config: { readonly dataDir: string };
  readonly log: PinoLogger;
  readonly registry: FlowRegistry;
  readonly pluginStats: { record(pluginId: string, record: TaskRecord): void };
  /** Listens to plugin changes (sequential: in the order they happen, listener after listener); returns the function that stops listening. */
  on(listener: (change: PluginChange) => void): () => void;
  raiseAlert(alert: AlertInput): Alert;
  alerts(): Alert[];
  onAlert(listener: AlertListener): () => void;
}

/** Marks a component whose instance lives in a sandbox: the flow reaches it through its handle. */
export const SANDBOXED: unique symbol = Symbol('databridge.sandboxed');

/** A controller service a sandboxed processor names: made in that processor's sandbox from this. */
export interface ServiceBinding {
  id: string;
  pluginId: string;
  component: string;
  properties: Record<string, string>;
}

/** The FlowFile ids the flow holds, as a sandboxed task's reply is checked against them. */
export interface FlowFileIds {
  /** Whether the flow holds a FlowFile of this id anywhere (queued, in a task, or claimed): a new FlowFile's id must not be one. */
  holds(id: string): boolean;
  /** A checked reply's new ids, claimed before the check returns so that a second reply read in the same turn cannot bring them again. */
  claim(ids: readonly string[]): void;
}

/** One batch of FlowFiles for a sandboxed processor: their content packed in one buffer. */
export interface SandboxBatch {
  relationships: string[];
  inputs: FlowFile[];
  /** Each input's content lies at offsets[i] .. offsets[i] + inputs[i].size in `content`. */
  content: ArrayBuffer;
  offsets: number[];
}

/** One commit of a sandboxed session: outputs whose attributes may be null (the input's, unchanged). */
export interface SandboxCommit {
  outputs: (Omit<OutputFlowFile, 'attributes'> & { attributes: Record<string, string> | null })[];
  consumed: string[];
  packed: ArrayBuffer;
  lengths: number[];
}

/** What a sandboxed task did: its commits in order, the inputs it gave back, whether it yielded, its error. */
export interface SandboxTaskResult {
  outcomes: SandboxCommit[];
  leftovers: { id: string; penalize: boolean }[];
  yielded: boolean;
  error: { code: string; message: string } | null;
}

/** The flow's handle on a processor made in a sandbox (worker or process). */
export interface SandboxedProcessor extends Processor {
  readonly [SANDBOXED]: true;
  /** The processor's own validate() findings, from the sandbox. */
  findings: { property?: string; message: string }[];
  /** The controller services it names; the flow sets them before `initialize`. */
  services: ServiceBinding[];
  /** Until when its sandbox gets no tasks (over its CPU share), epoch ms. */
  readonly throttledUntil: number;
  /** Waits for a task slot of its sandbox; returns its release. */
  acquire(): Promise<() => void>;
  /** Runs one task over a batch (`transfer` moves the buffers); `ids` is how its reply's new ids are checked. */
  trigger(batch: SandboxBatch, transfer: ArrayBuffer[], ids: FlowFileIds): Promise<SandboxTaskResult>;
  onStopped(): Promise<void>;
}

/** The flow's handle on a controller service of a sandboxed plugin (made in its processors' sandbox). */
export interface SandboxedService extends ControllerService {
  readonly [SANDBOXED]: true;
  readonly pluginId: string;
  readonly component: string;
}

export function isSandboxed(p: Processor): p is SandboxedProcessor {
  return (p as Partial<SandboxedProcessor>)[SANDBOXED] === true;
}

export function isSandboxedService(s: ControllerService): s is SandboxedService {
  return (s as Partial<SandboxedService>)[SANDBOXED] === true;
}
