/**
 * `databridge/sdk`: the plugin author's contract. Everything a plugin needs
 * to know of the host is here; this module imports nothing else of DataBridge.
 *
 * @module databridge/sdk
 */

export type {
  ControllerService,
  ControllerServiceInfo,
  EvaluateOptions,
  InputRequirement,
  Logger,
  MetricsSnapshot,
  PluginDefinition,
  ProcessContext,
  Processor,
  ProcessorInfo,
  PropertyMigration,
  PropertySpec,
  PropertyType,
  PropertyValue,
  RelationshipSpec,
  ReportingTask,
  ReportingTaskInfo,
  StandardRelationship,
  ValidationFinding,
} from './processor.ts';
export { definePlugin, Relationships } from './processor.ts';
export type { ContentRange, FlowFile, ProcessSession } from './session.ts';
export { parseDataSize, parseDuration } from './units.ts';
