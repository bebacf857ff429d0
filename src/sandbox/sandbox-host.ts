/**
 * One namespace's sandbox, as the host holds it: requests with deadlines,
 * at most `maxConcurrentTasks` triggers in flight (more wait), CPU
 * throttling the monitor decides, and crash handling. A sandbox that dies
 * (a crash, `process.exit()`, out of memory, a task past its deadline) has
 * every request in flight rejected (so their sessions roll back on the
 * host), an alert raised, and is restarted with backoff from a warm spare,
 * its plugins loaded and its processors made again. One that keeps dying
 * is given up: the host marks its plugins `error`. An orchestrator.
 *
 * A host made `idle` (its plugins' components already known from an earlier
 * load of the same bytes) starts no sandbox until the first request, so a
 * node with many installed plugins starts only those its flow uses.
 */

import type { AlertCode } from '../alerts.ts';
import { backoffMs, pollUntil } from '../deadline.ts';
import { createError } from '../errors.ts';
import { Limiter } from '../limiter.ts';
import type { PinoLogger } from '../log.ts';
import type { MetricsSnapshot } from '../sdk/index.ts';
import { confinementState } from './confinement.ts';
import type { PluginPermissions } from './grants.ts';
import { narrowLimits, type ResourceLimits } from './limits.ts';
import type { CreateRequest, HostMessage, LoadRequest, Replies, SandboxMessage, TriggerRequest } from './protocol.ts';
import { PROTOCOL_VERSION } from './protocol.ts';
import { checkReply, checkSandboxMessage, ProtocolViolation, type TriggerInFlight } from './protocol-check.ts';
import { LOG_MESSAGES_BURST, LOG_MESSAGES_PER_SECOND, TokenBucket } from './rate-limit.ts';
import {
  type SandboxConfinement,
  spawnProcess,
  spawnWorker,
  type Transport,
  type TransportEvents,
} from './transport.ts';

export type SandboxState = 'idle' | 'starting' | 'ready' | 'restarting' | 'failed' | 'closed';

/** An alert about a sandbox (a namespace): the manager raises it on the bus for each plugin in it. */
export interface SandboxAlert {
  code: Extract<
    AlertCode,
    | 'SANDBOX_CRASHED'
    | 'SANDBOX_PROTOCOL_VIOLATION'
    | 'MEMORY_LIMIT'
    | 'EXECUTION_TIMEOUT'
    | 'CPU_LIMIT'
    | 'FILE_HANDLES'
    | 'SANDBOX_FAILED'
  >;
  namespace: string;
  plugins: string[];
  message: string;
}

export interface SandboxHostOptions {
  namespace: string;
  mode: 'worker' | 'process';
  /** The namespace's limits; the host runs under them narrowed by `requested`. */
  limits: ResourceLimits;
  /** What the plugin's manifest asks for: it narrows the namespace's limits, never widens them. */
  requested?: ResourceLimits;
  permissions: PluginPermissions;
  readPaths: string[];
  /** Process mode: folders no declared path may touch (the data dir, the plugin dir), checked at every start. */
  protectedRoots?: readonly string[];
  log: PinoLogger;
  onAlert: (alert: SandboxAlert) => void;
  /** Called once when the sandbox is given up. */
  onFailed: (reason: string) => void;
  /** Restarts allowed within `restartWindowMs` before giving up. Default 5 in 60 s. */
  maxRestarts?: number;
  restartWindowMs?: number;
}

interface Pending {
  resolve: (m: SandboxMessage) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout | undefined;
  trigger: boolean;
  /** What it asked, for checking its reply: the request's type, a load's plugin, a trigger's inputs. */
  request: HostMessage['type'];
  loading?: string;
  inFlight?: TriggerInFlight;
}

const READY_TIMEOUT_MS = 20_000;
const CONTROL_TIMEOUT_MS = 30_000;

