/**
 * The host's handles on components that live in a sandbox. A processor's
 * `initialize` makes the instance in the sandbox (with the controller
 * services it names), `onStopped` removes it; the flow's processor node sees
 * the handle and runs each task through the sandbox instead of calling
 * `onTrigger` here. A reporting task's runs cross as one request each. A
 * controller service has no host-side instance: it is made in the sandbox of
 * the processors that use it.
 */

import {
  type FlowFileIds,
  SANDBOXED,
  type SandboxBatch,
  type SandboxedProcessor,
  type SandboxedService,
  type SandboxTaskResult,
  type ServiceBinding,
} from '../flow/host.ts';
import type {
  ControllerServiceInfo,
  MetricsSnapshot,
  ProcessContext,
  ProcessorInfo,
  ReportingTask,
  ReportingTaskInfo,
} from '../sdk/index.ts';
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

export class RemoteProcessor extends RemoteInstance<ProcessorInfo> implements SandboxedProcessor {
  readonly [SANDBOXED] = true as const;
  /** The processor's own validate() findings, from the sandbox. */
  findings: { property?: string; message: string }[] = [];
  /** The controller services it names; the flow sets them before `initialize`. */
  services: ServiceBinding[] = [];

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

  acquire(): Promise<() => void> {
    return this.host.acquire();
  }

  trigger(batch: SandboxBatch, transfer: ArrayBuffer[], ids: FlowFileIds): Promise<SandboxTaskResult> {
    return this.host.trigger({ type: 'trigger', id: 0, instance: this.instance, ...batch }, transfer, ids);
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
