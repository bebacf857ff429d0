/**
 * The host's check of every message a sandbox sends, worker or process,
 * written beside the types it checks (protocol.ts). The host trusts nothing
 * a sandbox says: a message is checked here before anything acts on it, and
 * anything that is not what the protocol says is a ProtocolViolation, which
 * the host treats as the sandbox's fault (sandbox-host.ts: killed and
 * restarted, its sessions rolled back, alert SANDBOX_PROTOCOL_VIOLATION).
 *
 * Two steps:
 * - checkSandboxMessage: the shape of any message on its own. A known type;
 *   fields of the right types within BOUNDS; log levels that exist; a log or
 *   an error naming a plugin this sandbox runs; content lengths that are
 *   integers from 0 and add up to the buffer sent.
 * - checkReply: a reply against the request in flight it answers: of the
 *   kind that request expects (or `error`), and for a trigger, outcomes the
 *   host can apply without losing or duplicating a FlowFile: every input
 *   consumed once or left over once, an input sent on only by the commit
 *   that consumed it and only once, new FlowFile ids fresh (UUIDs, none
 *   twice, none the host already holds), parents that are inputs or new
 *   FlowFiles of the same reply, relationships the trigger offered, content
 *   within its source. An input's identity, dates and lineage are taken from
 *   the host's own FlowFile, never from the reply.
 *
 * The process channel's codec (codec.ts) reads a reply's compact JSON into
 * the same TriggeredReply first; both sandbox kinds then go through these
 * same checks.
 */

import type { FlowFile } from '../sdk/index.ts';
import {
  BOUNDS,
  type ComponentInfos,
  type HostMessage,
  LOG_LEVELS,
  type LogLevel,
  type SandboxMessage,
  type TriggeredReply,
  type WireError,
  type WireOutcome,
  type WireOutput,
} from './protocol.ts';

/** A message that breaks the protocol: the sandbox's fault. The message says what was wrong. */
export class ProtocolViolation extends Error {
  readonly code = 'SANDBOX_PROTOCOL_VIOLATION';
}

/** The kind of reply each request expects (besides `error`). */
export const REPLY_TO = {
  load: 'loaded',
  create: 'created',
  trigger: 'triggered',
  report: 'reported',
  stop: 'stopped',
  usage: 'usage',
} as const satisfies Record<HostMessage['type'], SandboxMessage['type']>;

/** A FlowFile id as a session makes one (randomUUID). */
const FLOWFILE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const LEVELS: ReadonlySet<string> = new Set(LOG_LEVELS);

function fail(what: string): never {
  throw new ProtocolViolation(what);
}

/** A value as a violation's message may quote it: short, whatever it is. */
export function quote(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  if (Array.isArray(v)) return `a list of ${v.length}`;
  const kind = Object.prototype.toString.call(v).slice(8, -1);
  return `${/^[AEIOU]/.test(kind) ? 'an' : 'a'} ${kind}`;
}

/** A plain object: what JSON or a structured clone of one makes (not a Map, a Date, a typed array, a list). */
function isPlain(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function object(v: unknown, what: string): Record<string, unknown> {
  if (!isPlain(v)) fail(`${what} that is ${quote(v)}, not an object`);
  return v;
}

function list(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) fail(`${what} that is ${quote(v)}, not a list`);
  return v;
}

function int(v: unknown, min: number, max: number, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    fail(`${what} of ${quote(v)} (an integer from ${min} to ${max})`);
  return v;
}

function text(v: unknown, max: number, what: string): string {
  if (typeof v !== 'string') fail(`${what} that is ${quote(v)}, not a string`);
  if (v.length > max) fail(`${what} of ${v.length} characters (at most ${max})`);
  return v;
}

function bool(v: unknown, what: string): boolean {
  if (typeof v !== 'boolean') fail(`${what} that is ${quote(v)}, not a boolean`);
  return v;
}

const id = (v: unknown) => int(v, 1, Number.MAX_SAFE_INTEGER, 'a request id');

/**
 * JSON-like data (null, booleans, finite numbers, strings, lists, plain
 * objects; undefined as JSON leaves it out) of at most `max` characters as
 * JSON would spell it, roughly, and 64 levels deep.
 */
function jsonLike(v: unknown, max: number, what: string): void {
  let left = max;
  const walk = (x: unknown, depth: number): void => {
    if (depth > 64) fail(`${what} nested more than 64 deep`);
    switch (typeof x) {
      case 'string':
        left -= x.length + 2;
        break;
      case 'number':
        if (!Number.isFinite(x)) fail(`${what} holding the number ${x}`);
        left -= 8;
        break;
      case 'boolean':
      case 'undefined':
        left -= 5;
        break;
      case 'object':
        left -= 2;
        if (x === null) break;
        if (Array.isArray(x)) {
          for (let i = 0; i < x.length && left >= 0; i++) walk(x[i], depth + 1);
          break;
        }
        if (!isPlain(x)) fail(`${what} holding ${quote(x)}`);
        for (const k in x) {
          left -= k.length + 3;
          if (left < 0) break;
          walk(x[k], depth + 1);
        }
        break;
      default:
        fail(`${what} holding a ${typeof x}`);
    }
    if (left < 0) fail(`${what} over ${max} characters`);
  };
  walk(v, 0);
}

