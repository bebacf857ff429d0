/**
 * FlowController: builds a flow of processors and connections and runs it.
 * It owns the repositories, recovers queued FlowFiles at start, schedules
 * each running processor (timer-driven, woken early when input arrives or
 * back-pressure lifts), and raises alerts when processors fail.
 */

import { join } from 'node:path';
import type { Alert, AlertCode, AlertListener } from '../alerts.ts';
import { createError } from '../errors.ts';
import type { MetricsSnapshot, ValidationFinding } from '../sdk/index.ts';
import type { Connection, ConnectionStats } from './connection.ts';
import { type ContentRepository, FileContentRepository, MemoryContentRepository } from './content-repository.ts';
import {
  type ConnectionConfig,
  configured,
  type FlowControllerOptions,
  type FlowStats,
  invalid,
  type ProcessorConfig,
  type ProcessorSummary,
  type ScheduleConfig,
  startProblems,
} from './flow-config.ts';
import { flowMetrics, isQuiet } from './flow-state.ts';
import type { FlowFileRecord } from './flowfile.ts';
import { type FlowFileRepository, JournalFlowFileRepository, MemoryFlowFileRepository } from './flowfile-repository.ts';
import type { FlowHost, PluginChange } from './host.ts';
import { type FollowContext, followPlugin, refuseCommits } from './plugin-changes.ts';
import { buildProcessorNode } from './processor-factory.ts';
import type { ProcessorNode } from './processor-node.ts';
import { ReportingTasks } from './reporting.ts';
import { Scheduler } from './scheduler.ts';
import {
  bindings,
  type ControllerServiceConfig,
  type ReportingTaskConfig,
  type ReportingTaskSummary,
  ServiceNode,
  type ServiceSummary,
} from './services.ts';
import { wire } from './wiring.ts';

export type {
  ConnectionConfig,
  ControllerServiceConfig,
  FlowControllerOptions,
  FlowStats,
  ProcessorConfig,
  ProcessorSummary,
  ReportingTaskConfig,
  ReportingTaskSummary,
  ScheduleConfig,
  ServiceSummary,
};

/**
 * Runs flows.
 *
 * @example
 * const flow = await createFlowController({ manager });
 * flow.createProcessorByType('GenerateFlowFile', { id: 'gen', properties: { 'File Size': '1 KB' } });
 * flow.createProcessorByType('LogAttribute', { id: 'log', autoTerminate: ['success'] });
 * flow.connect({ source: 'gen', relationship: 'success', destination: 'log' });
 * await flow.startAll();
 */
export class FlowController {
  readonly manager: FlowHost;
  readonly #content: ContentRepository;
  readonly #flowFiles: FlowFileRepository;
  readonly #nodes = new Map<string, ProcessorNode>();
  /** Processors stopped because their plugin was disabled or removed: they start again when it is back. */
  readonly #stoppedForPlugin = new Set<string>();
  readonly #connections = new Map<string, Connection>();
  readonly #services = new Map<string, ServiceNode>();
  readonly #reporting: ReportingTasks;
  /** Controller services each processor names, by processor id. */
  readonly #uses = new Map<string, string[]>();
  readonly #migrated = new Map<string, string>();
  readonly #scheduler: Scheduler;
  readonly #recovered = new Map<string, FlowFileRecord[]>();
  /** The alerts this flow raised (on the host's bus, which keeps them). */
  readonly #raised = new WeakSet<Alert>();
  #closed = false;
  readonly #unsubscribe: () => void;
  readonly #followContext: FollowContext;

