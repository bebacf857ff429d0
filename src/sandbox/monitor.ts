/**
 * ResourceMonitor: every `monitorInterval`, samples each sandbox as the host
 * measures it (a worker's own counters; a process's cgroup or /proc, never
 * what the child says: CPU, memory, open handles), with tasks in flight and
 * restarts, keeps a history for the console's charts, and enforces what is
 * enforced by watching: where no cgroup CPU quota holds a sandbox (a
 * worker, or a host without the cpu controller), a namespace over its CPU
 * share gets no tasks until a sample shows it back under; a worker over its
 * file handles raises an alert (a process has a hard limit instead).
 */

import type { SandboxAlert, SandboxHost } from './sandbox-host.ts';

export interface UsageSample {
  at: number;
  /** Percent of one core over the last interval. */
  cpuPercent: number | null;
  /** Bytes: a process sandbox's whole charge (heap, off-heap, page cache: what its memory limit holds); a worker's V8 heap. */
  memoryUsed: number | null;
  handles: number | null;
  inFlight: number;
  restarts: number;
  throttled: boolean;
}

export interface ResourceMonitorOptions {
  intervalMs: number;
  sandboxes: () => SandboxHost[];
  onAlert: (alert: SandboxAlert) => void;
  /** Samples kept per namespace. Default 240. */
  historySize?: number;
}

export class ResourceMonitor {
  readonly #o: ResourceMonitorOptions;
  readonly #history = new Map<string, UsageSample[]>();
  readonly #last = new Map<SandboxHost, { at: number; cpu: number }>();
  readonly #lastThrottled = new Map<SandboxHost, number>();
  readonly #alerting = new Map<string, Set<string>>();
  #timer: NodeJS.Timeout | undefined;
  #sampling = false;

  constructor(options: ResourceMonitorOptions) {
    this.#o = options;
  }

  start(): void {
    this.#timer ??= setInterval(() => void this.sample(), this.#o.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Takes one sample of every sandbox now. */
  async sample(): Promise<void> {
    if (this.#sampling) return;
    this.#sampling = true;
    try {
      // one sandbox's sample failing (it died meanwhile) leaves the others' alone
      await Promise.allSettled(this.#o.sandboxes().map((s) => this.#sampleOne(s)));
    } finally {
      this.#sampling = false;
    }
  }

  /** The samples of a namespace, oldest first. */
  history(namespace: string): UsageSample[] {
    return [...(this.#history.get(namespace) ?? [])];
  }

  latest(namespace: string): UsageSample | undefined {
    return this.#history.get(namespace)?.at(-1);
  }

  async #sampleOne(host: SandboxHost): Promise<void> {
    if (host.state !== 'ready') return;
    const now = performance.now();
    const usage = await host.usage();
    let cpuPercent: number | null = null;
    if (usage.cpu) {
      const total = usage.cpu.user + usage.cpu.system;
      const last = this.#last.get(host);
      if (last && now > last.at) cpuPercent = ((total - last.cpu) / 1000 / (now - last.at)) * 100;
      this.#last.set(host, { at: now, cpu: total });
    }
    const limits = host.limits;
    const quota = host.confinement?.controllers.includes('cpu') ?? false;
    let overCpu: boolean;
    if (quota) {
      // the kernel holds the cap; the sample says whether it had to in this interval
      const before = this.#lastThrottled.get(host);
      if (usage.throttled !== null) this.#lastThrottled.set(host, usage.throttled);
      overCpu = before !== undefined && usage.throttled !== null && usage.throttled > before;
      host.throttledUntil = 0;
    } else {
      overCpu = cpuPercent !== null && limits.maxCPUPercent !== undefined && cpuPercent > limits.maxCPUPercent;
      // no new tasks until a sample shows the namespace back under its share
      host.throttledUntil = overCpu ? Date.now() + this.#o.intervalMs : 0;
    }
    this.#edge(
      host,
      'CPU_LIMIT',
      overCpu,
      quota
        ? `CPU held at its quota of ${limits.maxCPUPercent} % of a core by its cgroup`
        : `CPU at ${cpuPercent?.toFixed(0)} % of a core, over its ${limits.maxCPUPercent} %; throttled`,
    );
    const overHandles =
      host.mode === 'worker' &&
      usage.handles !== null &&
      limits.maxFileHandles !== undefined &&
      usage.handles > limits.maxFileHandles;
    this.#edge(
      host,
      'FILE_HANDLES',
      overHandles,
      `${usage.handles} open handles, over its ${limits.maxFileHandles} (measured: a worker has no hard limit)`,
    );
    const sample: UsageSample = {
      at: Date.now(),
      cpuPercent,
      memoryUsed: usage.memoryUsed,
      handles: usage.handles,
      inFlight: host.inFlight,
      restarts: host.stats.restarts,
      throttled: overCpu,
    };
    const list = this.#history.get(host.namespace) ?? [];
    list.push(sample);
    if (list.length > (this.#o.historySize ?? 240)) list.shift();
    this.#history.set(host.namespace, list);
  }

  /** Raises an alert when a condition starts, not on every sample while it lasts. */
  #edge(host: SandboxHost, code: 'CPU_LIMIT' | 'FILE_HANDLES', on: boolean, message: string): void {
    const active = this.#alerting.get(host.namespace) ?? new Set<string>();
    this.#alerting.set(host.namespace, active);
    if (on && !active.has(code)) {
      active.add(code);
      this.#o.onAlert({
        code,
        namespace: host.namespace,
        plugins: host.plugins,
        message: `sandbox ${host.namespace}: ${message}`,
      });
    } else if (!on) active.delete(code);
  }
}
