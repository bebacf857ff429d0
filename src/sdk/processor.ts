/**
 * The processor contract: what a plugin author implements and what the host
 * hands to it. This module imports nothing from the rest of DataBridge, so
 * `databridge/sdk` can be split out as a package of its own.
 */

import type { FlowFile, ProcessSession } from './session.ts';

/** Severity-free log sink handed to plugin code; the host adds the plugin id. */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** How a property's value is interpreted and checked before the processor may start. */
export type PropertyType =
  | 'string'
  | 'integer'
  | 'number'
  | 'boolean'
  | 'dataSize'
  | 'duration'
  | 'path'
  | 'regex'
  | 'controllerService';

/**
 * One configurable property of a processor. Names follow NiFi's habit of
 * human-readable names (`File Size`, `Batch Size`), which flows use as keys.
 *
 * @example
 * const batchSize: PropertySpec = {
 *   name: 'Batch Size', description: 'FlowFiles made per trigger',
 *   type: 'integer', defaultValue: '1', required: true,
 * };
 */
export interface PropertySpec {
  /** The key used in flow files and `ctx.getProperty()`. */
  name: string;
  /** Shown in the console; defaults to `name`. */
  displayName?: string;
  /** What it does, for people (the console and the docs show it). */
  description: string;
  /** A processor with a required property unset does not start. */
  required?: boolean;
  /** Never logged, never returned by the API in clear. */
  sensitive?: boolean;
  /** The value when the flow does not set one. */
  defaultValue?: string;
  /** The value must be one of these. */
  allowedValues?: readonly string[];
  /** The value must match this regular expression (whole value). */
  pattern?: string;
  /**
   * Defaults to `string`. `controllerService`: the value is the id of a
   * controller service in the flow, which `ctx.getControllerService(value)`
   * returns; the flow checks that it exists and that the processor can reach it.
   */
  type?: PropertyType;
  /** The value may hold `${attribute}` expressions, evaluated per FlowFile. */
  expressionLanguage?: boolean;
}

/** The relationships every processor author reaches for first. */
export type StandardRelationship = 'success' | 'failure' | 'retry' | 'original';

/** A named outlet of a processor; custom names are allowed beside the standard ones. */
export interface RelationshipSpec {
  name: StandardRelationship | (string & {});
  description?: string;
  /** Auto-terminated unless the flow connects it. */
  autoTerminateByDefault?: boolean;
}

/** The standard relationships, ready to list in `ProcessorInfo.relationships`. */
export const Relationships = {
  SUCCESS: { name: 'success', description: 'FlowFiles processed successfully' },
  FAILURE: { name: 'failure', description: 'FlowFiles that could not be processed' },
  RETRY: { name: 'retry', description: 'FlowFiles that may succeed if tried again' },
  ORIGINAL: { name: 'original', description: 'The input FlowFile, after its children were made' },
} as const satisfies Record<string, RelationshipSpec>;

/**
 * How a processor's properties change from one version of its plugin to the
 * next, as data the host applies when a flow made with an older version runs
 * on this one. Steps apply in this order: `rename`, `values`, `remove`, `add`.
 *
 * @example
 * // 2.0.0 renamed "Case" to "Mode" and spelled its values in capitals
 * const toTwo: PropertyMigration = {
 *   version: '2.0.0',
 *   rename: { Case: 'Mode' },
 *   values: { Mode: { upper: 'UPPER', lower: 'LOWER' } },
 * };
 */
export interface PropertyMigration {
  /** The plugin version that made the change: flows made with an older version get it. */
  version: string;
  /** What changed, for people (shown in the flow's findings). */
  description?: string;
  /** Old property name → new name. */
  rename?: Readonly<Record<string, string>>;
  /** Property name (after renaming) → old value → new value. */
  values?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** Properties that no longer exist. */
  remove?: readonly string[];
  /** Properties to set when the flow does not set them (a new required property's value for old flows). */
  add?: Readonly<Record<string, string>>;
}

/** Whether the processor takes FlowFiles from incoming connections. */
export type InputRequirement = 'required' | 'allowed' | 'forbidden';

