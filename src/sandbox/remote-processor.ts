/**
 * The host's handle on a processor that lives in a sandbox. `initialize`
 * makes the instance in the sandbox, `onStopped` removes it; the flow's
 * processor node sees the handle and runs each task through the sandbox
 * instead of calling `onTrigger` here.
 */

import type { ProcessContext, Processor, ProcessorInfo } from '../sdk/index.ts';
import type { SandboxHost } from './sandbox-host.ts';

let nextInstance = 1;

export class RemoteProcessor implements Processor {
  readonly host: SandboxHost;
  readonly pluginId: string;
  readonly component: string;
  readonly #info: ProcessorInfo;
  instance = 0;
  /** The processor's own validate() findings, from the sandbox. */
  findings: { property?: string; message: string }[] = [];

  constructor(host: SandboxHost, pluginId: string, component: string, info: ProcessorInfo) {
    this.host = host;
    this.pluginId = pluginId;
    this.component = component;
    this.#info = info;
  }

  getInfo(): ProcessorInfo {
    return this.#info;
  }

  async initialize(ctx: ProcessContext): Promise<void> {
    this.instance = nextInstance++;
    const reply = await this.host.create({
      instance: this.instance,
      pluginId: this.pluginId,
      component: this.component,
      processorId: ctx.processorId,
      properties: { ...ctx.getProperties() },
      dynamicProperties: this.#info.dynamicProperties ?? false,
    });
    this.findings = reply.findings;
  }

  onTrigger(): never {
    throw new Error(`${this.pluginId}/${this.component} runs in its sandbox, not on the host`);
  }

  async onStopped(): Promise<void> {
    if (this.instance) await this.host.stop(this.instance);
    this.instance = 0;
  }
}

export function isRemote(p: Processor): p is RemoteProcessor {
  return p instanceof RemoteProcessor;
}