  constructor(options: FlowControllerOptions) {
    this.manager = options.manager;
    this.#followContext = {
      host: options.manager,
      stoppedForPlugin: this.#stoppedForPlugin,
      start: (id) => this.start(id),
      stop: (id) => this.stop(id),
      alert: (code, node, message) => this.#alert(code, node, message),
      bindings: (node) => bindings(this.#servicesOf(node)),
    };
    this.#reporting = new ReportingTasks({
      host: options.manager,
      metrics: () => this.metrics(),
      alert: (code, node, message) => this.#alert(code, node, message),
      stoppedForPlugin: this.#stoppedForPlugin,
    });
    this.#unsubscribe = options.manager.on((event) => void this.#pluginChanged(event));
    if (options.repository === 'memory') {
      this.#content = new MemoryContentRepository();
      this.#flowFiles = new MemoryFlowFileRepository();
    } else {
      const dir = join(options.dataDir ?? options.manager.config.dataDir, 'repository');
      this.#content = new FileContentRepository({ dir: join(dir, 'content') });
      this.#flowFiles = new JournalFlowFileRepository({ dir: join(dir, 'flowfiles') });
      const recovered = this.#flowFiles.recover();
      this.#content.recover(recovered.flatMap((q) => (q.record.claim ? [q.record.claim] : [])));
      for (const q of recovered) {
        const list = this.#recovered.get(q.queue) ?? [];
        list.push(q.record);
        this.#recovered.set(q.queue, list);
      }
    }
    this.#scheduler = new Scheduler({
      nodes: this.#nodes,
      repositories: { content: this.#content, flowFiles: this.#flowFiles },
      onFailed: (node, err) => this.#failed(node, err),
    });
  }

  /**
   * Places a processor of a registered type in the flow. A disabled or failed
   * plugin is refused; bad configuration is kept as findings, and the
   * processor will not start until they are fixed.
   */
  createProcessorByType(type: string, config: ProcessorConfig): ProcessorSummary {
    this.#assertOpen();
    if (this.#nodes.has(config.id)) throw createError('FLOW_DUPLICATE_PROCESSOR', { id: config.id });
    const node = buildProcessorNode(type, config, {
      host: this.manager,
      services: this.#services,
      migrated: (what) => this.#migrated.set(config.id, what),
      uses: (ids) => this.#uses.set(config.id, ids),
    });
    const { pluginId } = node;
    node.onCommitted = (touched, acked) => this.#scheduler.committed(touched, acked);
    node.onTaskDone = (record) => this.manager.pluginStats.record(pluginId, record);
    this.#nodes.set(config.id, node);
    return this.#summary(node);
  }

  /**
   * Places a controller service in the flow, for processors placed after it
   * to name. Bad configuration is kept as findings; processors naming the
   * service will not start until they are fixed.
   */
  addControllerService(config: ControllerServiceConfig): ServiceSummary {
    this.#assertOpen();
    if (this.#services.has(config.id)) {
      throw createError('FLOW_DUPLICATE_PROCESSOR', { id: config.id, kind: 'controller service' });
    }
    const { instance, pluginId } = this.manager.registry.createControllerService(config.type);
    const service = new ServiceNode({
      id: config.id,
      type: config.type,
      pluginId,
      instance,
      ...configured(this.manager, pluginId, instance.getInfo().properties, config, 'service'),
    });
    this.#services.set(config.id, service);
    return service.summary();
  }

  /** Places a reporting task in the flow; it runs while started (startAll starts it). */
  addReportingTask(config: ReportingTaskConfig): ReportingTaskSummary {
    this.#assertOpen();
    return this.#reporting.add(config);
  }

  /** Starts a reporting task: refused while its configuration has findings. Its first run comes after one period. */
  async startReportingTask(id: string): Promise<void> {
    this.#assertOpen();
    await this.#reporting.start(id);
  }

  /** Stops a reporting task after its run in progress, if any. */
  stopReportingTask(id: string): Promise<void> {
    return this.#reporting.stop(id);
  }

  /**
   * Runs a reporting task once now, over the flow's metrics or the snapshot
   * given (initializing it when needed). A failure is counted and alerted,
   * and returned.
   */
  runReportingTask(id: string, metrics?: MetricsSnapshot): Promise<Error | null> {
    this.#assertOpen();
    return this.#reporting.run(id, metrics);
  }

  /** What reporting tasks see: each processor's counters and what the queues hold. */
  metrics(): MetricsSnapshot {
    return flowMetrics(this.#nodes, this.#connections);
  }

  /** Connects a relationship of one processor to another; FlowFiles recovered for it are queued again. */
  connect(config: ConnectionConfig): ConnectionStats {
    this.#assertOpen();
    const source = this.#node(config.source);
    const destination = this.#node(config.destination);
    const connection = wire(config, source, destination, this.#connections);
    for (const record of this.#recovered.get(connection.id) ?? []) connection.enqueue(record);
    this.#recovered.delete(connection.id);
    this.#connections.set(connection.id, connection);
    return connection.stats();
  }

  /** Starts a processor: refused while its configuration has findings or a relationship goes nowhere. */
  async start(id: string): Promise<void> {
    this.#assertOpen();
    const node = this.#node(id);
    if (node.state === 'running' || node.state === 'starting') return;
    const findings = startProblems(node);
    if (findings.length > 0) throw invalid(id, findings);
    node.state = 'starting';
    try {
      await this.#initialize(node);
    } catch (err) {
      node.state = 'stopped';
      throw err;
    }
    try {
      await this.#refuseSandboxFindings(node);
    } catch (err) {
      node.state = 'stopped';
      throw err;
    }
    node.state = 'running';
    node.yieldUntil = 0;
    this.#scheduler.start(node);
  }

  /**
   * Runs `times` tasks of a stopped processor now, one after another, outside
   * the scheduler (penalties and back-off do not delay them): for tests and
   * tools, such as the SDK's TestRunner. Initializes it first when needed.
   * Returns the failures (each also rolled back and alerted, as when scheduled).
   */
  async runTasks(id: string, times = 1): Promise<Error[]> {
    this.#assertOpen();
    const node = this.#node(id);
    if (node.state !== 'stopped')
      throw createError('USAGE', { message: `processor ${id} is ${node.state}; stop it first` });
    if (node.findings.length > 0) throw invalid(id, node.findings);
    await this.#initialize(node);
    await this.#refuseSandboxFindings(node);
    const failures: Error[] = [];
    for (let i = 0; i < times; i++) {
      node.activeTasks++;
      node.yieldUntil = 0;
      const err = await node.runTask({ content: this.#content, flowFiles: this.#flowFiles });
      node.activeTasks--;
      if (err) {
        failures.push(err);
        this.#failed(node, err);
      }
    }
    return failures;
  }

  /**
   * Every finding of a processor's configuration, with its own validate()
   * when it runs in a sandbox (which needs its instance made there: a
   * stopped processor is initialized for it, and stays so when valid).
   */
  async validateProcessor(id: string): Promise<ValidationFinding[]> {
    const node = this.#node(id);
    if (node.findings.length || node.processor.mode === 'inline') return [...node.findings];
    await this.#initialize(node);
    return [...node.processor.findings];
  }

  /** Stops a processor: no new tasks; running ones finish (their sessions commit or roll back). */
  async stop(id: string): Promise<void> {
    this.#stoppedForPlugin.delete(id);
    const node = this.#node(id);
    if (node.state === 'stopped' || node.state === 'stopping') return;
    node.state = 'stopping';
    this.#scheduler.cancel(id);
    await node.settled(2);
    try {
      await node.processor.onStopped?.(node.context);
    } catch (err) {
      this.#alert('PROCESSOR_STOP_FAILED', node, (err as Error).message ?? String(err));
    }
    if (node.initialized) await this.#releaseServices(node);
    node.initialized = false;
    node.state = 'stopped';
  }

  async startAll(): Promise<void> {
    const problems = [
      ...[...this.#nodes.values()].map((node) => ({ id: node.id, findings: startProblems(node) })),
      ...this.#reporting.problems(),
    ].filter((p) => p.findings.length > 0);
    if (problems.length) {
      const id = problems.map((p) => p.id).join(', ');
      const findings = problems.flatMap((p) => p.findings);
      throw createError('PROCESSOR_INVALID', { id, findings }, { details: { processors: problems } });
    }
    for (const node of this.#nodes.values()) await this.start(node.id);
    for (const id of this.#reporting.ids()) await this.startReportingTask(id);
  }

  async stopAll(): Promise<void> {
    await this.#reporting.stopAll();
    await Promise.all([...this.#nodes.keys()].map((id) => this.stop(id)));
  }

  /** Relationships of a processor neither connected nor auto-terminated. */
  unconnectedRelationships(id: string): string[] {
    return this.#node(id).unconnected();
  }

  stats(): FlowStats {
    const processors: Record<string, ProcessorSummary> = {};
    for (const node of this.#nodes.values()) processors[node.id] = this.#summary(node);
    let orphaned = 0;
    for (const list of this.#recovered.values()) orphaned += list.length;
    return {
      processors,
      connections: [...this.#connections.values()].map((c) => c.stats()),
      controllerServices: [...this.#services.values()].map((s) => s.summary()),
      reportingTasks: this.#reporting.summaries(),
      orphaned,
    };
  }

  /** FlowFiles held anywhere in the flow (queued or in flight). */
  queuedCount(): number {
    let n = 0;
    for (const c of this.#connections.values()) n += c.count;
    return n;
  }

  /** Every queued FlowFile's record, per connection (for inspection and tests). @internal */
  queueContents(): Map<string, FlowFileRecord[]> {
    const out = new Map<string, FlowFileRecord[]>();
    for (const [id, c] of this.#connections) out.set(id, c.snapshot());
    return out;
  }

  /** Reads a queued FlowFile's content (for inspection and tests). @internal */
  readContent(record: FlowFileRecord): Uint8Array {
    return record.claim ? this.#content.read(record.claim) : new Uint8Array(0);
  }

  /**
   * No task running, and no running processor could take work now (a
   * processor that yielded, waiting by choice as MergeContent does for a
   * fuller bin, counts as quiet), and no penalty pending.
   */
  isQuiet(): boolean {
    return isQuiet(this.#nodes, this.#connections);
  }

  /** When a session last committed anything (epoch ms). */
  get lastActivity(): number {
    return this.#scheduler.lastActivity;
  }

  /** The alerts this flow raised, oldest first (the host's bus keeps them). */
  alerts(): Alert[] {
    return this.manager.alerts().filter((a) => this.#raised.has(a));
  }

  /** Listens to the alerts this flow raises (sequential, each in turn; a throwing listener is ignored). Returns the function that stops listening. */
  onAlert(listener: AlertListener): () => void {
    return this.manager.onAlert((a) => {
      if (this.#raised.has(a)) listener(a);
    });
  }

  /** Stops every processor, then writes a snapshot of the queues and closes the repositories. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.stopAll();
    this.#unsubscribe();
    this.#closed = true;
    this.#flowFiles.close();
    this.#content.close();
  }

  /**
   * A plugin changed. Replaced (a reload or upgrade): each processor of it
   * gets a fresh instance for new sessions while sessions in flight finish
   * on the old one. Removed, disabled or in `error` (its key or release
   * revoked, its sandbox given up): its processors stop, with an alert, and
   * their queues keep what they hold until it is back.
   */
  async #pluginChanged(event: PluginChange): Promise<void> {
    if (this.#closed) return;
    refuseCommits(this.#nodes.values(), event);
    await this.#reporting.pluginChanged(event);
    const nodes = [...this.#nodes.values()].filter((n) => n.pluginId === event.pluginId);
    if (nodes.length === 0) return;
    await followPlugin(this.#followContext, nodes, event);
  }

  /**
   * A sandboxed processor's own validate() runs in its sandbox, when it is
   * made there: findings undo the initialization (its services released)
   * and refuse the processor, as the host's own findings do.
   */
  async #refuseSandboxFindings(node: ProcessorNode): Promise<void> {
    if (node.processor.findings.length === 0) return;
    const findings = node.processor.findings;
    await node.processor.onStopped?.(node.context);
    await this.#releaseServices(node);
    node.initialized = false;
    throw invalid(node.id, findings);
  }

  /** The controller services a processor names. */
  #servicesOf(node: ProcessorNode): ServiceNode[] {
    return (this.#uses.get(node.id) ?? []).map((id) => this.#services.get(id)!);
  }

  async #releaseServices(node: ProcessorNode): Promise<void> {
    for (const service of this.#servicesOf(node)) await service.release();
  }

  /**
   * Initializes a processor once, with the controller services it names
   * (enabled here for an inline processor, bound into the sandbox for a
   * sandboxed one); a failure is counted, alerted and thrown as PROCESSOR_START_FAILED.
   */
  async #initialize(node: ProcessorNode): Promise<void> {
    if (node.initialized) return;
    const held: ServiceNode[] = [];
    try {
      node.processor.services = bindings(this.#servicesOf(node));
      for (const service of this.#servicesOf(node)) {
        await service.acquire();
        held.push(service);
      }
      await node.processor.initialize?.(node.context);
      node.initialized = true;
    } catch (err) {
      for (const service of held) await service.release();
      node.stats.errors++;
      this.#alert('PROCESSOR_INIT_FAILED', node, (err as Error).message ?? String(err));
      throw createError('PROCESSOR_START_FAILED', { id: node.id, reason: (err as Error).message }, { cause: err });
    }
  }

  #failed(node: ProcessorNode, err: Error): void {
    this.manager.registry.recordError(node.pluginId);
    node.logger.error('processor failed; its session was rolled back', {
      err: err.message,
      failures: node.failures,
      backoffMs: node.yieldUntil - Date.now(),
    });
    this.#alert('PROCESSOR_FAILED', node, err.message);
  }

  #alert(code: AlertCode, node: { id: string; pluginId: string }, message: string): void {
    // marked before it is raised: the bus sends it to this flow's listeners at once
    const alert = { code, plugin: node.pluginId, processor: node.id, message, at: new Date().toISOString() };
    this.#raised.add(alert);
    this.manager.raiseAlert(alert);
  }

  #summary(node: ProcessorNode): ProcessorSummary {
    return {
      id: node.id,
      type: node.type,
      name: node.name,
      pluginId: node.pluginId,
      state: node.state,
      activeTasks: node.activeTasks,
      findings: [...node.findings],
      pluginVersion: this.manager.registry.has(node.pluginId) ? this.manager.registry.get(node.pluginId).version : '',
      migrated: this.#migrated.get(node.id) ?? null,
      ...node.stats,
    };
  }

  #node(id: string): ProcessorNode {
    const node = this.#nodes.get(id);
    if (!node) throw createError('FLOW_UNKNOWN_PROCESSOR', { id });
    return node;
  }

  #assertOpen(): void {
    if (this.#closed) throw createError('FLOW_CLOSED', {});
  }
}

/** Makes a flow controller; with the durable repository, queued FlowFiles of an earlier run are recovered. */
export async function createFlowController(options: FlowControllerOptions): Promise<FlowController> {
  return new FlowController(options);
}