/** What a processor says about itself: shown in the registry, the API and the console. */
export interface ProcessorInfo {
  name: string;
  description: string;
  version: string;
  author?: string;
  tags: readonly string[];
  properties: readonly PropertySpec[];
  relationships: readonly RelationshipSpec[];
  /** Properties not listed in `properties` are accepted (as UpdateAttribute does). */
  dynamicProperties?: boolean;
  /** Defaults to `allowed`. Sources say `forbidden`. */
  inputRequirement?: InputRequirement;
  /** FlowFiles per session when the flow does not say (MergeContent wants many). Default 100. */
  defaultBatchSize?: number;
  /** How flows made with older versions of the plugin are brought up to this one, oldest first or in any order. */
  migrations?: readonly PropertyMigration[];
}

/** One problem found with a processor's configuration. */
export interface ValidationFinding {
  /** The property at fault, when there is one. */
  property?: string;
  message: string;
}

/**
 * A property's value with typed accessors. Accessors throw a plain `Error`
 * naming the property when the value does not fit the type; the host
 * validates typed properties before the processor starts, so this is rare.
 */
export interface PropertyValue {
  /** The configured value, or the default, or `undefined`. */
  readonly value: string | undefined;
  isSet(): boolean;
  asString(): string;
  asInteger(): number;
  asNumber(): number;
  asBoolean(): boolean;
  /** Bytes, from `10 KB`, `1 MiB`, `512 B`. */
  asDataSize(): number;
  /** Milliseconds, from `10 ms`, `5 sec`, `1 min`. */
  asDuration(): number;
  /**
   * Evaluates `${attribute}` expressions against a FlowFile's attributes
   * (and `options.variables`, which win over them).
   *
   * @example
   * // ReplaceText's capture groups, as NiFi gives them: ${'$1':toUpper()}
   * ctx.getProperty('Replacement Value').evaluate(ff, { variables: { $1: 'hello' } }).asString(); // 'HELLO'
   */
  evaluate(flowFile?: FlowFile, options?: EvaluateOptions): PropertyValue;
}

/** What `PropertyValue.evaluate()` may be given besides the FlowFile. */
export interface EvaluateOptions {
  /** Names an expression can read besides the FlowFile's attributes, and over them (a capture group as `'$1'`). */
  variables?: Readonly<Record<string, string>>;
  /** Applied to what each `${…}` yields, not to the literal text around it (to escape it for a later step). */
  escape?: (value: string) => string;
}

/**
 * What `initialize()`, `onTrigger()` and `onStopped()` see of the host (and
 * what a controller service's `enable()` and a reporting task's `onTrigger()`
 * see, with `processorId` their own id in the flow).
 */
export interface ProcessContext {
  /** The processor's id in the flow. */
  readonly processorId: string;
  readonly logger: Logger;
  /** A property by name, with its default applied. */
  getProperty(name: string): PropertyValue;
  /** Every configured property, defaults applied; includes dynamic properties. */
  getProperties(): Readonly<Record<string, string>>;
  /** A controller service enabled in the flow, by its id. Throws when absent. */
  getControllerService<T = unknown>(id: string): T;
  /** Ask the scheduler to leave this processor alone for a while (no work to do). */
  yield(): void;
}

/**
 * A processor: the unit of work in a flow.
 *
 * @example
 * const upper: Processor = {
 *   getInfo: () => ({ name: 'UpperCase', description: 'Upper-cases text', version: '1.0.0',
 *     tags: ['text'], properties: [], relationships: [Relationships.SUCCESS] }),
 *   async onTrigger(ctx, session) {
 *     const ff = session.get();
 *     if (!ff) return;
 *     const text = new TextDecoder().decode(await session.read(ff));
 *     session.transfer(session.write(ff, text.toUpperCase()), 'success');
 *     session.commit();
 *   },
 * };
 */
