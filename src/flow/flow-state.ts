/**
 * What the flow's state says as a whole: the metrics reporting tasks see,
 * and whether the flow is quiet (nothing running, nothing it could run now).
 */

import type { MetricsSnapshot } from '../sdk/index.ts';
import type { Connection } from './connection.ts';
import type { ProcessorNode } from './processor-node.ts';

type Nodes = ReadonlyMap<string, ProcessorNode>;
type Connections = ReadonlyMap<string, Connection>;

/** Each processor's counters and what the queues hold. */
export function flowMetrics(nodes: Nodes, connections: Connections): MetricsSnapshot {
  const processors: Record<string, MetricsSnapshot['processors'][string]> = {};
  for (const node of nodes.values()) {
    const { in: inCount, out, bytesIn, bytesOut, tasks, errors } = node.stats;
    processors[node.id] = { in: inCount, out, bytesIn, bytesOut, tasks, errors };
  }
  let queued = 0;
  let queuedBytes = 0;
  for (const c of connections.values()) {
    const s = c.stats();
    queued += s.queued;
    queuedBytes += s.queuedBytes;
  }
  return { at: Date.now(), processors, queued, queuedBytes };
}

/**
 * No task running, and no running processor could take work now (a
 * processor that yielded, waiting by choice as MergeContent does for a
 * fuller bin, counts as quiet), and no penalty pending.
 */
export function isQuiet(nodes: Nodes, connections: Connections): boolean {
  const now = Date.now();
  for (const node of nodes.values()) {
    if (node.activeTasks > 0) return false;
    const waiting = node.yieldUntil > now || node.isBackPressured();
    if (node.state === 'running' && !node.isSource && !waiting && node.hasWork(now)) return false;
  }
  for (const c of connections.values()) {
    const s = c.stats();
    if (s.penalized > 0 && s.inFlight === 0 && nodes.get(c.destination)?.state === 'running') return false;
  }
  return true;
}
