/**
 * The flow's scheduler: each running processor is triggered on its timer
 * (its period, a yield, a penalty's end, its sandbox's CPU throttle), or
 * woken early when input arrives or back-pressure lifts; up to its
 * concurrent tasks run at once.
 */

import type { Connection } from './connection.ts';
import type { ContentRepository } from './content-repository.ts';
import type { FlowFileRepository } from './flowfile-repository.ts';
import type { ProcessorNode } from './processor-node.ts';

export interface SchedulerOptions {
  nodes: ReadonlyMap<string, ProcessorNode>;
  repositories: { content: ContentRepository; flowFiles: FlowFileRepository };
  /** A task failed (its session was rolled back). */
  onFailed: (node: ProcessorNode, err: Error) => void;
}

export class Scheduler {
  readonly #o: SchedulerOptions;
  readonly #timers = new Map<string, { cancel: () => void; idle: boolean }>();
  #lastActivity = Date.now();

  constructor(options: SchedulerOptions) {
    this.#o = options;
  }

  /** When a session last committed anything (epoch ms). */
  get lastActivity(): number {
    return this.#lastActivity;
  }

  /** Triggers a node that just started. */
  start(node: ProcessorNode): void {
    this.#schedule(node, 0, false);
  }

  /** No more triggers for a node (its running tasks finish). */
  cancel(id: string): void {
    this.#timers.get(id)?.cancel();
    this.#timers.delete(id);
  }

  /** A session committed: what it sent to wakes its destinations, what it took frees its sources. */
  committed(touched: readonly Connection[], acked: readonly Connection[]): void {
    this.#lastActivity = Date.now();
    for (const c of touched) {
      const destination = this.#o.nodes.get(c.destination);
      if (destination) this.#wake(destination);
    }
    for (const c of acked) {
      const source = this.#o.nodes.get(c.source);
      if (source && !source.isBackPressured()) this.#wake(source);
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
    const wait = Math.max(node.yieldUntil, node.processor.throttledUntil);
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
      void node.runTask(this.#o.repositories).then((err) => {
        node.activeTasks--;
        if (err) this.#o.onFailed(node, err);
        if (node.state === 'running') this.#schedule(node, node.periodMs, false);
      });
      if (node.isSource || !node.hasWork(Date.now())) break;
    }
  }
}
