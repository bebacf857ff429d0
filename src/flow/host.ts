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
  Logger,
  Processor,
  ProcessorInfo,
  ReportingTask,
  ReportingTaskInfo,
  ValidationFinding,
} from '../sdk/index.ts';
import type { SessionOutcome } from '../session/outcome.ts';
import type { StandardProcessContext } from '../session/properties.ts';

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
  /** The flow's handle on a processor instance the registry made. */
  processorHandle(instance: Processor): ProcessorHandle;
  raiseAlert(alert: AlertInput): Alert;
  alerts(): Alert[];
  onAlert(listener: AlertListener): () => void;
}

/** Marks a controller service whose instance lives in a sandbox: the flow reaches it through its handle. */
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

/**
 * One task of a processor, as the flow gives it to the processor's handle:
 * its batch, its inputs' content, and where its commits go. The handle
 * takes the batch once it may run (a sandbox's task slot held), applies
 * each commit in order, and ends its hold on the inputs with `finish`.
 */
export interface ProcessorTask {
  readonly relationships: ReadonlySet<string>;
  readonly logger: Logger;
  readonly context: StandardProcessContext;
  /** A source takes no input: it runs with an empty batch. */
  readonly isSource: boolean;
  /** Polls the batch from the input queues (once). */
  take(): FlowFile[];
  /** The whole content of an input of the batch. */
  content(id: string): Uint8Array;
  /** Applies one commit; throws when it cannot, and nothing of it is applied. */
  apply(outcome: SessionOutcome): void;
  /** How a sandbox's reply is checked: no new FlowFile may take an id the flow holds. */
  readonly ids: FlowFileIds;
  /** Gives back the inputs no commit consumed: those named as they say, every other one penalized. */
  finish(leftovers: readonly { id: string; penalize: boolean }[]): void;
}

/** How a task ended: whether its processor asked to yield, and its failure. */
export interface TaskEnd {
  yielded: boolean;
  error: Error | null;
}

/** Where a processor's code runs: in the host, or in its plugin's worker or process sandbox. */
export type ProcessorMode = 'inline' | 'worker' | 'process';

/**
 * The flow's one kind of handle on a processor, wherever it runs (the
 * host's makes it: `sandbox/inline-processor.ts` for inline plugins,
 * `sandbox/remote-processor.ts` for worker and process sandboxes). The
 * lifecycle methods are the processor's; a task goes through `runTask`.
 */
export interface ProcessorHandle extends Processor {
  readonly mode: ProcessorMode;
  /** Findings of the processor's own validate() that only its sandbox can give, once initialized (none inline: it ran when the node was built). */
  readonly findings: readonly ValidationFinding[];
  /** The sandboxed controller services it names, made in its sandbox; the flow sets them before `initialize` (none inline). */
  services: ServiceBinding[];
  /** Until when it gets no tasks (its sandbox over its CPU share), epoch ms; 0 inline. */
  readonly throttledUntil: number;
  /**
   * Runs one task; null when it found nothing to do (another task took the
   * batch while this one waited for a sandbox slot). Never applies a
   * commit after it returns, and always calls `task.finish` before.
   */
  runTask(task: ProcessorTask): Promise<TaskEnd | null>;
}

/** The flow's handle on a controller service of a sandboxed plugin (made in its processors' sandbox). */
export interface SandboxedService extends ControllerService {
  readonly [SANDBOXED]: true;
  readonly pluginId: string;
  readonly component: string;
}

export function isSandboxedService(s: ControllerService): s is SandboxedService {
  return (s as Partial<SandboxedService>)[SANDBOXED] === true;
}
