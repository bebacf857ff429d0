/**
 * The host ↔ sandbox wire protocol, the same for worker threads and child
 * processes. Requests carry a numeric `id` the reply repeats; the sandbox
 * opens with `ready` and the protocol version. A trigger sends a batch's
 * FlowFiles with their content packed into one buffer (transferred, not
 * copied, to a worker; through a content lane to a child process, see
 * channel.ts); the whole session runs in the sandbox and its
 * outcomes come back in the reply, so the host applies them once. Errors
 * cross as plain data.
 */

import type { SessionOutcome } from '../flow/outcome.ts';
import type {
  ControllerServiceInfo,
  FlowFile,
  MetricsSnapshot,
  ProcessorInfo,
  ReportingTaskInfo,
} from '../sdk/index.ts';

export const PROTOCOL_VERSION = 3;

/** An error as plain data: never a class across the boundary. */
export interface WireError {
  code: string;
  message: string;
  stack?: string;
  plugin?: string;
}

// host → sandbox

export interface LoadRequest {
  type: 'load';
  id: number;
  pluginId: string;
  root: string;
  entryPoint: string;
  digest: string;
  files: { path: string; sha256: string; size: number }[];
}

/** A controller service a processor names, made (once per sandbox) from the plugin that provides it. */
export interface ServiceBinding {
  id: string;
  pluginId: string;
  component: string;
  properties: Record<string, string>;
}

export interface CreateRequest {
  type: 'create';
  id: number;
  instance: number;
  /** Defaults to a processor. */
  kind?: 'processor' | 'reportingTask';
  pluginId: string;
  component: string;
  /** The processor's (or reporting task's) id in the flow. */
  processorId: string;
  properties: Record<string, string>;
  dynamicProperties: boolean;
  /** The controller services the processor names; enabled before it is made, disabled after the last user stops. */
  services?: ServiceBinding[];
}

/** Runs a reporting task instance once over a metrics snapshot. */
export interface ReportRequest {
  type: 'report';
  id: number;
  instance: number;
  metrics: MetricsSnapshot;
}

export interface TriggerRequest {
  type: 'trigger';
  id: number;
  instance: number;
  relationships: string[];
  inputs: FlowFile[];
  /** Each input's content lies at offsets[i] .. offsets[i] + inputs[i].size in `content`. */
  content: ArrayBuffer;
  offsets: number[];
}

export interface StopRequest {
  type: 'stop';
  id: number;
  instance: number;
}

export interface UsageRequest {
  type: 'usage';
  id: number;
}

export type HostMessage = LoadRequest | CreateRequest | TriggerRequest | ReportRequest | StopRequest | UsageRequest;

// sandbox → host

export interface ReadyMessage {
  type: 'ready';
  protocol: number;
}

/** What a plugin's module provides, each component by the info it gives of itself. */
export interface ComponentInfos {
  processors: Record<string, ProcessorInfo>;
  controllerServices: Record<string, ControllerServiceInfo>;
  reportingTasks: Record<string, ReportingTaskInfo>;
}

export interface LoadedReply extends ComponentInfos {
  type: 'loaded';
  id: number;
}

export interface CreatedReply {
  type: 'created';
  id: number;
  /** The processor's own validate() findings. */
  findings: { property?: string; message: string }[];
}

export interface TriggeredReply {
  type: 'triggered';
  id: number;
  /** One per commit, in order. */
  outcomes: SessionOutcome[];
  /** Inputs that go back to their queues. */
  leftovers: { id: string; penalize: boolean }[];
  yielded: boolean;
  error: WireError | null;
}

export interface ReportedReply {
  type: 'reported';
  id: number;
}

export interface StoppedReply {
  type: 'stopped';
  id: number;
}

export interface UsageReply {
  type: 'usage';
  id: number;
  heapUsed: number;
  heapTotal: number;
  rss: number;
  cpuUser: number;
  cpuSystem: number;
  /** Open handles (files, sockets, timers) as the sandbox sees them. */
  handles: number;
}

export interface ErrorReply {
  type: 'error';
  id: number;
  error: WireError;
}

export interface LogMessage {
  type: 'log';
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  fields: Record<string, unknown>;
  plugin: string;
}

export type SandboxMessage =
  | ReadyMessage
  | LoadedReply
  | CreatedReply
  | TriggeredReply
  | ReportedReply
  | StoppedReply
  | UsageReply
  | ErrorReply
  | LogMessage;

/** Plain data from anything thrown. */
export function toWireError(err: unknown, plugin?: string): WireError {
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; message?: unknown; stack?: unknown };
    return {
      code: typeof e.code === 'string' ? e.code : 'PLUGIN_ERROR',
      message: typeof e.message === 'string' ? e.message : String(err),
      stack: typeof e.stack === 'string' ? e.stack : undefined,
      plugin,
    };
  }
  return { code: 'PLUGIN_ERROR', message: String(err), plugin };
}
