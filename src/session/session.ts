/**
 * The batch-at-a-time session. It never touches queues or repositories: it
 * buffers what the processor does and, at commit, hands a plain-data
 * `SessionOutcome` to its backend. The same class runs on the host (inline)
 * and inside a sandbox, where the backend sends the outcome across.
 */

import { randomUUID } from 'node:crypto';
import { createError } from '../errors.ts';
import type { ContentRange, FlowFile, Logger, Processor, ProcessSession } from '../sdk/index.ts';
import type { OutputContent, OutputFlowFile, SessionOutcome } from './outcome.ts';
import type { StandardProcessContext } from './properties.ts';

/** What a session needs from whoever runs it. */
export interface SessionBackend {
  /** The relationships the processor declared (dynamic ones included). */
  readonly relationships: ReadonlySet<string>;
  readonly logger: Logger;
  /** The whole content of an input FlowFile. */
  readInput(id: string): Uint8Array | Promise<Uint8Array>;
  /** Applies a committed outcome; throws when it cannot, and the session then rolls back. */
  apply(outcome: SessionOutcome): void;
}

type InputState = 'waiting' | 'held' | 'consumed' | 'returned' | 'returned-penalized';

/** A FlowFile of the session as it stands: what becomes an output at commit, while not yet routed. */
interface Working extends Omit<OutputFlowFile, 'relationship'> {
  /** An input of the batch (its id is kept when it is transferred). */
  input: boolean;
  relationship: string | null;
  removed: boolean;
}

const EMPTY: OutputContent = { kind: 'empty' };
const encoder = new TextEncoder();

function sizeOf(c: OutputContent): number {
  return c.kind === 'empty' ? 0 : c.length;
}

/** @internal the host and the sandboxes make sessions; plugins only see `ProcessSession`. */
export class StandardProcessSession implements ProcessSession {
  readonly #backend: SessionBackend;
  readonly #inputs: FlowFile[];
  readonly #inputState = new Map<string, InputState>();
  #cursor = 0;
  #working = new Map<string, Working>();
  #contents: Uint8Array[] = [];
  #readCache = new Map<string, Uint8Array>();

  constructor(backend: SessionBackend, inputs: readonly FlowFile[]) {
    this.#backend = backend;
    this.#inputs = [...inputs];
    for (const ff of inputs) this.#inputState.set(ff.id, 'waiting');
  }

  get logger(): Logger {
    return this.#backend.logger;
  }

  get(): FlowFile | undefined {
    while (this.#cursor < this.#inputs.length) {
      const ff = this.#inputs[this.#cursor++]!;
      if (this.#inputState.get(ff.id) !== 'waiting') continue;
      this.#inputState.set(ff.id, 'held');
      const w: Working = {
        id: ff.id,
        attributes: { ...ff.attributes },
        entryDate: ff.entryDate,
        lineageStartDate: ff.lineageStartDate,
        parentIds: [...ff.parentIds],
        content: ff.size > 0 ? { kind: 'input', from: ff.id, offset: 0, length: ff.size } : EMPTY,
        input: true,
        relationship: null,
        removed: false,
        penalize: false,
      };
      this.#working.set(ff.id, w);
      return this.#view(w);
    }
    return undefined;
  }

  getBatch(max = Number.POSITIVE_INFINITY): FlowFile[] {
    const out: FlowFile[] = [];
    while (out.length < max) {
      const ff = this.get();
      if (!ff) break;
      out.push(ff);
    }
    return out;
  }

  create(): FlowFile {
    return this.#view(this.#newWorking([]));
  }

  createChild(parent: FlowFile | readonly FlowFile[]): FlowFile {
    const parents = (Array.isArray(parent) ? parent : [parent]) as readonly FlowFile[];
    if (parents.length === 0)
      throw createError('SESSION_MISUSE', { message: 'createChild() needs at least one parent' });
    return this.#view(this.#newWorking(parents.map((p) => this.#get(p, 'createChild'))));
  }

  clone(flowFile: FlowFile, range?: ContentRange): FlowFile {
    const source = this.#get(flowFile, 'clone');
    const size = sizeOf(source.content);
    const offset = range?.offset ?? 0;
    const length = range?.length ?? size - offset;
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > size) {
      throw createError('SESSION_MISUSE', {
        message: `clone range ${offset}+${length} is outside the content (${size} bytes)`,
      });
    }
    const w = this.#newWorking([source]);
    w.attributes = { ...source.attributes, uuid: w.id };
    w.content =
      length === 0 || source.content.kind === 'empty'
        ? EMPTY
        : { ...source.content, offset: source.content.offset + offset, length };
    return this.#view(w);
  }

