/**
 * FlowController: builds a flow of processors and connections and runs it.
 * An orchestrator, so longer than most files: it owns the repositories,
 * recovers queued FlowFiles at start, schedules each running processor
 * (timer-driven, woken early when input arrives or back-pressure lifts),
 * and raises alerts when processors fail.
 */

import { join } from 'node:path';
import type { Alert, AlertCode, AlertListener } from '../alerts.ts';
import { createError } from '../errors.ts';
import { toSdkLogger } from '../log.ts';
import {
  type MetricsSnapshot,
  type Processor,
  type PropertySpec,
  parseDataSize,
  parseDuration,
  type ValidationFinding,
} from '../sdk/index.ts';
import { validateProperties, withDefaults } from '../session/properties.ts';
import { type BackPressure, Connection, type ConnectionStats } from './connection.ts';
import { type ContentRepository, FileContentRepository, MemoryContentRepository } from './content-repository.ts';
import type { FlowFileRecord } from './flowfile.ts';
import { type FlowFileRepository, JournalFlowFileRepository, MemoryFlowFileRepository } from './flowfile-repository.ts';
import { type FlowHost, isSandboxed, isSandboxedService, type PluginChange } from './host.ts';
import { describeMigrations, migrateProperties } from './migrations.ts';
import { ProcessorNode, type ProcessorStats } from './processor-node.ts';
import {
  type ControllerServiceConfig,
  ReportingNode,
  type ReportingTaskConfig,
  type ReportingTaskSummary,
  ServiceNode,
  type ServiceSummary,
} from './services.ts';

export type { ControllerServiceConfig, ReportingTaskConfig, ReportingTaskSummary, ServiceSummary };

export interface FlowControllerOptions {
  /** The host: the plugin manager (`createFlowController({ manager })`). */
  manager: FlowHost;
  /**
   * `durable` (the default) keeps content segments and the FlowFile journal
   * under `<dataDir>/repository`; `memory` keeps nothing, for tests and
   * benchmarks.
   */
  repository?: 'durable' | 'memory';
  /** Defaults to the manager's data directory. */
  dataDir?: string;
}

export interface ScheduleConfig {
  /** Time between triggers: `10 ms`, `1 sec`, or milliseconds. Default 0 (as soon as there is work). */
  period?: string | number;
  /** Tasks of this processor at once. Default 1. */
  concurrentTasks?: number;
  /** Most FlowFiles one session takes. Default 100. */
  batchSize?: number;
}

export interface ProcessorConfig {
  id: string;
  name?: string;
  properties?: Readonly<Record<string, string>>;
  schedule?: ScheduleConfig;
  /** Relationships whose FlowFiles leave the flow. */
  autoTerminate?: readonly string[];
  /** How long a penalized FlowFile waits. Default `30 sec`. */
  penaltyDuration?: string;
  /** How long the processor rests after `ctx.yield()`. Default `1 sec`. */
  yieldDuration?: string;
  /**
   * The version of the processor's plugin the configuration was made with:
   * when the plugin is newer, the processor's declared migrations bring the
   * properties up to date.
   */
  version?: string;
}

export interface ConnectionConfig {
  /** Default `<source>/<relationship>/<destination>`; the journal files queued FlowFiles under it. */
  id?: string;
  source: string;
  relationship: string;
  destination: string;
  backPressure?: { objects?: number; size?: string | number };
}

export interface ProcessorSummary extends ProcessorStats {
  id: string;
  type: string;
  name: string;
  pluginId: string;
  state: ProcessorNode['state'];
  activeTasks: number;
  findings: ValidationFinding[];
  /** The version of the plugin that runs it. */
  pluginVersion: string;
  /** What the property migrations changed when the flow was made with an older version, else null. */
  migrated: string | null;
}

export interface FlowStats {
  processors: Record<string, ProcessorSummary>;
  connections: ConnectionStats[];
  controllerServices: ServiceSummary[];
  reportingTasks: ReportingTaskSummary[];
  /** FlowFiles recovered for queues the current flow does not have; kept, not dropped. */
  orphaned: number;
}

function durationMs(value: string | number | undefined, fallback: number, what: string): number {
  if (value === undefined) return fallback;
  const ms = typeof value === 'number' ? value : parseDuration(value);
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) {
    throw createError('USAGE', { message: `${what} must be a duration such as "10 ms", not "${value}"` });
  }
  return ms;
}