/** A FlowFile's attributes: a plain object of strings, within BOUNDS. */
export function checkAttributes(v: unknown): Record<string, string> {
  if (!isPlain(v)) fail(`attributes that are ${quote(v)}, not an object`);
  let n = 0;
  let total = 0;
  for (const k in v) {
    const value = v[k];
    if (++n > BOUNDS.attributes) fail(`more than ${BOUNDS.attributes} attributes on one FlowFile`);
    if (k.length > BOUNDS.attributeName)
      fail(`an attribute name of ${k.length} characters (at most ${BOUNDS.attributeName})`);
    if (typeof value !== 'string') fail(`attribute ${quote(k)} that is ${quote(value)}, not a string`);
    if (value.length > BOUNDS.attributeValue)
      fail(`attribute ${quote(k)} of ${value.length} characters (at most ${BOUNDS.attributeValue})`);
    total += k.length + value.length;
    if (total > BOUNDS.attributesTotal)
      fail(`attributes of more than ${BOUNDS.attributesTotal} characters on one FlowFile`);
  }
  return v as Record<string, string>;
}

/** Who may be named as a plugin: those the sandbox runs. */
export type Hosts = (plugin: string) => boolean;

function plugin(v: unknown, hosts: Hosts, what: string): string {
  const name = text(v, 256, `${what} naming a plugin`);
  if (!hosts(name)) fail(`${what} claiming plugin ${quote(name)}, which this sandbox does not run`);
  return name;
}

function wireError(v: unknown, hosts: Hosts): WireError {
  const e = object(v, 'an error');
  return {
    code: text(e.code, BOUNDS.errorCode, 'an error code'),
    message: text(e.message, BOUNDS.errorText, 'an error message'),
    stack: e.stack === undefined ? undefined : text(e.stack, BOUNDS.errorText, 'an error stack'),
    plugin: e.plugin === undefined ? undefined : plugin(e.plugin, hosts, 'an error'),
  };
}

function components(m: Record<string, unknown>): ComponentInfos {
  jsonLike(m, BOUNDS.componentInfos, 'a loaded reply');
  const kind = (k: keyof ComponentInfos) => {
    const infos = object(m[k], `${k}`);
    for (const name in infos) {
      const info = object(infos[name], `${k}.${name}`);
      text(info.name, 1024, `${k}.${name} with a name`);
      for (const f of ['relationships', 'properties'] as const) {
        if (info[f] === undefined && k !== 'processors') continue;
        for (const r of list(info[f], `${k}.${name}.${f}`))
          text(object(r, `one of ${f}`).name, 1024, `one of ${f}, with a name`);
      }
    }
    return infos as never;
  };
  return {
    processors: kind('processors'),
    controllerServices: kind('controllerServices'),
    reportingTasks: kind('reportingTasks'),
  };
}

function output(v: unknown, lengths: readonly number[]): asserts v is WireOutput {
  const o = object(v, 'an output');
  text(o.id, 64, 'an output id');
  if (o.attributes !== null) checkAttributes(o.attributes);
  int(o.entryDate, 0, Number.MAX_SAFE_INTEGER, 'an entryDate');
  int(o.lineageStartDate, 0, Number.MAX_SAFE_INTEGER, 'a lineageStartDate');
  for (const p of list(o.parentIds, 'parent ids')) text(p, 64, 'a parent id');
  text(o.relationship, 1024, 'a relationship');
  bool(o.penalize, 'a penalty flag');
  const c = object(o.content, 'a content');
  if (c.kind === 'empty') return;
  if (c.kind !== 'input' && c.kind !== 'new') fail(`a content of kind ${quote(c.kind)}`);
  const offset = int(c.offset, 0, Number.MAX_SAFE_INTEGER, 'a content offset');
  const length = int(c.length, 0, Number.MAX_SAFE_INTEGER, 'a content length');
  if (c.kind === 'input') text(c.from, 64, 'a content source');
  else {
    const index = int(c.index, 0, lengths.length - 1, 'a buffer index');
    if (offset + length > lengths[index]!)
      fail(`a content of ${offset}+${length} in a buffer of ${lengths[index]} bytes`);
  }
}

