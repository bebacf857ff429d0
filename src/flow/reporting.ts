/**
 * The flow's reporting tasks: placed, started (each run one period after
 * the last), stopped, run on demand over the flow's metrics, and following
 * their plugin as processors do: stopped while it is away, restarted
 * (fresh) when it is back.
 */

import type { AlertCode } from '../alerts.ts';
import { createError } from '../errors.ts';
import type { MetricsSnapshot, ValidationFinding } from '../sdk/index.ts';
import { configured, durationMs, invalid } from './flow-config.ts';
import type { FlowHost, PluginChange } from './host.ts';
import { ReportingNode, type ReportingTaskConfig, type ReportingTaskSummary } from './services.ts';

export interface ReportingTasksOptions {
  host: FlowHost;
  /** What a run sees when not given a snapshot: the flow's metrics now. */
  metrics: () => MetricsSnapshot;
  alert: (code: AlertCode, node: { id: string; pluginId: string }, message: string) => void;
  /** Components stopped because their plugin went away (shared with the flow's processors). */
  stoppedForPlugin: Set<string>;
}

export class ReportingTasks {
  readonly #o: ReportingTasksOptions;
  readonly #nodes = new Map<string, ReportingNode>();

  constructor(options: ReportingTasksOptions) {
    this.#o = options;
  }

  add(config: ReportingTaskConfig): ReportingTaskSummary {
    if (this.#nodes.has(config.id)) {
      throw createError('FLOW_DUPLICATE_PROCESSOR', { id: config.id, kind: 'reporting task' });
    }
    const { host } = this.#o;
    const { instance, pluginId } = host.registry.createReportingTask(config.type);
    const info = instance.getInfo();
    const node = new ReportingNode({
      id: config.id,
      type: config.type,
      pluginId,
      task: instance,
      periodMs: durationMs(config.period ?? info.defaultPeriod, 30_000, 'period'),
      ...configured(host, pluginId, info.properties, config, 'reportingTask'),
    });
    if (node.periodMs < 10) throw createError('USAGE', { message: 'a reporting task period must be at least 10 ms' });
    this.#nodes.set(config.id, node);
    return node.summary();
  }

  ids(): string[] {
    return [...this.#nodes.keys()];
  }

  /** What keeps each reporting task from starting: its findings. */
  problems(): { id: string; findings: ValidationFinding[] }[] {
    return [...this.#nodes.values()].map((node) => ({ id: node.id, findings: node.findings }));
  }

  summaries(): ReportingTaskSummary[] {
    return [...this.#nodes.values()].map((r) => r.summary());
  }

  async start(id: string): Promise<void> {
    const node = this.#node(id);
    if (node.state === 'running') return;
    if (node.findings.length > 0) {
      throw invalid(id, node.findings);
    }
    await this.#initialize(node);
    node.state = 'running';
    const tick = () => {
      node.timer = setTimeout(() => {
        if (node.state !== 'running') return;
        void this.run(id).finally(() => {
          if (node.state === 'running') tick();
        });
      }, node.periodMs);
    };
    tick();
  }

  async stop(id: string): Promise<void> {
    const node = this.#node(id);
    this.#o.stoppedForPlugin.delete(id);
    if (node.timer) clearTimeout(node.timer);
    node.timer = null;
    const wasRunning = node.state === 'running';
    node.state = 'stopped';
    await node.running;
    if (!node.initialized) return;
    node.initialized = false;
    try {
      await node.task.onStopped?.(node.context);
    } catch (err) {
      if (wasRunning) this.#o.alert('PROCESSOR_STOP_FAILED', node, (err as Error).message ?? String(err));
    }
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.ids().map((id) => this.stop(id)));
  }

  async run(id: string, metrics?: MetricsSnapshot): Promise<Error | null> {
    const node = this.#node(id);
    await node.running;
    let failure: Error | null = null;
    node.running = (async () => {
      try {
        await this.#initialize(node);
        await node.task.onTrigger(node.context, metrics ?? this.#o.metrics());
        node.stats.runs++;
      } catch (err) {
        failure = err as Error;
        node.stats.errors++;
        node.stats.lastError = failure.message;
        this.#o.host.registry.recordError(node.pluginId);
        this.#o.alert('REPORTING_TASK_FAILED', node, failure.message);
      } finally {
        node.stats.lastRun = new Date().toISOString();
      }
    })();
    await node.running;
    node.running = null;
    return failure;
  }

  /** Reporting tasks follow their plugin as processors do: stopped while it is away, restarted (fresh) when back. */
  async pluginChanged(event: PluginChange): Promise<void> {
    const stoppedForPlugin = this.#o.stoppedForPlugin;
    for (const node of this.#nodes.values()) {
      if (node.pluginId !== event.pluginId) continue;
      if (event.type === 'unregistered' || event.type === 'disabled' || event.plugin?.status === 'error') {
        if (node.state !== 'running') continue;
        await this.stop(node.id);
        stoppedForPlugin.add(node.id);
      } else if (
        event.type === 'registered' ||
        event.type === 'enabled' ||
        (event.type === 'status' && event.plugin?.status === 'active' && stoppedForPlugin.has(node.id))
      ) {
        const restart = stoppedForPlugin.has(node.id) || node.state === 'running';
        if (node.state === 'running') await this.stop(node.id);
        try {
          if (event.type === 'registered') node.task = this.#o.host.registry.createReportingTask(node.type).instance;
          if (restart) await this.start(node.id);
        } catch (err) {
          this.#o.alert('RELOAD_FAILED', node, `the reporting task could not start again: ${(err as Error).message}`);
        }
      }
    }
  }

  /** Initializes a reporting task once; a failure is thrown as PROCESSOR_START_FAILED. */
  async #initialize(node: ReportingNode): Promise<void> {
    if (node.initialized) return;
    try {
      await node.task.initialize?.(node.context);
      node.initialized = true;
    } catch (err) {
      this.#o.alert('PROCESSOR_INIT_FAILED', node, (err as Error).message ?? String(err));
      throw createError('PROCESSOR_START_FAILED', { id: node.id, reason: (err as Error).message }, { cause: err });
    }
  }

  #node(id: string): ReportingNode {
    const node = this.#nodes.get(id);
    if (!node) throw createError('FLOW_UNKNOWN_PROCESSOR', { id });
    return node;
  }
}
