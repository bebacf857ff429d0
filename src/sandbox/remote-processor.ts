/**
 * The host's handles on components that live in a sandbox. A processor's
 * `initialize` makes the instance in the sandbox (with the controller
 * services it names), `onStopped` removes it; the flow's processor node sees
 * the handle and runs each task through the sandbox instead of calling
 * `onTrigger` here. A reporting task's runs cross as one request each. A
 * controller service has no host-side instance: it is made in the sandbox of
 * the processors that use it.
 */

import type {
  ControllerService,
  ControllerServiceInfo,
  MetricsSnapshot,
  ProcessContext,
  Processor,
  ProcessorInfo,
  ReportingTask,
  ReportingTaskInfo,
} from '../sdk/index.ts';
import type { ServiceBinding } from './protocol.ts';
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

export class RemoteProcessor extends RemoteInstance<ProcessorInfo> implements Processor {
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
}

export function isRemote(p: Processor): p is RemoteProcessor {
  return p instanceof RemoteProcessor;
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
export class RemoteControllerService extends RemoteComponent<ControllerServiceInfo> implements ControllerService {}

export function isRemoteService(s: ControllerService): s is RemoteControllerService {
  return s instanceof RemoteControllerService;
}