export class SandboxHost {
  readonly namespace: string;
  readonly mode: 'worker' | 'process';
  limits: ResourceLimits;
  readonly #o: SandboxHostOptions;
  #transport: Transport | null = null;
  #lastConfinement: SandboxConfinement | null = null;
  #spare: Promise<Transport> | null = null;
  #state: SandboxState = 'starting';
  #ready: Promise<void> = Promise.resolve();
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();
  readonly #loads = new Map<string, LoadRequest>();
  readonly #creates = new Map<number, CreateRequest>();
  #restartTimes: number[] = [];
  /** Task slots: maxConcurrentTasks, as the limits say at each acquire. */
  readonly #tasks = new Limiter(() => this.limits.maxConcurrentTasks ?? Number.POSITIVE_INFINITY);
  #readyResolvers: { resolve: () => void; reject: (e: Error) => void } | null = null;
  /** The monitor sets this: no new triggers until then. */
  throttledUntil = 0;
  readonly stats = { restarts: 0, crashes: 0, timeouts: 0, lastCrash: null as string | null, startedAt: Date.now() };
  /** Its log messages the host writes: a sandbox must not make the host log at a rate of its choosing. */
  readonly #logBudget = new TokenBucket(LOG_MESSAGES_PER_SECOND, LOG_MESSAGES_BURST, (dropped) =>
    this.#o.log.warn(
      { code: 'SANDBOX_LOG_DROPPED', namespace: this.namespace, plugins: this.plugins, dropped },
      `sandbox ${this.namespace}: ${dropped} log messages dropped (more than ${LOG_MESSAGES_PER_SECOND} a second)`,
    ),
  );

  constructor(options: SandboxHostOptions) {
    this.#o = options;
    this.namespace = options.namespace;
    this.mode = options.mode;
    this.limits = narrowLimits(options.limits, options.requested);
  }

  /**
   * Takes its namespace's new limits, narrowed as at construction: the
   * deadline, concurrency and CPU share apply to the next task, the heap cap
   * and RLIMIT_NOFILE at the next start.
   */
  setNamespaceLimits(limits: ResourceLimits): void {
    this.limits = narrowLimits(limits, this.#o.requested);
  }

  get state(): SandboxState {
    return this.#state;
  }

  get inFlight(): number {
    return this.#tasks.held;
  }

  get plugins(): string[] {
    return [...this.#loads.keys()];
  }

  get transport(): Transport | null {
    return this.#transport;
  }

  async start(): Promise<void> {
    this.#transport = await this.#spawn();
    this.#state = 'ready';
    this.#spare = this.#spawn().catch(() => null as never);
  }

  /**
   * Records a plugin as loaded without starting the sandbox: it starts, and
   * loads the plugin, on the first request. For plugins whose module has
   * loaded before with the same digest.
   */
  idle(req: Omit<LoadRequest, 'id' | 'type'>): void {
    if (this.#state !== 'starting' && this.#state !== 'idle')
      throw new Error(`sandbox ${this.namespace} is ${this.#state}`);
    this.#loads.set(req.pluginId, { type: 'load', id: 0, ...req });
    if (this.#state === 'idle') return;
    this.#state = 'idle';
    this.#pendingReady();
  }

  /** Loads a plugin into the sandbox (and again after every restart). */
  async load(req: Omit<LoadRequest, 'id' | 'type'>): Promise<Replies['load']> {
    const reply = await this.#request({ type: 'load', id: 0, ...req }, { timeoutMs: CONTROL_TIMEOUT_MS });
    this.#loads.set(req.pluginId, { type: 'load', id: 0, ...req });
    return reply;
  }

  /** Makes a processor instance in the sandbox (and again after every restart). */
  async create(req: Omit<CreateRequest, 'id' | 'type'>): Promise<Replies['create']> {
    const reply = await this.#request({ type: 'create', id: 0, ...req }, { timeoutMs: CONTROL_TIMEOUT_MS });
    this.#creates.set(req.instance, { type: 'create', id: 0, ...req });
    return reply;
  }

  /** Runs a reporting task instance once, with the namespace's deadline and a task slot. */
  async report(instance: number, metrics: MetricsSnapshot): Promise<void> {
    const release = await this.acquire();
    try {
      await this.#request(
        { type: 'report', id: 0, instance, metrics },
        { timeoutMs: this.limits.maxExecutionMS, trigger: true },
      );
    } finally {
      release();
    }
  }

  /** Removes an instance; its onStopped() throwing is reported, a dead sandbox is not. */
  async stop(instance: number): Promise<void> {
    this.#creates.delete(instance);
    if (this.#state !== 'ready') return;
    try {
      await this.#request(
        { type: 'stop', id: 0, instance },
        { timeoutMs: this.limits.maxExecutionMS ?? CONTROL_TIMEOUT_MS },
      );
    } catch (err) {
      if ((err as { code?: string }).code === 'SANDBOX_CRASHED') return;
      throw err;
    }
  }

  /** Waits for a free task slot (maxConcurrentTasks); returns its release. */
  acquire(): Promise<() => void> {
    return this.#tasks.acquire();
  }

  /**
   * Runs a trigger with the namespace's deadline; a task past it kills and
   * restarts the sandbox. Its reply is checked against its inputs (and
   * `ids.holds`: whether the host holds a FlowFile of an id, anywhere; the
   * check `ids.claim`s the new ids it passes) before it is returned; one that breaks the protocol rejects it as a crash would.
   */
  trigger(
    message: TriggerRequest,
    transfer: ArrayBuffer[],
    ids?: Pick<TriggerInFlight, 'holds' | 'claim'>,
  ): Promise<Replies['trigger']> {
    return this.#request(message, {
      transfer,
      timeoutMs: this.limits.maxExecutionMS,
      trigger: true,
      inFlight: { inputs: message.inputs, relationships: message.relationships, ...ids },
    });
  }

  /**
   * The confinement the process sandbox got (bwrap, cgroup, network): of
   * the one running, else of the last one started (an idle or restarting
   * host); null for a worker, or before any start.
   */
  get confinement(): SandboxConfinement | null {
    return this.#transport?.confinement ?? this.#lastConfinement;
  }

  /**
   * The sandbox's usage, as the host measures it. A process sandbox is never
   * asked: CPU and memory come from its cgroup (or /proc), `memoryUsed` is
   * then all its memory (heap and off-heap, what its limit holds), handles
   * are its runtime's open descriptors, `throttled` the periods its CPU
   * quota held it back. A worker shares the host's process: its own
   * counters, and its handle count from the runtime inside.
   */
  async usage(): Promise<{
    cpu: { user: number; system: number } | null;
    memoryUsed: number | null;
    handles: number | null;
    throttled: number | null;
  }> {
    const t = this.#transport;
    if (!t || this.#state !== 'ready') return { cpu: null, memoryUsed: null, handles: null, throttled: null };
    const measured = await t.measure();
    if (t.mode === 'process')
      return {
        cpu: measured.cpu,
        memoryUsed: measured.memory,
        handles: measured.handles,
        throttled: measured.throttled,
      };
    const reply = await this.#request({ type: 'usage', id: 0 }, { timeoutMs: 2000 }).catch(() => null);
    return { cpu: measured.cpu, memoryUsed: measured.memory, handles: reply?.handles ?? null, throttled: null };
  }

  /** Stops the sandbox for good: in-flight requests are rejected, and so rolled back. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#readyResolvers?.reject(
      createError('SANDBOX_CRASHED', { namespace: this.namespace, reason: 'the sandbox was closed' }),
    );
    this.#readyResolvers = null;
    this.#rejectAll('the sandbox was closed');
    await this.#transport?.terminate();
    const spare = await this.#spare?.catch(() => null);
    await spare?.terminate();
    this.#transport = null;
  }

  /** Waits until no trigger is in flight (for a drain before close). */
  async drain(timeoutMs = 30_000): Promise<void> {
    await pollUntil(() => this.#tasks.held === 0 || this.#state === 'closed', 5, timeoutMs);
  }

  async #request<M extends HostMessage>(
    message: M,
    opts: { transfer?: ArrayBuffer[]; timeoutMs?: number; trigger?: boolean; inFlight?: TriggerInFlight },
  ): Promise<Replies[M['type']]> {
    if (this.#state === 'idle') {
      this.#state = 'restarting';
      void this.#restart(true);
    }
    await this.#ready;
    if (this.#state === 'failed')
      throw createError('SANDBOX_FAILED', { namespace: this.namespace, reason: this.stats.lastCrash ?? 'gave up' });
    if (this.#state === 'closed' || !this.#transport)
      throw createError('SANDBOX_CRASHED', { namespace: this.namespace, reason: 'the sandbox is closed' });
    const id = this.#nextId++;
    const transport = this.#transport;
    return new Promise<Replies[M['type']]>((resolve, reject) => {
      const timer =
        opts.timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              if (!this.#pending.has(id)) return;
              this.stats.timeouts++;
              this.#crashed(
                opts.trigger
                  ? `a task ran past its deadline of ${opts.timeoutMs} ms`
                  : `no answer within ${opts.timeoutMs} ms`,
                'EXECUTION_TIMEOUT',
                transport,
              );
            }, opts.timeoutMs);
      this.#pending.set(id, {
        // checkReply saw that the reply is of the kind this request expects
        resolve: resolve as (m: SandboxMessage) => void,
        reject,
        timer,
        trigger: opts.trigger ?? false,
        request: message.type,
        loading: message.type === 'load' ? message.pluginId : undefined,
        inFlight: opts.inFlight,
      });
      transport.send({ ...message, id }, opts.transfer);
    });
  }

  async #spawn(): Promise<Transport> {
    // the probe runs once per host; a process sandbox gets what it found (the mode policy refused what it lacks)
    const confinement = this.mode === 'process' ? await confinementState() : null;
    return new Promise<Transport>((resolve, reject) => {
      let transport: Transport | null = null;
      let ready = false;
      const timer = setTimeout(() => {
        void transport?.terminate();
        reject(new Error(`the sandbox did not start within ${READY_TIMEOUT_MS} ms`));
      }, READY_TIMEOUT_MS);
      const events: TransportEvents = {
        message: (m) => {
          if (transport && transport === this.#transport) return this.#onMessage(m, transport);
          if (ready || !transport) return;
          // a sandbox starting: only its `ready` (no plugin code has run in it yet)
          let protocol: number;
          try {
            const hello = checkSandboxMessage(m, () => false);
            if (hello.type !== 'ready') throw new ProtocolViolation(`a ${hello.type} message before ready`);
            protocol = hello.protocol;
          } catch (err) {
            protocol = -1;
            this.#o.log.warn(
              { namespace: this.namespace, err: (err as Error).message },
              'a starting sandbox broke the protocol',
            );
          }
          ready = true;
          clearTimeout(timer);
          if (protocol !== PROTOCOL_VERSION) {
            void transport.terminate();
            reject(new Error(`protocol ${protocol}, expected ${PROTOCOL_VERSION}`));
          } else {
            this.#lastConfinement = transport.confinement;
            resolve(transport);
          }
        },
        violation: (reason) => {
          if (transport && transport === this.#transport) this.#violation(reason, transport);
        },
        exit: (reason) => {
          clearTimeout(timer);
          if (!ready) reject(new Error(`the sandbox exited while starting: ${reason}`));
          else if (transport && transport === this.#transport) {
            this.#crashed(reason, reason.startsWith('out of memory') ? 'MEMORY_LIMIT' : 'SANDBOX_CRASHED', transport);
          }
        },
        stderr: (line) => {
          if (line.trim()) this.#o.log.warn({ namespace: this.namespace, plugins: this.plugins }, `sandbox: ${line}`);
        },
      };
      const spawnOptions = {
        limits: this.limits,
        readPaths: this.#o.readPaths,
        protectedRoots: this.#o.protectedRoots,
        permissions: this.#o.permissions,
        confinement,
      };
      try {
        transport = this.mode === 'worker' ? spawnWorker(spawnOptions, events) : spawnProcess(spawnOptions, events);
      } catch (err) {
        // e.g. its cgroup could not be made: no start, and no timer left behind
        clearTimeout(timer);
        reject(err);
      }
    });
  }

  /**
   * A message from the running sandbox: checked (protocol-check.ts) before
   * anything acts on it. A log is written under the plugin it names (one
   * this sandbox runs); a reply settles the request in flight it answers.
   * Anything that breaks the protocol, and any error here at all, is the
   * sandbox's fault: nothing thrown leaves this handler.
   */
  #onMessage(raw: unknown, transport: Transport): void {
    try {
      const m = checkSandboxMessage(raw, (plugin) => this.#runs(plugin));
      if (m.type === 'log') {
        if (this.#logBudget.take())
          this.#o.log[m.level](
            { ...pluginLogFields(m.fields), plugin: m.plugin, namespace: this.namespace },
            m.message,
          );
        return;
      }
      if (m.type === 'ready') throw new ProtocolViolation('a second ready message');
      const pending = this.#pending.get(m.id);
      if (!pending) throw new ProtocolViolation(`a ${m.type} reply to no request in flight (id ${m.id})`);
      checkReply(pending.request, m, pending.inFlight);
      this.#pending.delete(m.id);
      clearTimeout(pending.timer);
      if (m.type === 'error') {
        const err = new Error(m.error.message) as Error & { code?: string; plugin?: string };
        err.code = m.error.code;
        err.plugin = m.error.plugin;
        pending.reject(err);
      } else pending.resolve(m);
    } catch (err) {
      this.#violation(
        err instanceof ProtocolViolation ? err.message : `its message could not be checked: ${String(err)}`,
        transport,
      );
    }
  }

  /** Whether this sandbox runs a plugin: loaded, or being loaded. */
  #runs(plugin: string): boolean {
    if (this.#loads.has(plugin)) return true;
    for (const p of this.#pending.values()) if (p.loading === plugin) return true;
    return false;
  }

  /** A sandbox that broke the protocol: killed and restarted, its sessions rolled back, an alert saying what. */
  #violation(reason: string, transport: Transport): void {
    try {
      this.#crashed(`broke the protocol: ${reason}`, 'SANDBOX_PROTOCOL_VIOLATION', transport);
    } catch (err) {
      // an alert listener that throws: said, never thrown into the event loop that delivered the message
      this.#o.log.error(
        { namespace: this.namespace, err: String(err), reason },
        'handling a protocol violation failed',
      );
    }
  }

  #rejectAll(reason: string): void {
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(createError('SANDBOX_CRASHED', { namespace: this.namespace, reason }));
      this.#pending.delete(id);
    }
  }

  #crashed(reason: string, code: SandboxAlert['code'], transport: Transport): void {
    if (transport !== this.#transport || this.#state === 'closed' || this.#state === 'failed') return;
    this.stats.crashes++;
    this.stats.lastCrash = reason;
    this.#transport = null;
    this.#state = 'restarting';
    // requests already waiting for a start that this crash interrupted keep waiting on the same promise
    if (!this.#readyResolvers) this.#pendingReady();
    void transport.terminate();
    this.#rejectAll(reason);
    this.#o.onAlert({
      code,
      namespace: this.namespace,
      plugins: this.plugins,
      message: `sandbox ${this.namespace}: ${reason}; restarting`,
    });
    const now = Date.now();
    const window = this.#o.restartWindowMs ?? 60_000;
    this.#restartTimes = this.#restartTimes.filter((t) => now - t < window);
    if (this.#restartTimes.length >= (this.#o.maxRestarts ?? 5)) {
      this.#giveUp(
        `it died ${this.#restartTimes.length + 1} times within ${Math.round(window / 1000)} s; last: ${reason}`,
      );
      return;
    }
    this.#restartTimes.push(now);
    const backoff = backoffMs(this.#restartTimes.length, 50, 5000);
    setTimeout(() => void this.#restart(), this.#restartTimes.length === 1 ? 0 : backoff);
  }

  /** (Re)starts the sandbox: a first start of an idle host, or a restart after a crash. */
  async #restart(first = false): Promise<void> {
    if (this.#state !== 'restarting') return;
    let transport: Transport | null = null;
    try {
      const spare = this.#spare ? await this.#spare.catch(() => null) : null;
      this.#spare = null;
      transport = spare ?? (await this.#spawn());
      if (this.#state !== 'restarting') {
        // closed (or given up) while it started: nobody will use it
        await transport.terminate();
        return;
      }
      this.#transport = transport;
      // replay: plugins first, then processor instances, straight to the new transport
      for (const load of this.#loads.values()) await this.#replay(transport, load);
      for (const create of this.#creates.values()) await this.#replay(transport, create);
      if (this.#state !== 'restarting' || this.#transport !== transport) return;
      this.#state = 'ready';
      if (!first) this.stats.restarts++;
      this.stats.startedAt = Date.now();
      const resolvers = this.#readyResolvers;
      this.#readyResolvers = null;
      resolvers?.resolve();
      this.#spare = this.#spawn().catch(() => null as never);
      this.#o.log.info(
        { namespace: this.namespace, plugins: this.plugins },
        first ? 'sandbox started' : 'sandbox restarted',
      );
    } catch (err) {
      // a crash during the replay has its own restart under way; a close needs nothing more
      if (this.#state !== 'restarting' || (transport && this.#transport !== transport)) return;
      this.#giveUp(`it could not be ${first ? 'started' : 'restarted'}: ${(err as Error).message}`);
    }
  }

  #pendingReady(): void {
    this.#ready = new Promise<void>((resolve, reject) => {
      this.#readyResolvers = { resolve, reject };
    });
    this.#ready.catch(() => {});
  }

  #replay(transport: Transport, message: LoadRequest | CreateRequest): Promise<SandboxMessage> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`replaying ${message.type} timed out`));
      }, CONTROL_TIMEOUT_MS);
      this.#pending.set(id, {
        resolve,
        reject,
        timer,
        trigger: false,
        request: message.type,
        loading: message.type === 'load' ? message.pluginId : undefined,
      });
      transport.send({ ...message, id });
    });
  }

  #giveUp(reason: string): void {
    this.#state = 'failed';
    this.stats.lastCrash = reason;
    this.#readyResolvers?.reject(createError('SANDBOX_FAILED', { namespace: this.namespace, reason }));
    this.#readyResolvers = null;
    this.#rejectAll(reason);
    void this.#spare?.then((s) => s?.terminate()).catch(() => {});
    this.#o.onAlert({
      code: 'SANDBOX_FAILED',
      namespace: this.namespace,
      plugins: this.plugins,
      message: `sandbox ${this.namespace} given up: ${reason}`,
    });
    this.#o.onFailed(reason);
  }
}

/** Names the host writes on every log line: a plugin's field of such a name would be read as the host's (duplicate keys). */
const HOST_LOG_KEYS = new Set([
  'level',
  'time',
  'pid',
  'hostname',
  'msg',
  'v',
  'plugin',
  'namespace',
  'err',
  'processor',
]);

/**
 * A plugin's log fields as the host writes them: a name the host writes
 * itself becomes `field.<name>` (so `level` or `time` cannot restate the
 * host's), and a name that is not a plain name (control characters, spaces,
 * `=`) is dropped, counted in `droppedFields`.
 */
export function pluginLogFields(fields: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let dropped = 0;
  for (const [key, value] of Object.entries(fields)) {
    if (!/^[\w.-]{1,128}$/.test(key)) dropped++;
    else out[HOST_LOG_KEYS.has(key) ? `field.${key}` : key] = value;
  }
  if (dropped) out.droppedFields = dropped;
  return out;
}