function outcome(v: unknown): asserts v is WireOutcome {
  const o = object(v, 'an outcome');
  let sum = 0;
  const lengths = list(o.lengths, 'content lengths');
  for (const n of lengths) sum += int(n, 0, Number.MAX_SAFE_INTEGER, 'a content length');
  if (!(o.packed instanceof ArrayBuffer)) fail(`new content that is ${quote(o.packed)}, not an ArrayBuffer`);
  if (sum !== o.packed.byteLength)
    fail(`content lengths that add up to ${sum} bytes, not the ${o.packed.byteLength} sent`);
  for (const c of list(o.consumed, 'consumed')) text(c, 64, 'a consumed id');
  for (const out of list(o.outputs, 'outputs')) output(out, lengths as number[]);
}

function triggered(m: Record<string, unknown>, hosts: Hosts): asserts m is Record<string, unknown> & TriggeredReply {
  for (const o of list(m.outcomes, 'outcomes')) outcome(o);
  for (const l of list(m.leftovers, 'leftovers')) {
    const left = object(l, 'a leftover');
    text(left.id, 64, 'a leftover id');
    bool(left.penalize, 'a penalty flag');
  }
  bool(m.yielded, 'yielded');
  if (m.error !== null) m.error = wireError(m.error, hosts);
  id(m.id);
}

function count(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail(`${what} of ${quote(v)}`);
  return v;
}

/**
 * Checks a message from a sandbox on its own (its shape, types and bounds)
 * and returns it as the protocol's type; throws a ProtocolViolation saying
 * what is wrong. `hosts` says which plugins the sandbox runs: a log or an
 * error naming another is a violation. Small messages come back as new
 * objects of their known fields only; a trigger's reply is checked where it
 * lies (its error replaced by a checked copy).
 */
export function checkSandboxMessage(value: unknown, hosts: Hosts): SandboxMessage {
  const m = object(value, 'a message');
  switch (m.type) {
    case 'ready':
      return { type: 'ready', protocol: int(m.protocol, 0, 1_000_000, 'a protocol version') };
    case 'log': {
      const level = m.level;
      if (typeof level !== 'string' || !LEVELS.has(level)) fail(`a log of level ${quote(level)}`);
      const message = text(m.message, BOUNDS.logMessage, 'a log message');
      const fields = object(m.fields, 'log fields');
      jsonLike(fields, BOUNDS.logFields, 'log fields');
      return { type: 'log', level: level as LogLevel, message, fields, plugin: plugin(m.plugin, hosts, 'a log') };
    }
    case 'loaded':
      return { type: 'loaded', id: id(m.id), ...components(m) };
    case 'created': {
      const findings = list(m.findings, 'findings');
      if (findings.length > BOUNDS.findings) fail(`${findings.length} findings (at most ${BOUNDS.findings})`);
      return {
        type: 'created',
        id: id(m.id),
        findings: findings.map((v) => {
          const f = object(v, 'a finding');
          const message = text(f.message, BOUNDS.errorText, 'a finding message');
          return f.property === undefined
            ? { message }
            : { property: text(f.property, 1024, 'a finding property'), message };
        }),
      };
    }
    case 'triggered':
      triggered(m, hosts);
      return m;
    case 'reported':
    case 'stopped':
      return { type: m.type, id: id(m.id) };
    case 'usage':
      return {
        type: 'usage',
        id: id(m.id),
        heapUsed: count(m.heapUsed, 'heapUsed'),
        heapTotal: count(m.heapTotal, 'heapTotal'),
        rss: count(m.rss, 'rss'),
        cpuUser: count(m.cpuUser, 'cpuUser'),
        cpuSystem: count(m.cpuSystem, 'cpuSystem'),
        handles: count(m.handles, 'handles'),
      };
    case 'error':
      return { type: 'error', id: id(m.id), error: wireError(m.error, hosts) };
    default:
      return fail(`a message of unknown type ${quote(m.type)}`);
  }
}

/** What the host holds of a trigger in flight, to check its reply against. */
export interface TriggerInFlight {
  inputs: readonly FlowFile[];
  relationships: readonly string[];
  /** Whether the host holds a FlowFile of this id anywhere (queued or in a task): a new FlowFile's id must not be one. */
  holds?: (id: string) => boolean;
  /**
   * Called with a checked reply's new ids before the check returns, so that
   * `holds` answers true for them at once: a second reply checked in the
   * same turn (two frames in one read) cannot make the same ids again
   * before the first is applied.
   */
  claim?: (ids: readonly string[]) => void;
}

/**
 * Checks a reply (already through checkSandboxMessage) against the request
 * it answers; throws a ProtocolViolation saying what is wrong. For a
 * trigger, an input sent on is given the host's own dates and lineage.
 */
