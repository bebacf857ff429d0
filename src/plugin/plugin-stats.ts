/**
 * Per-plugin statistics, in the same API as the lifecycle: sessions,
 * FlowFiles and bytes in and out, errors, rollbacks, latency percentiles.
 */

import type { TaskRecord } from '../flow/host.ts';

export type { TaskRecord };

export interface PluginStatistics {
  sessions: number;
  flowFilesIn: number;
  flowFilesOut: number;
  bytesIn: number;
  bytesOut: number;
  errors: number;
  rollbacks: number;
  latencyMs: { p50: number | null; p90: number | null; p99: number | null; max: number | null };
}

const WINDOW = 1024;

class Counter {
  sessions = 0;
  flowFilesIn = 0;
  flowFilesOut = 0;
  bytesIn = 0;
  bytesOut = 0;
  errors = 0;
  rollbacks = 0;
  readonly latencies: number[] = [];
  #next = 0;

  add(r: TaskRecord): void {
    this.sessions++;
    this.flowFilesIn += r.inputs;
    this.flowFilesOut += r.outputs;
    this.bytesIn += r.bytesIn;
    this.bytesOut += r.bytesOut;
    if (r.failed) this.errors++;
    if (r.rolledBack > 0) this.rollbacks++;
    // a ring of the last WINDOW durations
    if (this.latencies.length < WINDOW) this.latencies.push(r.durationMs);
    else this.latencies[this.#next++ % WINDOW] = r.durationMs;
  }
}

function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export class PluginStats {
  readonly #by = new Map<string, Counter>();

  record(pluginId: string, r: TaskRecord): void {
    const c = this.#by.get(pluginId) ?? new Counter();
    this.#by.set(pluginId, c);
    c.add(r);
  }

  get(pluginId: string): PluginStatistics {
    const c = this.#by.get(pluginId) ?? new Counter();
    const sorted = [...c.latencies].sort((a, b) => a - b);
    const round = (n: number | null) => (n === null ? null : Math.round(n * 100) / 100);
    return {
      sessions: c.sessions,
      flowFilesIn: c.flowFilesIn,
      flowFilesOut: c.flowFilesOut,
      bytesIn: c.bytesIn,
      bytesOut: c.bytesOut,
      errors: c.errors,
      rollbacks: c.rollbacks,
      latencyMs: {
        p50: round(percentile(sorted, 50)),
        p90: round(percentile(sorted, 90)),
        p99: round(percentile(sorted, 99)),
        max: round(sorted.at(-1) ?? null),
      },
    };
  }
}