  transfer(flowFile: FlowFile, relationship: string): void {
    const w = this.#get(flowFile, 'transfer');
    if (!this.#backend.relationships.has(relationship)) {
      throw createError('SESSION_UNKNOWN_RELATIONSHIP', {
        relationship,
        known: [...this.#backend.relationships],
      });
    }
    w.relationship = relationship;
  }

  remove(flowFile: FlowFile): void {
    const w = this.#get(flowFile, 'remove');
    w.removed = true;
    if (!w.input) this.#working.delete(w.id);
  }

  putAttribute(flowFile: FlowFile, key: string, value: string): FlowFile {
    return this.putAllAttributes(flowFile, { [key]: value });
  }

  putAllAttributes(flowFile: FlowFile, attributes: Readonly<Record<string, string>>): FlowFile {
    const w = this.#get(flowFile, 'putAllAttributes');
    for (const [key, value] of Object.entries(attributes)) {
      if (key === 'uuid') throw createError('SESSION_MISUSE', { message: 'the uuid attribute cannot be changed' });
      if (typeof value !== 'string') {
        throw createError('SESSION_MISUSE', { message: `attribute "${key}" must be a string, not ${typeof value}` });
      }
      w.attributes[key] = value;
    }
    return this.#view(w);
  }

  removeAttribute(flowFile: FlowFile, key: string): FlowFile {
    const w = this.#get(flowFile, 'removeAttribute');
    if (key === 'uuid') throw createError('SESSION_MISUSE', { message: 'the uuid attribute cannot be removed' });
    delete w.attributes[key];
    return this.#view(w);
  }

  write(flowFile: FlowFile, content: Uint8Array | string): FlowFile {
    const w = this.#get(flowFile, 'write');
    const bytes = typeof content === 'string' ? encoder.encode(content) : content;
    if (!(bytes instanceof Uint8Array)) {
      throw createError('SESSION_MISUSE', { message: 'write() takes a Uint8Array or a string' });
    }
    if (bytes.byteLength === 0) w.content = EMPTY;
    else {
      this.#contents.push(bytes);
      w.content = { kind: 'new', index: this.#contents.length - 1, offset: 0, length: bytes.byteLength };
    }
    return this.#view(w);
  }

  async read(flowFile: FlowFile): Promise<Uint8Array> {
    const w = this.#get(flowFile, 'read');
    const c = w.content;
    if (c.kind === 'empty') return new Uint8Array(0);
    if (c.kind === 'new') return this.#contents[c.index]!.subarray(c.offset, c.offset + c.length);
    let whole = this.#readCache.get(c.from);
    if (!whole) {
      whole = await this.#backend.readInput(c.from);
      this.#readCache.set(c.from, whole);
    }
    return whole.subarray(c.offset, c.offset + c.length);
  }

  penalize(flowFile: FlowFile): FlowFile {
    const w = this.#get(flowFile, 'penalize');
    w.penalize = true;
    return this.#view(w);
  }

  /** Gives a held input back to its queue unchanged, as if it had never been taken. */
  release(flowFile: FlowFile): void {
    const w = this.#get(flowFile, 'release');
    if (!w.input) throw createError('SESSION_MISUSE', { message: 'only an input FlowFile can be released' });
    this.#working.delete(w.id);
    this.#inputState.set(w.id, 'returned');
  }

  commit(): void {
    const pending = [...this.#working.values()].filter((w) => !w.removed && w.relationship === null);
    if (pending.length > 0) {
      this.rollback(true);
      throw createError('SESSION_UNTRANSFERRED', { count: pending.length, ids: pending.map((w) => w.id).slice(0, 5) });
    }
    const outputs: OutputFlowFile[] = [];
    const consumed: string[] = [];
    for (const w of this.#working.values()) {
      if (w.input) consumed.push(w.id);
      if (w.removed) continue;
      outputs.push({
        id: w.id,
        attributes: w.attributes,
        entryDate: w.entryDate,
        lineageStartDate: w.lineageStartDate,
        parentIds: w.parentIds,
        content: w.content,
        relationship: w.relationship!,
        penalize: w.penalize,
      });
    }
    if (outputs.length === 0 && consumed.length === 0) return;
    const outcome: SessionOutcome = { outputs, consumed, contents: this.#contents };
    try {
      this.#backend.apply(outcome);
    } catch (err) {
      this.rollback(true);
      throw createError('SESSION_COMMIT_FAILED', { reason: (err as Error).message ?? String(err) }, { cause: err });
    }
    for (const id of consumed) this.#inputState.set(id, 'consumed');
    this.#reset();
  }

  rollback(penalize = true): void {
    for (const w of this.#working.values()) {
      if (w.input) this.#inputState.set(w.id, penalize ? 'returned-penalized' : 'returned');
    }
    this.#reset();
  }

  /** True when the processor holds FlowFiles or made changes not yet committed. */
  hasUncommittedWork(): boolean {
    return this.#working.size > 0;
  }

  /**
   * After the trigger: the inputs that go back to their queues, and whether
   * penalized. Inputs never taken go back as they were.
   */
  leftovers(): { id: string; penalize: boolean }[] {
    const out: { id: string; penalize: boolean }[] = [];
    for (const [id, state] of this.#inputState) {
      if (state === 'consumed') continue;
      out.push({ id, penalize: state === 'returned-penalized' || state === 'held' });
    }
    return out;
  }

  #reset(): void {
    this.#working = new Map();
    this.#contents = [];
    this.#readCache = new Map();
  }

  #newWorking(parents: readonly Working[]): Working {
    const id = randomUUID();
    const now = Date.now();
    let attributes: Record<string, string> = {};
    if (parents.length === 1) attributes = { ...parents[0]!.attributes };
    else if (parents.length > 1) {
      const [first, ...rest] = parents;
      for (const [k, v] of Object.entries(first!.attributes)) {
        if (rest.every((p) => p.attributes[k] === v)) attributes[k] = v;
      }
    }
    attributes.uuid = id;
    attributes.filename ??= id;
    attributes.path ??= './';
    attributes.entryDate = String(now);
    const w: Working = {
      id,
      attributes,
      entryDate: now,
      lineageStartDate: parents.length ? Math.min(...parents.map((p) => p.lineageStartDate)) : now,
      parentIds: parents.map((p) => p.id),
      content: EMPTY,
      input: false,
      relationship: null,
      removed: false,
      penalize: false,
    };
    this.#working.set(id, w);
    return w;
  }

  #get(flowFile: FlowFile, op: string): Working {
    const w = flowFile && typeof flowFile.id === 'string' ? this.#working.get(flowFile.id) : undefined;
    if (!w || w.removed) {
      throw createError('SESSION_MISUSE', {
        message: `${op}(): that FlowFile is not held by this session (never taken, removed, committed or rolled back)`,
      });
    }
    return w;
  }

  #view(w: Working): FlowFile {
    return Object.freeze({
      id: w.id,
      attributes: Object.freeze({ ...w.attributes }),
      size: sizeOf(w.content),
      entryDate: w.entryDate,
      lineageStartDate: w.lineageStartDate,
      parentIds: Object.freeze([...w.parentIds]),
    });
  }
}

/** What one trigger of a processor over a session did. */
export interface SessionRun {
  /** The inputs no commit consumed, to go back to their queues. */
  leftovers: { id: string; penalize: boolean }[];
  /** Whether the processor asked to yield. */
  yielded: boolean;
  /** What its trigger threw (its uncommitted work rolled back, penalized), else null. */
  error: unknown;
}

/**
 * Triggers a processor once over a batch, wherever it runs (on the host
 * for an inline plugin, in the sandbox otherwise): work left uncommitted
 * when the trigger returns is committed; a throw rolls it back, penalized.
 */
export async function runSession(
  processor: Pick<Processor, 'onTrigger'>,
  context: StandardProcessContext,
  backend: SessionBackend,
  inputs: readonly FlowFile[],
): Promise<SessionRun> {
  const session = new StandardProcessSession(backend, inputs);
  let error: unknown = null;
  try {
    await processor.onTrigger(context, session);
    if (session.hasUncommittedWork()) session.commit();
  } catch (err) {
    session.rollback(true);
    error = err ?? new Error(String(err));
  }
  return { leftovers: session.leftovers(), yielded: context.takeYield(), error };
}