export function checkReply(request: HostMessage['type'], reply: SandboxMessage, trigger?: TriggerInFlight): void {
  if (reply.type === 'error') return;
  if (reply.type !== REPLY_TO[request]) fail(`a ${reply.type} reply to a ${request} request`);
  if (reply.type === 'triggered') {
    if (!trigger) fail('a triggered reply to no trigger');
    checkOutcomes(reply, trigger);
  }
}

function checkOutcomes(reply: TriggeredReply, trigger: TriggerInFlight): void {
  const inputs = trigger.inputs;
  const n = inputs.length;
  /**
   * An input's index by its id: where the last one found was, plus one (a
   * reply names inputs in their order, mostly), else by a map made once.
   */
  let next = 0;
  let byId: Map<string, number> | null = null;
  const index = {
    get(id: string): number | undefined {
      let i: number | undefined = next < n && inputs[next]!.id === id ? next : undefined;
      if (i === undefined) {
        if (!byId) {
          byId = new Map();
          for (let j = 0; j < n; j++) byId.set(inputs[j]!.id, j);
        }
        i = byId.get(id);
      }
      if (i !== undefined) next = i + 1;
      return i;
    },
    has: (id: string) => index.get(id) !== undefined,
  };
  const relationships = trigger.relationships;
  /** Per input: 1 + the commit that consumed it (0: none), whether sent on, whether left over. */
  const consumedBy = new Int32Array(n);
  const sentOn = new Uint8Array(n);
  const back = new Uint8Array(n);
  const outcomes = reply.outcomes;
  for (let k = 0; k < outcomes.length; k++) {
    for (const c of outcomes[k]!.consumed) {
      const i = index.get(c);
      if (i === undefined) fail(`consumed ${quote(c)}, which is not an input of the trigger`);
      if (consumedBy[i]) fail(`input ${c} consumed twice`);
      consumedBy[i] = k + 1;
    }
  }
  const fresh = new Set<string>();
  const made: WireOutput[] = [];
  next = 0;
  for (let k = 0; k < outcomes.length; k++) {
    for (const out of outcomes[k]!.outputs) {
      if (!relationships.includes(out.relationship))
        fail(`an output to relationship ${quote(out.relationship)}, not offered`);
      const i = index.get(out.id);
      if (i !== undefined) {
        if (consumedBy[i] !== k + 1) fail(`input ${out.id} sent on by a commit that did not consume it`);
        if (sentOn[i]) fail(`input ${out.id} sent on twice`);
        sentOn[i] = 1;
        const input = inputs[i]!;
        out.entryDate = input.entryDate;
        out.lineageStartDate = input.lineageStartDate;
        out.parentIds = input.parentIds.length ? [...input.parentIds] : [];
      } else {
        if (!FLOWFILE_ID.test(out.id)) fail(`a new FlowFile id ${quote(out.id)} that is not a UUID`);
        if (fresh.has(out.id)) fail(`new FlowFile id ${out.id} twice`);
        if (trigger.holds?.(out.id)) fail(`a new FlowFile with id ${out.id}, which the host already holds`);
        if (out.attributes === null) fail(`a new FlowFile ${out.id} without attributes`);
        fresh.add(out.id);
        made.push(out);
      }
      const c = out.content;
      if (c.kind === 'input') {
        const from = index.get(c.from);
        if (from === undefined) fail(`content of ${quote(c.from)}, which is not an input`);
        const by = consumedBy[from]!;
        if (by && by < k + 1) fail(`content of input ${c.from}, consumed by an earlier commit`);
        // an empty input has no content to take from (its outputs' content is kind "empty"), as the host holds it
        if (inputs[from]!.size === 0) fail(`content of input ${c.from}, which has none`);
        if (c.offset + c.length > inputs[from]!.size)
          fail(`content ${c.offset}+${c.length} of input ${c.from}, which has ${inputs[from]!.size} bytes`);
      }
    }
  }
  const most = n + fresh.size;
  for (const out of made) {
    if (out.parentIds.length > most) fail(`a new FlowFile with ${out.parentIds.length} parents`);
    for (const p of out.parentIds)
      if (!index.has(p) && !fresh.has(p)) fail(`a new FlowFile whose parent ${quote(p)} is neither an input nor new`);
  }
  for (const l of reply.leftovers) {
    const i = index.get(l.id);
    if (i === undefined) fail(`a leftover ${quote(l.id)}, which is not an input`);
    if (consumedBy[i]) fail(`input ${l.id} both consumed and left over`);
    if (back[i]) fail(`input ${l.id} left over twice`);
    back[i] = 1;
  }
  for (let i = 0; i < n; i++)
    if (!consumedBy[i] && !back[i]) fail(`input ${inputs[i]!.id} neither consumed nor left over`);
  if (fresh.size) trigger.claim?.([...fresh]);
}
