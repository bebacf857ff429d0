/**
 * The host ↔ sandbox wire protocol, the same for worker threads and child
 * processes. Requests carry a numeric `id` the reply repeats; the sandbox
 * opens with `ready` and the protocol version. A trigger sends a batch's
 * FlowFiles with their content packed into one buffer (transferred, not
 * copied, to a worker); the whole session runs in the sandbox and its
 * outcomes come back in the reply, so the host applies them once. Errors
 * cross as plain data.
 */

import type { SessionOutcome } from '../flow/outcome.ts';
import type { FlowFile, ProcessorInfo } from '../sdk/index.ts';

export const PROTOCOL_VERSION = 1;

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

export interface CreateRequest {
  type: 'create';
  id: number;
  instance: number;
  pluginId: string;
  component: string;
  processorId: string;
  properties: Record<string, string>;
  dynamicProperties: boolean;
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

export type HostMessage = LoadRequest | CreateRequest | TriggerRequest | StopRequest | UsageRequest;

// sandbox → host

export interface ReadyMessage {
  type: 'ready';
  protocol: number;
}

export interface LoadedReply {
  type: 'loaded';
  id: number;
  processors: Record<string, ProcessorInfo>;
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
