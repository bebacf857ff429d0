/**
 * A processor placed in a flow: its configuration, its connections, its
 * statistics, and one task: take a batch, run a session over it, apply the
 * outcome. Applying is ordered so that a failure at any step leaves the
 * flow as it was: content first, then the journal, then memory.
 */

import { randomUUID } from 'node:crypto';
import { backoffMs, pollUntil } from '../deadline.ts';
import { asError, createError } from '../errors.ts';
import type { Logger, ProcessorInfo, ValidationFinding } from '../sdk/index.ts';
import type { OutputContent, SessionOutcome } from '../session/outcome.ts';
import { StandardProcessContext } from '../session/properties.ts';
import type { Connection } from './connection.ts';
import type { ContentRepository } from './content-repository.ts';
import type { ContentClaim, FlowFileRecord } from './flowfile.ts';
import { toView } from './flowfile.ts';
import type { FlowFileRepository, QueuedRecord } from './flowfile-repository.ts';
import type { ProcessorHandle, ProcessorTask, TaskEnd, TaskRecord } from './host.ts';

export interface ProcessorStats {
  /** FlowFiles taken in by committed sessions. */
  in: number;
  /** FlowFiles sent out by committed sessions. */
  out: number;
  bytesIn: number;
  bytesOut: number;
  tasks: number;
  errors: number;
  lastError: string | null;
}

export interface NodeInit {
  id: string;
  type: string;
  name: string;
  pluginId: string;
  processor: ProcessorHandle;
  info: ProcessorInfo;
  properties: Readonly<Record<string, string>>;
  relationships: ReadonlySet<string>;
  autoTerminate: ReadonlySet<string>;
  periodMs: number;
  concurrentTasks: number;
  batchSize: number;
  penaltyMs: number;
  yieldMs: number;
  findings: ValidationFinding[];
  logger: Logger;
  /** Resolves `ctx.getControllerService(id)` for a processor that runs here. */
  services?: (id: string) => unknown;
}

/** Where a task's outcome goes. */
export interface Repositories {
  content: ContentRepository;
  flowFiles: FlowFileRepository;
}

const MAX_SPAN_BYTES = 8 * 1024 * 1024;

/**
 * Ids of new FlowFiles in sandbox replies that passed the protocol check
 * and are not applied yet: held as if in the repository, so that a second
 * reply read in the same turn cannot bring the same ids again.
 */
const CLAIMED = new Set<string>();

/** What one task did. */
interface Tally {
  inputs: number;
  outputs: number;
  bytesIn: number;
  bytesOut: number;
  gaveBack: number;
}

/**
 * A batch's inputs mostly lie side by side in one segment: one read per
 * segment serves them all, instead of one read per FlowFile. Spans that are
 * too large or too sparse are left to individual reads.
 */
function readSpans(
  inputs: readonly { record: FlowFileRecord }[],
  content: ContentRepository,
): Map<number, { offset: number; bytes: Uint8Array }> {
  const bounds = new Map<number, { start: number; end: number; used: number }>();
  for (const { record } of inputs) {
    const c = record.claim;
    if (!c) continue;
    const b = bounds.get(c.segment);
    if (!b) bounds.set(c.segment, { start: c.offset, end: c.offset + c.length, used: c.length });
    else {
      b.start = Math.min(b.start, c.offset);
      b.end = Math.max(b.end, c.offset + c.length);
      b.used += c.length;
    }
  }
  const spans = new Map<number, { offset: number; bytes: Uint8Array }>();
  for (const [segment, b] of bounds) {
    const length = b.end - b.start;
    if (length > MAX_SPAN_BYTES || length > 2 * b.used) continue;
    spans.set(segment, { offset: b.start, bytes: content.read({ segment, offset: b.start, length }) });
  }
  return spans;
}

const MAX_FAILURE_BACKOFF_MS = 30_000;
const FAILURE_BACKOFF_BASE_MS = 250;

