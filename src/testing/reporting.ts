/** The ReportingTaskRunner: one reporting task under test, run over metrics the test gives. */

import { strict as assert } from 'node:assert';
import { createFlowController, type FlowController } from '../flow/controller.ts';
import type { MetricsSnapshot, ReportingTask, ValidationFinding } from '../sdk/index.ts';
import { inProcessHost, type LogEntry, type PrivateHost, pluginHost, registerReportingTask } from './host.ts';

export interface ReportingTaskRunnerOptions {
  properties?: Record<string, string>;
}

const UNDER_TEST = 'under-test';

/**
 * Runs a reporting task as the flow runs it, over a metrics snapshot of the
 * test's making, and keeps what it logged.
 *
 * @example
 * const runner = await ReportingTaskRunner.of(() => new QueueReport());
 * await runner.run({ queued: 12 });
 * assert.ok(runner.logs().some((l) => l.fields.queued === 12));
 * await runner.close();
 */
export class ReportingTaskRunner {
  readonly #host: PrivateHost;
  readonly #type: string;
  readonly #properties: Record<string, string>;
  #flow: FlowController | null = null;
  readonly #errors: Error[] = [];

  private constructor(host: PrivateHost, type: string, options: ReportingTaskRunnerOptions) {
    this.#host = host;
    this.#type = type;
    this.#properties = { ...(options.properties ?? {}) };
  }

  /** A runner for a reporting task made by `factory`, run in this process. */
  static async of(
    factory: () => ReportingTask,
    options: ReportingTaskRunnerOptions = {},
  ): Promise<ReportingTaskRunner> {
    const host = await inProcessHost();
    return new ReportingTaskRunner(host, registerReportingTask(host.manager, factory), options);
  }

  /** A runner for reporting task `component` of the built plugin folder `dir`, in its sandbox (or `inline`). */
  static async forPlugin(
    dir: string,
    component: string,
    options: ReportingTaskRunnerOptions & { inline?: boolean } = {},
  ): Promise<ReportingTaskRunner> {
    return new ReportingTaskRunner(await pluginHost(dir, options.inline ?? false), component, options);
  }

  setProperty(name: string, value: string): this {
    if (this.#flow) throw new Error('setProperty: set properties before the first run() or validate()');
    this.#properties[name] = value;
    return this;
  }

  async validate(): Promise<ValidationFinding[]> {
    return (await this.#ensure()).stats().reportingTasks[0]!.findings;
  }

  async assertValid(): Promise<void> {
    const findings = await this.validate();
    assert.deepEqual(findings, [], `the configuration has findings: ${JSON.stringify(findings)}`);
  }

  async assertNotValid(): Promise<void> {
    assert.ok((await this.validate()).length > 0, 'the configuration has no findings');
  }

  /** Runs the task `times` times over a snapshot: no processors and empty queues, unless `metrics` says otherwise. */
  async run(metrics: Partial<MetricsSnapshot> = {}, times = 1): Promise<void> {
    const flow = await this.#ensure();
    const findings = flow.stats().reportingTasks[0]!.findings;
    if (findings.length) throw new Error(`the configuration has findings: ${JSON.stringify(findings)}`);
    const snapshot: MetricsSnapshot = { at: Date.now(), processors: {}, queued: 0, queuedBytes: 0, ...metrics };
    for (let i = 0; i < times; i++) {
      const err = await flow.runReportingTask(UNDER_TEST, snapshot);
      if (err) this.#errors.push(err);
    }
  }

  /** What the runs threw. */
  errors(): Error[] {
    return [...this.#errors];
  }

  /** What the task logged so far. */
  logs(): LogEntry[] {
    return this.#host.logs().filter((l) => l.fields.reportingTask === UNDER_TEST);
  }

  async close(): Promise<void> {
    await this.#host.close(this.#flow);
  }

  async #ensure(): Promise<FlowController> {
    if (this.#flow) return this.#flow;
    const flow = await createFlowController({ manager: this.#host.manager, repository: 'memory' });
    flow.addReportingTask({ id: UNDER_TEST, type: this.#type, properties: this.#properties });
    this.#flow = flow;
    return flow;
  }
}
