/**
 * The handle on a processor of an inline plugin: its code runs here, in the
 * host's own thread, and each task is one session over the flow's batch.
 * The other handles (`remote-processor.ts`) send the batch to a worker or
 * a process sandbox; the flow holds all of them as one `ProcessorHandle`.
 */

import { asError } from '../errors.ts';
import type { ProcessorHandle, ProcessorTask, TaskEnd } from '../flow/host.ts';
import type {
  ProcessContext,
  Processor,
  ProcessorInfo,
  ProcessSession,
  RelationshipSpec,
  ValidationFinding,
} from '../sdk/index.ts';
import { runSession } from '../session/session.ts';
import { RemoteProcessor } from './remote-processor.ts';

export class InlineProcessor implements ProcessorHandle {
  readonly mode = 'inline' as const;
  /** Its validate() ran on the host when the node was built: nothing more comes at initialize. */
  readonly findings: readonly ValidationFinding[] = [];
  /** Inline services are reached through the process context, not bound. */
  services = [];
  readonly throttledUntil = 0;
  readonly #processor: Processor;

  constructor(processor: Processor) {
    this.#processor = processor;
  }

  getInfo(): ProcessorInfo {
    return this.#processor.getInfo();
  }

  getRelationships(properties: Readonly<Record<string, string>>): readonly RelationshipSpec[] {
    return this.#processor.getRelationships?.(properties) ?? this.#processor.getInfo().relationships;
  }

  validate(properties: Readonly<Record<string, string>>): readonly ValidationFinding[] {
    return this.#processor.validate?.(properties) ?? [];
  }

  async initialize(ctx: ProcessContext): Promise<void> {
    await this.#processor.initialize?.(ctx);
  }

  onTrigger(ctx: ProcessContext, session: ProcessSession): void | Promise<void> {
    return this.#processor.onTrigger(ctx, session);
  }

  async onStopped(ctx: ProcessContext): Promise<void> {
    await this.#processor.onStopped?.(ctx);
  }

  async runTask(task: ProcessorTask): Promise<TaskEnd> {
    const run = await runSession(
      this.#processor,
      task.context,
      { relationships: task.relationships, logger: task.logger, readInput: task.content, apply: task.apply },
      task.take(),
    );
    task.finish(run.leftovers);
    return { yielded: run.yielded, error: run.error === null ? null : asError(run.error) };
  }
}

/** The flow's handle on a processor instance: a sandboxed one is its own, an inline one gets one. */
export function processorHandle(instance: Processor): ProcessorHandle {
  return instance instanceof RemoteProcessor ? instance : new InlineProcessor(instance);
}