/** @internal the FlowController makes nodes. */
export class ProcessorNode {
  readonly id: string;
  readonly type: string;
  readonly name: string;
  readonly pluginId: string;
  processor: ProcessorHandle;
  readonly info: ProcessorInfo;
  readonly properties: Readonly<Record<string, string>>;
  readonly relationships: ReadonlySet<string>;
  readonly autoTerminate: ReadonlySet<string>;
  readonly periodMs: number;
  readonly concurrentTasks: number;
  readonly batchSize: number;
  readonly penaltyMs: number;
  readonly yieldMs: number;
  readonly findings: ValidationFinding[];
  readonly logger: Logger;
  readonly context: StandardProcessContext;
  readonly incoming: Connection[] = [];
  readonly outgoing = new Map<string, Connection[]>();
  readonly stats: ProcessorStats = { in: 0, out: 0, bytesIn: 0, bytesOut: 0, tasks: 0, errors: 0, lastError: null };
  state: 'stopped' | 'starting' | 'running' | 'stopping' = 'stopped';
  activeTasks = 0;
  yieldUntil = 0;
  failures = 0;
  /**
   * Why no session of this processor may commit now (its plugin was revoked
   * or went to error while tasks ran), else null: a commit then fails and
   * the session rolls back, its inputs back in their queue.
   */
  commitRefusal: string | null = null;
  initialized = false;
  #nextIncoming = 0;

  constructor(init: NodeInit) {
    this.id = init.id;
    this.type = init.type;
    this.name = init.name;
    this.pluginId = init.pluginId;
    this.processor = init.processor;
    this.info = init.info;
    this.properties = init.properties;
    this.relationships = init.relationships;
    this.autoTerminate = init.autoTerminate;
    this.periodMs = init.periodMs;
    this.concurrentTasks = init.concurrentTasks;
    this.batchSize = init.batchSize;
    this.penaltyMs = init.penaltyMs;
    this.yieldMs = init.yieldMs;
    this.findings = init.findings;
    this.logger = init.logger;
    this.context = new StandardProcessContext({
      processorId: init.id,
      logger: init.logger,
      specs: init.info.properties,
      properties: init.properties,
      dynamicProperties: init.info.dynamicProperties,
      services: init.services,
    });
  }

  /** A source takes no input; others run only when an input queue has something. */
  get isSource(): boolean {
    return this.incoming.length === 0;
  }

  hasWork(now: number): boolean {
    return this.isSource || this.incoming.some((c) => c.hasAvailable(now));
  }