export interface Processor {
  getInfo(): ProcessorInfo;
  /** Called once before the first trigger. */
  initialize?(ctx: ProcessContext): void | Promise<void>;
  /**
   * Relationships that depend on the configuration (RouteOnAttribute's come
   * from its dynamic properties). Without it, `getInfo().relationships`.
   */
  getRelationships?(properties: Readonly<Record<string, string>>): readonly RelationshipSpec[];
  /** Extra checks beyond the PropertySpecs; every finding is reported. */
  validate?(properties: Readonly<Record<string, string>>): readonly ValidationFinding[];
  /** One unit of work over one session. A throw rolls the session back. */
  onTrigger(ctx: ProcessContext, session: ProcessSession): void | Promise<void>;
  /** Called once when the processor is stopped. */
  onStopped?(ctx: ProcessContext): void | Promise<void>;
}

/** What a controller service says about itself. */
export interface ControllerServiceInfo {
  name: string;
  description: string;
  version: string;
  tags: readonly string[];
  properties: readonly PropertySpec[];
}

/**
 * A shared resource (a connection pool, a lookup table) that processors
 * reach through `ctx.getControllerService(id)`. Whatever else the object
 * exposes is its API to processors. The host enables it before the first
 * processor that names it starts, and disables it after the last one stops.
 * It runs beside the processors that use it: in the host for inline
 * plugins, in the plugin's sandbox otherwise (so a sandboxed plugin's
 * processors use its own services).
 *
 * @example
 * const rates: ControllerService & { rate(code: string): number } = {
 *   getInfo: () => ({ name: 'RateTable', description: 'Exchange rates', version: '1.0.0', tags: [], properties: [] }),
 *   rate: (code) => (code === 'EUR' ? 1.08 : 1),
 * };
 */
export interface ControllerService {
  getInfo(): ControllerServiceInfo;
  /** Called before the first processor that uses the service starts; a throw keeps that processor stopped. */
  enable?(ctx: ProcessContext): void | Promise<void>;
  /** Called after the last processor that uses the service stopped. */
  disable?(): void | Promise<void>;
}

/** A point-in-time view of the flow handed to reporting tasks. */
export interface MetricsSnapshot {
  readonly at: number;
  readonly processors: Readonly<
    Record<string, { in: number; out: number; bytesIn: number; bytesOut: number; tasks: number; errors: number }>
  >;
  readonly queued: number;
  readonly queuedBytes: number;
}

/** What a reporting task says about itself. */
export interface ReportingTaskInfo {
  name: string;
  description: string;
  version: string;
  tags: readonly string[];
  properties: readonly PropertySpec[];
  /** How often the task runs by default, e.g. `30 sec`. */
  defaultPeriod?: string;
}

/**
 * A periodic task that reads the flow's metrics: to log, export or alert.
 * It runs every `period` of the flow (default `defaultPeriod`, else 30 s)
 * while the flow runs, in its plugin's sandbox, under its limits.
 *
 * @example
 * const report: ReportingTask = {
 *   getInfo: () => ({ name: 'QueueReport', description: 'Logs the queue depth', version: '1.0.0', tags: [], properties: [] }),
 *   onTrigger: (ctx, metrics) => ctx.logger.info('queued', { queued: metrics.queued }),
 * };
 */
export interface ReportingTask {
  getInfo(): ReportingTaskInfo;
  /** Called once before the first run. */
  initialize?(ctx: ProcessContext): void | Promise<void>;
  onTrigger(ctx: ProcessContext, metrics: MetricsSnapshot): void | Promise<void>;
  /** Called once when the flow stops the task. */
  onStopped?(ctx: ProcessContext): void | Promise<void>;
}

/**
 * A plugin's entry module default-exports this: each component by a factory
 * that returns a fresh instance.
 */
export interface PluginDefinition {
  processors?: Readonly<Record<string, () => Processor>>;
  controllerServices?: Readonly<Record<string, () => ControllerService>>;
  reportingTasks?: Readonly<Record<string, () => ReportingTask>>;
}

/**
 * Types a plugin's default export; at run time it returns its argument.
 *
 * @example
 * export default definePlugin({ processors: { UpperCase: () => upper } });
 */
export function definePlugin<T extends PluginDefinition>(definition: T): T {
  return definition;
}
