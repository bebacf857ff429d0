/**
 * The host's handles on components that live in a sandbox. A processor's
 * `initialize` makes the instance in the sandbox (with the controller
 * services it names), `onStopped` removes it; the flow's processor node sees
 * the handle and runs each task through the sandbox instead of calling
 * `onTrigger` here. A reporting task's runs cross as one request each. A
 * controller service has no host-side instance: it is made in the sandbox of
 * the processors that use it.
 */

import { asError } from '../errors.ts';
import {
  type ProcessorHandle,
  type ProcessorTask,
  SANDBOXED,
  type SandboxedService,
  type ServiceBinding,
  type TaskEnd,
} from '../flow/host.ts';
import type {
  ControllerServiceInfo,
  MetricsSnapshot,
  ProcessContext,
  ProcessorInfo,
  ReportingTask,
  ReportingTaskInfo,
  ValidationFinding,
} from '../sdk/index.ts';
import type { OutputFlowFile } from '../session/outcome.ts';
import type { SandboxHost } from './sandbox-host.ts';

let nextInstance = 1;

/** A component of a sandboxed plugin, as the host holds it: where it lives, and what it declares. */
abstract class RemoteComponent<I> {
  readonly host: SandboxHost;
  readonly pluginId: string;
  readonly component: string;
  protected readonly info: I;

  constructor(host: SandboxHost, pluginId: string, component: string, info: I) {
    this.host = host;
    this.pluginId = pluginId;
    this.component = component;
    this.info = info;
  }

  getInfo(): I {
    return this.info;
  }
}

/** A component with an instance in the sandbox from `initialize` to `onStopped`. */
abstract class RemoteInstance<I> extends RemoteComponent<I> {
  instance = 0;

  async onStopped(): Promise<void> {
    if (this.instance) await this.host.stop(this.instance);
    this.instance = 0;
  }
}

/**
 * A processor of a worker or process sandbox (the two differ only in the
 * sandbox host's transport). A task waits for a slot of its sandbox, then
 * sends the batch over with its content packed in one buffer; the commits
 * come back and are applied on the host in order. If the sandbox dies or
 * runs past its deadline, the inputs never left the host: they go back to
 * their queues, penalized.
 */
export class RemoteProcessor extends RemoteInstance<ProcessorInfo> implements ProcessorHandle {
  /** The processor's own validate() findings, from the sandbox. */
  findings: ValidationFinding[] = [];
  /** The controller services it names; the flow sets them before `initialize`. */
  services: ServiceBinding[] = [];

  get mode(): 'worker' | 'process' {
    return this.host.mode;
  }

  async initialize(ctx: ProcessContext): Promise<void> {
    this.instance = nextInstance++;
    const reply = await this.host.create({
      instance: this.instance,
      pluginId: this.pluginId,
      component: this.component,
      processorId: ctx.processorId,
      properties: { ...ctx.getProperties() },
      dynamicProperties: this.info.dynamicProperties ?? false,
      services: this.services,
    });
    this.findings = reply.findings;
  }

  onTrigger(): never {
    throw new Error(`${this.pluginId}/${this.component} runs in its sandbox, not on the host`);
  }

  get throttledUntil(): number {
    return this.host.throttledUntil;
  }

  async runTask(task: ProcessorTask): Promise<TaskEnd | null> {
    const release = await this.host.acquire();
    let leftovers: { id: string; penalize: boolean }[] = [];
    try {
      const inputs = task.take();
      // another task took the last FlowFiles while this one waited for a slot
      if (inputs.length === 0 && !task.isSource) return null;
      const packed = new Uint8Array(inputs.reduce((n, ff) => n + ff.size, 0));
      const offsets: number[] = [];
      let at = 0;
      for (const ff of inputs) {
        offsets.push(at);
        if (ff.size > 0) packed.set(task.content(ff.id), at);
        at += ff.size;
      }
      const reply = await this.host.trigger(
        {
          type: 'trigger',
          id: 0,
          instance: this.instance,
          relationships: [...task.relationships],
          inputs,
          content: packed.buffer,
          offsets,
        },
        [packed.buffer],
        task.ids,
      );
      const attributes = new Map(inputs.map((ff) => [ff.id, ff.attributes]));
      for (const wire of reply.outcomes) {
        const bytes = new Uint8Array(wire.packed);
        let off = 0;
        const contents = wire.lengths.map((len) => {
          const view = bytes.subarray(off, off + len);
          off += len;
          return view;
        });
        // attributes left out on the wire are the input's, unchanged
        const outputs = wire.outputs.map(
          (o): OutputFlowFile => ({ ...o, attributes: o.attributes ?? attributes.get(o.id) ?? {} }),
        );
        task.apply({ outputs, consumed: wire.consumed, contents });
      }
      leftovers = reply.leftovers;
      const error = reply.error ? Object.assign(new Error(reply.error.message), { code: reply.error.code }) : null;
      return { yielded: reply.yielded, error };
    } catch (err) {
      return { yielded: false, error: asError(err) };
    } finally {
      // whatever no applied commit consumed goes back (after a crash: all of it, penalized)
      task.finish(leftovers);
      release();
    }
  }
}

export class RemoteReportingTask extends RemoteInstance<ReportingTaskInfo> implements ReportingTask {
  async initialize(ctx: ProcessContext): Promise<void> {
    this.instance = nextInstance++;
    await this.host.create({
      instance: this.instance,
      kind: 'reportingTask',
      pluginId: this.pluginId,
      component: this.component,
      processorId: ctx.processorId,
      properties: { ...ctx.getProperties() },
      dynamicProperties: false,
    });
  }

  async onTrigger(_ctx: ProcessContext, metrics: MetricsSnapshot): Promise<void> {
    await this.host.report(this.instance, metrics);
  }
}

/** Where a sandboxed plugin's controller service is made: its sandbox, beside the processors that use it. */
export class RemoteControllerService extends RemoteComponent<ControllerServiceInfo> implements SandboxedService {
  readonly [SANDBOXED] = true as const;
}
