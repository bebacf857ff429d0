/**
 * The flow's configuration and summaries: what a processor, a connection
 * and a schedule are configured with, what the flow reports of them, and
 * the checks every component's configuration goes through.
 */

import { createError } from '../errors.ts';
import { toSdkLogger } from '../log.ts';
import { type PropertySpec, parseDuration, type ValidationFinding } from '../sdk/index.ts';
import { validateProperties, withDefaults } from '../session/properties.ts';
import type { ConnectionStats } from './connection.ts';
import type { FlowHost } from './host.ts';
import type { ProcessorNode, ProcessorStats } from './processor-node.ts';
import type { ControllerServiceConfig, ReportingTaskConfig, ReportingTaskSummary, ServiceSummary } from './services.ts';

export interface FlowControllerOptions {
  /** The host: the plugin manager (`createFlowController({ manager })`). */
  manager: FlowHost;
  /**
   * `durable` (the default) keeps content segments and the FlowFile journal
   * under `<dataDir>/repository`; `memory` keeps nothing, for tests and
   * benchmarks.
   */
  repository?: 'durable' | 'memory';
  /** Defaults to the manager's data directory. */
  dataDir?: string;
}

export interface ScheduleConfig {
  /** Time between triggers: `10 ms`, `1 sec`, or milliseconds. Default 0 (as soon as there is work). */
  period?: string | number;
  /** Tasks of this processor at once. Default 1. */
  concurrentTasks?: number;
  /** Most FlowFiles one session takes. Default 100. */
  batchSize?: number;
}

export interface ProcessorConfig {
  id: string;
  name?: string;
  properties?: Readonly<Record<string, string>>;
  schedule?: ScheduleConfig;
  /** Relationships whose FlowFiles leave the flow. */
  autoTerminate?: readonly string[];
  /** How long a penalized FlowFile waits. Default `30 sec`. */
  penaltyDuration?: string;
  /** How long the processor rests after `ctx.yield()`. Default `1 sec`. */
  yieldDuration?: string;
  /**
   * The version of the processor's plugin the configuration was made with:
   * when the plugin is newer, the processor's declared migrations bring the
   * properties up to date.
   */
  version?: string;
}

export interface ConnectionConfig {
  /** Default `<source>/<relationship>/<destination>`; the journal files queued FlowFiles under it. */
  id?: string;
  source: string;
  relationship: string;
  destination: string;
  backPressure?: { objects?: number; size?: string | number };
}

export interface ProcessorSummary extends ProcessorStats {
  id: string;
  type: string;
  name: string;
  pluginId: string;
  state: ProcessorNode['state'];
  activeTasks: number;
  findings: ValidationFinding[];
  /** The version of the plugin that runs it. */
  pluginVersion: string;
  /** What the property migrations changed when the flow was made with an older version, else null. */
  migrated: string | null;
}

export interface FlowStats {
  processors: Record<string, ProcessorSummary>;
  connections: ConnectionStats[];
  controllerServices: ServiceSummary[];
  reportingTasks: ReportingTaskSummary[];
  /** FlowFiles recovered for queues the current flow does not have; kept, not dropped. */
  orphaned: number;
}

export function durationMs(value: string | number | undefined, fallback: number, what: string): number {
  if (value === undefined) return fallback;
  const ms = typeof value === 'number' ? value : parseDuration(value);
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) {
    throw createError('USAGE', { message: `${what} must be a duration such as "10 ms", not "${value}"` });
  }
  return ms;
}

/** PROCESSOR_INVALID with the findings, for people and in `details`. */
export function invalid(id: string, findings: readonly ValidationFinding[]): Error {
  return createError('PROCESSOR_INVALID', { id, findings }, { details: { findings } });
}

/** What keeps a processor from starting: its findings and relationships that go nowhere. */
export function startProblems(node: ProcessorNode): ValidationFinding[] {
  return [
    ...node.findings,
    ...node.unconnected().map((r) => ({ message: `relationship "${r}" is neither connected nor auto-terminated` })),
  ];
}

/** A controller service's or reporting task's properties (defaults filled in), their findings, and its logger. */
export function configured(
  host: FlowHost,
  pluginId: string,
  specs: readonly PropertySpec[],
  config: ControllerServiceConfig | ReportingTaskConfig,
  role: 'service' | 'reportingTask',
) {
  const properties = withDefaults(specs, { ...(config.properties ?? {}) });
  return {
    properties,
    findings: validateProperties(specs, properties),
    logger: toSdkLogger(host.log.child({ plugin: pluginId, [role]: config.id })),
  };
}