  /** One more failure in a row: the processor rests 250 ms, doubled per failure, at most 30 s. */
  #backOff(): void {
    this.failures++;
    this.yieldUntil = Date.now() + backoffMs(this.failures, FAILURE_BACKOFF_BASE_MS, MAX_FAILURE_BACKOFF_MS);
  }

  /** Resolves once none of its tasks runs (polled every `pollMs`: tasks end on their own, each within its deadline). */
  async settled(pollMs: number): Promise<void> {
    await pollUntil(() => this.activeTasks === 0, pollMs);
  }

  /** Some outgoing queue is full: the processor must wait. */
  isBackPressured(): boolean {
    for (const list of this.outgoing.values()) for (const c of list) if (c.isFull()) return true;
    return false;
  }

  /** Relationships neither connected nor auto-terminated. */
  unconnected(): string[] {
    return [...this.relationships].filter((r) => !this.autoTerminate.has(r) && !this.outgoing.get(r)?.length);
  }

  /**
   * Runs one task through the processor's handle and reports it (FlowFiles,
   * bytes, time, failure) to `onTaskDone`. Never throws: a failing task
   * rolls its session back, counts an error and backs the processor off.
   * Whatever it did not consume goes back to its queue (after a crash or a
   * missed deadline, all of it, penalized: the inputs never left the host).
   * Returns the error, if any.
   */
  async runTask(repos: Repositories): Promise<Error | undefined> {
    // counted per task: tasks of one processor overlap, so its totals cannot be diffed
    const tally: Tally = { inputs: 0, outputs: 0, bytesIn: 0, bytesOut: 0, gaveBack: 0 };
    const started = performance.now();
    const held = new Map<string, { record: FlowFileRecord; connection: Connection }>();
    let spans: Map<number, { offset: number; bytes: Uint8Array }> | undefined;
    /** New ids this task's reply claimed (CLAIMED): applied to the repository, or given up at the end. */
    const claimed: string[] = [];
    const finish = (leftovers: readonly { id: string; penalize: boolean }[]): void => {
      const named = new Set<string>();
      const back: { id: string; penalize: boolean }[] = [];
      for (const l of leftovers) {
        if (held.has(l.id) && !named.has(l.id)) back.push(l);
        named.add(l.id);
      }
      for (const id of held.keys()) if (!named.has(id)) back.push({ id, penalize: true });
      this.#giveBack(back, held, tally);
      held.clear();
      for (const id of claimed) CLAIMED.delete(id);
      claimed.length = 0;
    };
    const task: ProcessorTask = {
      relationships: this.relationships,
      logger: this.logger,
      context: this.context,
      isSource: this.isSource,
      take: () => {
        const inputs = this.#poll(Date.now());
        for (const i of inputs) held.set(i.record.id, i);
        return inputs.map((i) => toView(i.record));
      },
      content: (id) => {
        const claim = held.get(id)?.record.claim;
        if (!claim) return new Uint8Array(0);
        spans ??= readSpans([...held.values()], repos.content);
        const span = spans.get(claim.segment);
        if (span && claim.offset >= span.offset && claim.offset + claim.length <= span.offset + span.bytes.length) {
          return span.bytes.subarray(claim.offset - span.offset, claim.offset - span.offset + claim.length);
        }
        return repos.content.read(claim);
      },
      apply: (outcome) => this.#apply(outcome, held, repos, tally),
      // checked against its inputs before it comes back (protocol-check.ts): no id the flow holds is made again
      ids: {
        holds: (id) => repos.flowFiles.has(id) || CLAIMED.has(id),
        claim: (ids) => {
          for (const id of ids) {
            CLAIMED.add(id);
            claimed.push(id);
          }
        },
      },
      finish,
    };
    let end: TaskEnd | null;
    try {
      end = await this.processor.runTask(task);
    } catch (err) {
      end = { yielded: false, error: asError(err) };
    } finally {
      finish([]);
    }
    // another task took the batch while this one waited for a slot: no task at all
    if (end === null) return undefined;
    this.stats.tasks++;
    if (end.yielded) this.yieldUntil = Math.max(this.yieldUntil, Date.now() + this.yieldMs);
    const failure = end.error ?? undefined;
    if (failure) {
      this.stats.errors++;
      this.stats.lastError = failure.message;
      this.#backOff();
    } else this.failures = 0;
    const idle = tally.inputs + tally.outputs + tally.gaveBack === 0 && failure === undefined;
    // a task that found nothing to do is no session
    if (!idle)
      this.onTaskDone?.({
        inputs: tally.inputs,
        outputs: tally.outputs,
        bytesIn: tally.bytesIn,
        bytesOut: tally.bytesOut,
        durationMs: performance.now() - started,
        failed: failure !== undefined,
        rolledBack: tally.gaveBack,
      });
    return failure;
  }

  /** Told of every task, for the plugin's statistics. */
  onTaskDone?: (record: TaskRecord) => void;

  #poll(now: number): { record: FlowFileRecord; connection: Connection }[] {
    const out: { record: FlowFileRecord; connection: Connection }[] = [];
    const n = this.incoming.length;
    // round-robin over the input queues, so that none starves
    for (let k = 0; k < n && out.length < this.batchSize; k++) {
      const connection = this.incoming[(this.#nextIncoming + k) % n]!;
      for (const record of connection.poll(this.batchSize - out.length, now)) out.push({ record, connection });
    }
    if (n) this.#nextIncoming = (this.#nextIncoming + 1) % n;
    return out;
  }

  #giveBack(
    leftovers: readonly { id: string; penalize: boolean }[],
    byId: Map<string, { record: FlowFileRecord; connection: Connection }>,
    tally: Tally,
  ): void {
    if (leftovers.length === 0) return;
    const groups = new Map<Connection, { plain: FlowFileRecord[]; penalized: FlowFileRecord[] }>();
    for (const { id, penalize } of leftovers) {
      const input = byId.get(id)!;
      const g = groups.get(input.connection) ?? { plain: [], penalized: [] };
      groups.set(input.connection, g);
      (penalize ? g.penalized : g.plain).push(input.record);
    }
    const until = Date.now() + this.penaltyMs;
    for (const g of groups.values()) tally.gaveBack += g.penalized.length;
    for (const [connection, g] of groups) {
      connection.giveBack(g.plain);
      connection.giveBack(g.penalized, until);
    }
  }

  #apply(
    outcome: SessionOutcome,
    inputs: Map<string, { record: FlowFileRecord; connection: Connection }>,
    repos: Repositories,
    tally: Tally,
  ): void {
    if (this.commitRefusal) throw new Error(`the session was not committed: ${this.commitRefusal}`);
    const now = Date.now();
    const consumed = new Set(outcome.consumed);
    for (const id of consumed) {
      if (!inputs.has(id)) throw createError('SESSION_MISUSE', { message: `consumed FlowFile ${id} is not an input` });
    }
    // which new buffers are needed at all (auto-terminated outputs need none)
    const routed: { out: SessionOutcome['outputs'][number]; targets: Connection[] }[] = [];
    const needed = new Set<number>();
    for (const out of outcome.outputs) {
      if (!this.relationships.has(out.relationship)) {
        throw createError('SESSION_UNKNOWN_RELATIONSHIP', {
          relationship: out.relationship,
          known: [...this.relationships],
        });
      }
      if (inputs.has(out.id) && !consumed.has(out.id)) {
        throw createError('SESSION_MISUSE', { message: `output ${out.id} reuses an input that was not consumed` });
      }
      const targets = this.outgoing.get(out.relationship) ?? [];
      if (targets.length === 0 && !this.autoTerminate.has(out.relationship)) {
        throw createError('SESSION_MISUSE', { message: `relationship "${out.relationship}" is not connected` });
      }
      // checked before anything is written: a refused commit leaves no bytes behind in the content repository
      const c = out.content;
      if (c.kind !== 'empty') {
        const base = c.kind === 'input' ? inputs.get(c.from)?.record.claim?.length : outcome.contents[c.index]?.length;
        if (base === undefined || c.offset < 0 || c.length < 0 || c.offset + c.length > base) {
          throw createError('SESSION_MISUSE', { message: 'an output refers to content it cannot have' });
        }
      }
      if (targets.length > 0 && c.kind === 'new') needed.add(c.index);
      routed.push({ out, targets });
    }
    const order = [...needed];
    const written = repos.content.write(order.map((i) => outcome.contents[i]!));
    const newClaims = new Map<number, ContentClaim>();
    for (let k = 0; k < order.length; k++) newClaims.set(order[k]!, written[k]!);
    const claimOf = (c: OutputContent): ContentClaim | null => {
      if (c.kind === 'empty') return null;
      const base = c.kind === 'input' ? inputs.get(c.from)!.record.claim! : newClaims.get(c.index)!;
      return { segment: base.segment, offset: base.offset + c.offset, length: c.length };
    };

    const queued: (QueuedRecord & { connection: Connection })[] = [];
    let bytesOut = 0;
    for (const { out, targets } of routed) {
      // an auto-terminated output leaves the flow here: its new bytes were never written
      if (targets.length === 0) {
        bytesOut += out.content.kind === 'empty' ? 0 : out.content.length;
        continue;
      }
      const claim = claimOf(out.content);
      const size = claim ? claim.length : 0;
      bytesOut += size;
      targets.forEach((connection, k) => {
        // the first connection gets the FlowFile itself, each other one a copy sharing the content
        const id = k === 0 ? out.id : randomUUID();
        const record: FlowFileRecord = {
          id,
          attributes: k === 0 ? out.attributes : { ...out.attributes, uuid: id },
          size,
          entryDate: out.entryDate,
          lineageStartDate: out.lineageStartDate,
          parentIds: k === 0 ? out.parentIds : [out.id],
          claim,
          penalizedUntil: out.penalize ? now + this.penaltyMs : 0,
        };
        queued.push({ queue: connection.id, record, connection });
      });
    }
    const requeued = new Set(queued.map((q) => q.record.id));
    const gone = [...consumed].filter((id) => !requeued.has(id));

    repos.flowFiles.commit(queued, gone);

    // from here on nothing can fail: memory follows the journal
    for (const q of queued) if (q.record.claim) repos.content.retain(q.record.claim);
    const acks = new Map<Connection, FlowFileRecord[]>();
    let bytesIn = 0;
    for (const id of consumed) {
      const input = inputs.get(id)!;
      bytesIn += input.record.size;
      if (input.record.claim) repos.content.release(input.record.claim);
      const list = acks.get(input.connection) ?? [];
      acks.set(input.connection, list);
      list.push(input.record);
      inputs.delete(id);
    }
    for (const [connection, records] of acks) connection.acknowledge(records);
    const touched = queued.map((q) => q.connection);
    for (const q of queued) q.connection.enqueue(q.record);
    this.stats.in += consumed.size;
    this.stats.out += outcome.outputs.length;
    this.stats.bytesIn += bytesIn;
    this.stats.bytesOut += bytesOut;
    tally.inputs += consumed.size;
    tally.outputs += outcome.outputs.length;
    tally.bytesIn += bytesIn;
    tally.bytesOut += bytesOut;
    this.onCommitted?.(touched, [...acks.keys()]);
  }

  /**
   * Told which connections just received FlowFiles and which just gave some
   * up, so the scheduler can wake their destinations and sources.
   */
  onCommitted?: (touched: readonly Connection[], acked: readonly Connection[]) => void;
}
