/**
 * The host ↔ sandbox wire protocol, the same for worker threads and child
 * processes. Requests carry a numeric `id` the reply repeats; the sandbox
 * opens with `ready` and the protocol version. A trigger sends a batch's
 * FlowFiles with their content packed into one buffer (transferred, not
 * copied, to a worker; through a content lane to a child process, see
 * channel.ts); the whole session runs in the sandbox and its
 * outcomes come back in the reply, so the host applies them once. Errors
 * cross as plain data.
 *
 * Every message type of both directions is here, and nowhere else; the
 * host's check of what a sandbox sends (protocol-check.ts) is written beside
 * them, and every sandbox message goes through it before the host acts on it.
 */

import type { ServiceBinding } from '../flow/host.ts';
import type {
  ControllerServiceInfo,
  FlowFile,
  MetricsSnapshot,
  ProcessorInfo,
  ReportingTaskInfo,
} from '../sdk/index.ts';
import type { OutputFlowFile, SessionOutcome } from '../session/outcome.ts';

export const PROTOCOL_VERSION = 3;

/**
 * The bounds the host holds a sandbox's messages to (protocol-check.ts); the
 * runtime keeps a plugin's logs and errors within them, so only a sandbox
 * that writes to its channel itself goes past one. Lengths of strings are in
 * UTF-16 code units (a JS string's length): at most 3 bytes each in UTF-8.
 */
export const BOUNDS = {
  /** Attributes on one FlowFile. */
  attributes: 1024,
  /** An attribute's name. */
  attributeName: 1024,
  /** An attribute's value (64 Ki). */
  attributeValue: 64 * 1024,
  /** All of one FlowFile's attribute names and values together (1 Mi). */
  attributesTotal: 1024 * 1024,
  /** A log line's message (64 Ki); longer ones are cut by the runtime. */
  logMessage: 64 * 1024,
  /** A log line's fields, as JSON (64 Ki); bigger ones are left out by the runtime. */
  logFields: 64 * 1024,
  /** An error's message and its stack, each (64 Ki). */
  errorText: 64 * 1024,
  /** An error's code. */
  errorCode: 128,
  /** What a `loaded` reply says of a plugin's components, as JSON-like data (4 Mi). */
  componentInfos: 4 * 1024 * 1024,
  /** A `created` reply's findings. */
  findings: 1024,
} as const;

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
/** The flow owns the shape (src/flow/host.ts): a create request carries it as the flow made it. */
export type { ServiceBinding };

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

/**
 * A commit as sent: its new contents packed into one buffer, `lengths[i]`
 * bytes each, in order (they add up to the buffer's length); an output's
 * `attributes: null` means the input's, unchanged (the host has them).
 */
export interface WireOutcome extends Omit<SessionOutcome, 'contents' | 'outputs'> {
  outputs: WireOutput[];
  packed: ArrayBuffer;
  lengths: number[];
}

export type WireOutput = Omit<OutputFlowFile, 'attributes'> & { attributes: Record<string, string> | null };

export interface TriggeredReply {
  type: 'triggered';
  id: number;
  /** One per commit, in order. */
  outcomes: WireOutcome[];
  /** Inputs that go back to their queues: every input no commit consumed, once. */
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

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LogMessage {
  type: 'log';
  level: LogLevel;
  message: string;
  fields: Record<string, unknown>;
  plugin: string;
}

/** The reply each request expects (or an ErrorReply). */
export interface Replies {
  load: LoadedReply;
  create: CreatedReply;
  trigger: TriggeredReply;
  report: ReportedReply;
  stop: StoppedReply;
  usage: UsageReply;
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

/** `text` cut to `max` code units, saying so. */
export function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  const note = `… (${text.length - max} more characters cut)`;
  return text.slice(0, Math.max(0, max - note.length)) + note;
}

/** Plain data from anything thrown, within BOUNDS. */
export function toWireError(err: unknown, plugin?: string): WireError {
  try {
    return wireErrorOf(err, plugin);
  } catch {
    // a Proxy, or getters or a toString that throw
    return { code: 'PLUGIN_ERROR', message: 'the plugin threw a value that cannot be read as an error', plugin };
  }
}

function wireErrorOf(err: unknown, plugin?: string): WireError {
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; message?: unknown; stack?: unknown };
    return {
      code: typeof e.code === 'string' && e.code.length <= BOUNDS.errorCode ? e.code : 'PLUGIN_ERROR',
      message: cut(typeof e.message === 'string' ? e.message : String(err), BOUNDS.errorText),
      stack: typeof e.stack === 'string' ? cut(e.stack, BOUNDS.errorText) : undefined,
      plugin,
    };
  }
  return { code: 'PLUGIN_ERROR', message: cut(String(err), BOUNDS.errorText), plugin };
}