/** PROCESSOR_INVALID with the findings, for people and in `details`. */
function invalid(id: string, findings: readonly ValidationFinding[]): Error {
  return createError('PROCESSOR_INVALID', { id, findings }, { details: { findings } });
}

/** What keeps a processor from starting: its findings and relationships that go nowhere. */
function startProblems(node: ProcessorNode): ValidationFinding[] {
  return [
    ...node.findings,
    ...node.unconnected().map((r) => ({ message: `relationship "${r}" is neither connected nor auto-terminated` })),
  ];
}

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
  readonly #reporting = new Map<string, ReportingNode>();
  /** Controller services each processor names, by processor id. */
  readonly #uses = new Map<string, string[]>();
  readonly #migrated = new Map<string, string>();
  readonly #timers = new Map<string, { cancel: () => void; idle: boolean }>();
  readonly #recovered = new Map<string, FlowFileRecord[]>();
  /** The alerts this flow raised (on the host's bus, which keeps them). */
  readonly #raised = new WeakSet<Alert>();
  #lastActivity = Date.now();
  #closed = false;
  readonly #unsubscribe: () => void;

  constructor(options: FlowControllerOptions) {
    this.manager = options.manager;
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
  }

  /**
   * Places a processor of a registered type in the flow. A disabled or failed
   * plugin is refused; bad configuration is kept as findings, and the
   * processor will not start until they are fixed.
   */
  createProcessorByType(type: string, config: ProcessorConfig): ProcessorSummary {
    this.#assertOpen();
    if (this.#nodes.has(config.id)) throw createError('FLOW_DUPLICATE_PROCESSOR', { id: config.id });
    const { instance, pluginId } = this.manager.registry.createProcessor(type);
    const info = instance.getInfo();
    const pluginVersion = this.manager.registry.get(pluginId).version;
    const migration = migrateProperties(config.properties ?? {}, info.migrations, config.version, pluginVersion);
    if (migration.applied.length) {
      this.#migrated.set(config.id, describeMigrations(config.version!, pluginVersion, migration.applied));
    }
    const properties = withDefaults(info.properties, migration.properties);
    const findings = validateProperties(info.properties, properties, { dynamicProperties: info.dynamicProperties });
    const uses: string[] = [];
    for (const spec of info.properties) {
      const value = properties[spec.name];
      if (spec.type !== 'controllerService' || !value) continue;
      const service = this.#services.get(value);
      const problem = !service
        ? `names controller service "${value}", which this flow does not have`
        : isSandboxedService(service.instance) !== isSandboxed(instance) ||
            (isSandboxed(instance) && service.pluginId !== pluginId)
          ? `names controller service "${value}" of plugin ${service.pluginId}, which a processor of ${pluginId} cannot reach: a sandboxed plugin's processors use the services of their own plugin, inline processors those of inline plugins`
          : null;
      if (problem) findings.push({ property: spec.name, message: problem });
      else if (service!.findings.length) {
        findings.push({ property: spec.name, message: `names controller service "${value}", which is not valid` });
      } else uses.push(value);
    }
    this.#uses.set(config.id, uses);
    try {
      findings.push(...(instance.validate?.(properties) ?? []));
    } catch (err) {
      findings.push({ message: `validate() threw: ${(err as Error).message}` });
    }
    let specs = info.relationships;
    try {
      if (instance.getRelationships) specs = instance.getRelationships(properties);
    } catch (err) {
      findings.push({ message: `getRelationships() threw: ${(err as Error).message}` });
    }
    const relationships = new Set(specs.map((r) => r.name));
    const autoTerminate = new Set(config.autoTerminate ?? []);
    for (const r of specs) if (r.autoTerminateByDefault) autoTerminate.add(r.name);
    for (const r of config.autoTerminate ?? []) {
      if (!relationships.has(r)) findings.push({ message: `auto-terminated relationship "${r}" is not declared` });
    }
    const schedule = config.schedule ?? {};
    const positive = (n: number | undefined, fallback: number, what: string) => {
      if (n === undefined) return fallback;
      if (!Number.isInteger(n) || n < 1) throw createError('USAGE', { message: `${what} must be a positive integer` });
      return n;
    };
    const log = this.manager.log.child({ plugin: pluginId, processor: config.id });
    const node = new ProcessorNode({
      id: config.id,
      type,
      name: config.name ?? config.id,
      pluginId,
      processor: instance,
      info,
      properties,
      relationships,
      autoTerminate,
      periodMs: durationMs(schedule.period, 0, 'schedule.period'),
      concurrentTasks: positive(schedule.concurrentTasks, 1, 'schedule.concurrentTasks'),
      batchSize: positive(schedule.batchSize, info.defaultBatchSize ?? 100, 'schedule.batchSize'),
      penaltyMs: durationMs(config.penaltyDuration, 30_000, 'penaltyDuration'),
      yieldMs: durationMs(config.yieldDuration, 1000, 'yieldDuration'),
      findings,
      logger: toSdkLogger(log),
      services: (serviceId) => {
        const service = uses.includes(serviceId) ? this.#services.get(serviceId) : undefined;
        if (!service) throw new Error(`processor ${config.id} names no controller service "${serviceId}"`);
        if (service.users === 0) throw new Error(`controller service "${serviceId}" is not enabled`);
        return service.instance;
      },
    });
    node.onCommitted = (touched, acked) => this.#committed(touched, acked);
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
      ...this.#configured(pluginId, instance.getInfo().properties, config, 'service'),
    });
    this.#services.set(config.id, service);
    return service.summary();
  }

  /** Places a reporting task in the flow; it runs while started (startAll starts it). */
  addReportingTask(config: ReportingTaskConfig): ReportingTaskSummary {
    this.#assertOpen();
    if (this.#reporting.has(config.id)) {
      throw createError('FLOW_DUPLICATE_PROCESSOR', { id: config.id, kind: 'reporting task' });
    }
    const { instance, pluginId } = this.manager.registry.createReportingTask(config.type);
    const info = instance.getInfo();
    const node = new ReportingNode({
      id: config.id,
      type: config.type,
      pluginId,
      task: instance,
      periodMs: durationMs(config.period ?? info.defaultPeriod, 30_000, 'period'),
      ...this.#configured(pluginId, info.properties, config, 'reportingTask'),
    });
    if (node.periodMs < 10) throw createError('USAGE', { message: 'a reporting task period must be at least 10 ms' });
    this.#reporting.set(config.id, node);
    return node.summary();
  }

  /** A controller service's or reporting task's properties (defaults filled in), their findings, and its logger. */
  #configured(
    pluginId: string,
    specs: readonly PropertySpec[],
    config: ControllerServiceConfig | ReportingTaskConfig,
    role: 'service' | 'reportingTask',
  ) {
    const properties = withDefaults(specs, { ...(config.properties ?? {}) });
    return {
      properties,
      findings: validateProperties(specs, properties),
      logger: toSdkLogger(this.manager.log.child({ plugin: pluginId, [role]: config.id })),
    };
  }

  /** Starts a reporting task: refused while its configuration has findings. Its first run comes after one period. */
  async startReportingTask(id: string): Promise<void> {
    this.#assertOpen();
    const node = this.#reportingNode(id);
    if (node.state === 'running') return;
    if (node.findings.length > 0) {
      throw invalid(id, node.findings);
    }
    await this.#initializeTask(node);
    node.state = 'running';
    const tick = () => {
      node.timer = setTimeout(() => {
        if (node.state !== 'running') return;
        void this.runReportingTask(id).finally(() => {
          if (node.state === 'running') tick();
        });
      }, node.periodMs);
    };
    tick();
  }

  /** Stops a reporting task after its run in progress, if any. */
  async stopReportingTask(id: string): Promise<void> {
    const node = this.#reportingNode(id);
    this.#stoppedForPlugin.delete(id);
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
      if (wasRunning) this.#alert('PROCESSOR_STOP_FAILED', node, (err as Error).message ?? String(err));
    }
  }

  /**
   * Runs a reporting task once now, over the flow's metrics or the snapshot
   * given (initializing it when needed). A failure is counted and alerted,
   * and returned.
   */
  async runReportingTask(id: string, metrics?: MetricsSnapshot): Promise<Error | null> {
    this.#assertOpen();
    const node = this.#reportingNode(id);
    await node.running;
    let failure: Error | null = null;
    node.running = (async () => {
      try {
        await this.#initializeTask(node);
        await node.task.onTrigger(node.context, metrics ?? this.metrics());
        node.stats.runs++;
      } catch (err) {
        failure = err as Error;
        node.stats.errors++;
        node.stats.lastError = failure.message;
        this.manager.registry.recordError(node.pluginId);
        this.#alert('REPORTING_TASK_FAILED', node, failure.message);
      } finally {
        node.stats.lastRun = new Date().toISOString();
      }
    })();
    await node.running;
    node.running = null;
    return failure;
  }

  /** What reporting tasks see: each processor's counters and what the queues hold. */
  metrics(): MetricsSnapshot {
    const processors: Record<string, MetricsSnapshot['processors'][string]> = {};
    for (const node of this.#nodes.values()) {
      const { in: inCount, out, bytesIn, bytesOut, tasks, errors } = node.stats;
      processors[node.id] = { in: inCount, out, bytesIn, bytesOut, tasks, errors };
    }
    let queued = 0;
    let queuedBytes = 0;
    for (const c of this.#connections.values()) {
      const s = c.stats();
      queued += s.queued;
      queuedBytes += s.queuedBytes;
    }
    return { at: Date.now(), processors, queued, queuedBytes };
  }

  /** Connects a relationship of one processor to another; FlowFiles recovered for it are queued again. */
  connect(config: ConnectionConfig): ConnectionStats {
    this.#assertOpen();
    const source = this.#node(config.source);
    const destination = this.#node(config.destination);
    if (!source.relationships.has(config.relationship)) {
      throw createError('FLOW_UNKNOWN_RELATIONSHIP', {
        processor: source.id,
        relationship: config.relationship,
        known: [...source.relationships],
      });
    }
    const id = config.id ?? `${config.source}/${config.relationship}/${config.destination}`;
    if (this.#connections.has(id)) throw createError('FLOW_DUPLICATE_CONNECTION', { id });
    const bp: Partial<BackPressure> = {};
    if (config.backPressure?.objects !== undefined) bp.objects = config.backPressure.objects;
    if (config.backPressure?.size !== undefined) {
      const size = config.backPressure.size;
      const bytes = typeof size === 'number' ? size : parseDataSize(size);
      if (bytes === undefined)
        throw createError('USAGE', { message: `back-pressure size "${size}" is not a data size` });
      bp.bytes = bytes;
    }
    const connection = new Connection({
      id,
      source: source.id,
      relationship: config.relationship,
      destination: destination.id,
      backPressure: bp,
    });
    for (const record of this.#recovered.get(id) ?? []) connection.enqueue(record);
    this.#recovered.delete(id);
    this.#connections.set(id, connection);
    destination.incoming.push(connection);
    const list = source.outgoing.get(config.relationship) ?? [];
    list.push(connection);
    source.outgoing.set(config.relationship, list);
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
    this.#schedule(node, 0, false);
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
    if (node.findings.length || !isSandboxed(node.processor)) return [...node.findings];
    await this.#initialize(node);
    return [...node.processor.findings];
  }

  /** Stops a processor: no new tasks; running ones finish (their sessions commit or roll back). */
  async stop(id: string): Promise<void> {
    this.#stoppedForPlugin.delete(id);
    const node = this.#node(id);
    if (node.state === 'stopped' || node.state === 'stopping') return;
    node.state = 'stopping';
    this.#timers.get(id)?.cancel();
    this.#timers.delete(id);
    while (node.activeTasks > 0) await new Promise((r) => setTimeout(r, 2));
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
      ...[...this.#reporting.values()].map((node) => ({ id: node.id, findings: node.findings })),
    ].filter((p) => p.findings.length > 0);
    if (problems.length) {
      const id = problems.map((p) => p.id).join(', ');
      const findings = problems.flatMap((p) => p.findings);
      throw createError('PROCESSOR_INVALID', { id, findings }, { details: { processors: problems } });
    }
    for (const node of this.#nodes.values()) await this.start(node.id);
    for (const id of this.#reporting.keys()) await this.startReportingTask(id);
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.#reporting.keys()].map((id) => this.stopReportingTask(id)));
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
      reportingTasks: [...this.#reporting.values()].map((r) => r.summary()),
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
    const now = Date.now();
    for (const node of this.#nodes.values()) {
      if (node.activeTasks > 0) return false;
      const waiting = node.yieldUntil > now || node.isBackPressured();
      if (node.state === 'running' && !node.isSource && !waiting && node.hasWork(now)) return false;
    }
    for (const c of this.#connections.values()) {
      const s = c.stats();
      if (s.penalized > 0 && s.inFlight === 0 && this.#nodes.get(c.destination)?.state === 'running') return false;
    }
    return true;
  }

  /** When a session last committed anything (epoch ms). */
  get lastActivity(): number {
    return this.#lastActivity;
  }

  /** The alerts this flow raised, oldest first (the host's bus keeps them). */
  alerts(): Alert[] {
    return this.manager.alerts().filter((a) => this.#raised.has(a));
  }

  /** Listens to the alerts this flow raises (parallel; a throwing listener is ignored). Returns the function that stops listening. */
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
    const failed = event.type === 'status' && event.plugin?.status === 'error';
    const gone = event.type === 'unregistered' || event.type === 'disabled' || failed;
    // before anything awaits: a task of the plugin still running (inline, or a sandbox not yet closed) commits nothing more
    for (const node of this.#nodes.values()) {
      if (node.pluginId !== event.pluginId) continue;
      if (gone) node.commitRefusal = `plugin ${event.pluginId} ${failed ? 'is in error' : `was ${event.type}`}`;
      else if (event.type === 'enabled' || event.type === 'registered' || event.type === 'status')
        node.commitRefusal = null;
    }
    await this.#reportingChanged(event);
    const nodes = [...this.#nodes.values()].filter((n) => n.pluginId === event.pluginId);
    if (nodes.length === 0) return;
    if (gone) {
      const why = failed
        ? `is in error (${event.plugin?.statusReason ?? 'no reason given'})`
        : `was ${event.type === 'disabled' ? 'disabled' : 'removed'}`;
      for (const node of nodes) {
        if (node.state === 'stopped') continue;
        this.#alert('PLUGIN_UNAVAILABLE', node, `plugin ${event.pluginId} ${why}; the processor stopped`);
        await this.stop(node.id);
        this.#stoppedForPlugin.add(node.id);
      }
      return;
    }
    if (event.type === 'enabled' || (event.type === 'status' && event.plugin?.status === 'active')) {
      await this.#restartStopped(nodes);
      return;
    }
    if (event.type !== 'registered') return;
    for (const node of nodes) {
      const old = node.processor;
      let fresh: Processor;
      try {
        fresh = this.manager.registry.createProcessor(node.type).instance;
        // a sandboxed instance takes the services it names into its new sandbox; an inline one keeps the held ones
        if (isSandboxed(fresh)) fresh.services = this.#servicesOf(node).map((s) => s.binding());
        if (node.state === 'running' || node.state === 'starting') await fresh.initialize?.(node.context);
      } catch (err) {
        this.#alert(
          'RELOAD_FAILED',
          node,
          `the new version could not start; the old one keeps serving: ${(err as Error).message}`,
        );
        continue;
      }
      node.processor = fresh;
      node.logger.info('processor swapped to the reloaded plugin', { version: event.plugin?.version });
      // the old instance stops once the sessions it runs are done
      void (async () => {
        while (node.activeTasks > 0) await new Promise((r) => setTimeout(r, 5));
        try {
          await old.onStopped?.(node.context);
        } catch {
          // the old version's shutdown failing does not concern the new one
        }
      })();
    }
    await this.#restartStopped(nodes);
  }

  /**
   * A sandboxed processor's own validate() runs in its sandbox, when it is
   * made there: findings undo the initialization (its services released)
   * and refuse the processor, as the host's own findings do.
   */
  async #refuseSandboxFindings(node: ProcessorNode): Promise<void> {
    if (!isSandboxed(node.processor) || node.processor.findings.length === 0) return;
    const findings = node.processor.findings;
    await node.processor.onStopped();
    await this.#releaseServices(node);
    node.initialized = false;
    throw invalid(node.id, findings);
  }

  /** Reporting tasks follow their plugin as processors do: stopped while it is away, restarted (fresh) when back. */
  async #reportingChanged(event: PluginChange): Promise<void> {
    for (const node of this.#reporting.values()) {
      if (node.pluginId !== event.pluginId) continue;
      if (event.type === 'unregistered' || event.type === 'disabled' || event.plugin?.status === 'error') {
        if (node.state !== 'running') continue;
        await this.stopReportingTask(node.id);
        this.#stoppedForPlugin.add(node.id);
      } else if (
        event.type === 'registered' ||
        event.type === 'enabled' ||
        (event.type === 'status' && event.plugin?.status === 'active' && this.#stoppedForPlugin.has(node.id))
      ) {
        const restart = this.#stoppedForPlugin.has(node.id) || node.state === 'running';
        if (node.state === 'running') await this.stopReportingTask(node.id);
        try {
          if (event.type === 'registered') node.task = this.manager.registry.createReportingTask(node.type).instance;
          if (restart) await this.startReportingTask(node.id);
        } catch (err) {
          this.#alert('RELOAD_FAILED', node, `the reporting task could not start again: ${(err as Error).message}`);
        }
      }
    }
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
      if (isSandboxed(node.processor)) node.processor.services = this.#servicesOf(node).map((s) => s.binding());
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

  /** What stopped because its plugin went away starts again when the plugin is back and enabled. */
  async #restartStopped(nodes: readonly ProcessorNode[]): Promise<void> {
    for (const node of nodes) {
      if (!this.#stoppedForPlugin.has(node.id) || node.state !== 'stopped') continue;
      if (!this.manager.registry.has(node.pluginId) || !this.manager.registry.get(node.pluginId).enabled) continue;
      this.#stoppedForPlugin.delete(node.id);
      try {
        await this.start(node.id);
        node.logger.info('processor started again: its plugin is back');
      } catch (err) {
        // start() raised the alert; the processor stays stopped
        node.logger.warn('processor could not start again', { err: (err as Error).message });
      }
    }
  }

  #schedule(node: ProcessorNode, delayMs: number, idle: boolean): void {
    if (node.state !== 'running' || this.#timers.has(node.id)) return;
    const run = () => {
      this.#timers.delete(node.id);
      this.#tick(node);
    };
    if (delayMs <= 0) {
      const h = setImmediate(run);
      this.#timers.set(node.id, { cancel: () => clearImmediate(h), idle });
    } else {
      const h = setTimeout(run, delayMs);
      this.#timers.set(node.id, { cancel: () => clearTimeout(h), idle });
    }
  }

  /** Runs the node now if it is only waiting for input or for room downstream. */
  #wake(node: ProcessorNode): void {
    const timer = this.#timers.get(node.id);
    if (timer && !timer.idle) return;
    timer?.cancel();
    this.#timers.delete(node.id);
    this.#schedule(node, 0, false);
  }

  #tick(node: ProcessorNode): void {
    if (node.state !== 'running') return;
    const now = Date.now();
    // a sandbox over its CPU share gets no tasks until the monitor sees it back under
    const throttled = isSandboxed(node.processor) ? node.processor.throttledUntil : 0;
    const wait = Math.max(node.yieldUntil, throttled);
    if (wait > now) {
      this.#schedule(node, wait - now, false);
      return;
    }
    if (node.isBackPressured()) {
      // woken early when downstream commits; the timer is a safety net
      this.#schedule(node, 50, true);
      return;
    }
    if (!node.hasWork(now)) {
      const expiry = Math.min(...node.incoming.map((c) => c.nextPenaltyExpiry()));
      if (Number.isFinite(expiry)) this.#schedule(node, Math.max(1, expiry - now), true);
      return;
    }
    while (node.activeTasks < node.concurrentTasks && node.state === 'running') {
      node.activeTasks++;
      void node.runTask({ content: this.#content, flowFiles: this.#flowFiles }).then((err) => {
        node.activeTasks--;
        if (err) this.#failed(node, err);
        if (node.state === 'running') this.#schedule(node, node.periodMs, false);
      });
      if (node.isSource || !node.hasWork(Date.now())) break;
    }
  }

  #committed(touched: readonly Connection[], acked: readonly Connection[]): void {
    this.#lastActivity = Date.now();
    for (const c of touched) {
      const destination = this.#nodes.get(c.destination);
      if (destination) this.#wake(destination);
    }
    for (const c of acked) {
      const source = this.#nodes.get(c.source);
      if (source && !source.isBackPressured()) this.#wake(source);
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

  /** Initializes a reporting task once; a failure is thrown as PROCESSOR_START_FAILED. */
  async #initializeTask(node: ReportingNode): Promise<void> {
    if (node.initialized) return;
    try {
      await node.task.initialize?.(node.context);
      node.initialized = true;
    } catch (err) {
      this.#alert('PROCESSOR_INIT_FAILED', node, (err as Error).message ?? String(err));
      throw createError('PROCESSOR_START_FAILED', { id: node.id, reason: (err as Error).message }, { cause: err });
    }
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

  #reportingNode(id: string): ReportingNode {
    const node = this.#reporting.get(id);
    if (!node) throw createError('FLOW_UNKNOWN_PROCESSOR', { id });
    return node;
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
