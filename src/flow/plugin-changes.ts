/**
 * Processors follow their plugin. Replaced (a reload or upgrade): each
 * gets a fresh instance for new sessions while sessions in flight finish on
 * the old one. Removed, disabled or in `error` (its key or release revoked,
 * its sandbox given up): they stop, with an alert, and their queues keep
 * what they hold until it is back; then they start again.
 */

import type { AlertCode } from '../alerts.ts';
import type { FlowHost, PluginChange, ProcessorHandle, ServiceBinding } from './host.ts';
import { createHandle } from './processor-factory.ts';
import type { ProcessorNode } from './processor-node.ts';

export interface FollowContext {
  host: FlowHost;
  /** Processors stopped because their plugin went away: they start again when it is back. */
  stoppedForPlugin: Set<string>;
  start(id: string): Promise<void>;
  stop(id: string): Promise<void>;
  alert(code: AlertCode, node: { id: string; pluginId: string }, message: string): void;
  /** The controller services a processor names, for a sandboxed instance to make in its sandbox. */
  bindings(node: ProcessorNode): ServiceBinding[];
}

/** Whether the change takes the plugin away: unregistered, disabled, or in `error`. */
function isGone(event: PluginChange): boolean {
  return (
    event.type === 'unregistered' ||
    event.type === 'disabled' ||
    (event.type === 'status' && event.plugin?.status === 'error')
  );
}

/**
 * Before anything awaits: a task of a plugin that went away still running
 * (inline, or a sandbox not yet closed) commits nothing more; one that is
 * back may commit again.
 */
export function refuseCommits(nodes: Iterable<ProcessorNode>, event: PluginChange): void {
  const failed = event.type === 'status' && event.plugin?.status === 'error';
  const gone = isGone(event);
  for (const node of nodes) {
    if (node.pluginId !== event.pluginId) continue;
    if (gone) node.commitRefusal = `plugin ${event.pluginId} ${failed ? 'is in error' : `was ${event.type}`}`;
    else if (event.type === 'enabled' || event.type === 'registered' || event.type === 'status')
      node.commitRefusal = null;
  }
}

/** A plugin changed: its processors (`nodes`) stop, start again or swap to the new version. */
export async function followPlugin(
  ctx: FollowContext,
  nodes: readonly ProcessorNode[],
  event: PluginChange,
): Promise<void> {
  const failed = event.type === 'status' && event.plugin?.status === 'error';
  if (event.type === 'unregistered' || event.type === 'disabled' || failed) {
    const why = failed
      ? `is in error (${event.plugin?.statusReason ?? 'no reason given'})`
      : `was ${event.type === 'disabled' ? 'disabled' : 'removed'}`;
    for (const node of nodes) {
      if (node.state === 'stopped') continue;
      ctx.alert('PLUGIN_UNAVAILABLE', node, `plugin ${event.pluginId} ${why}; the processor stopped`);
      await ctx.stop(node.id);
      ctx.stoppedForPlugin.add(node.id);
    }
    return;
  }
  if (event.type === 'enabled' || (event.type === 'status' && event.plugin?.status === 'active')) {
    await restartStopped(ctx, nodes);
    return;
  }
  if (event.type !== 'registered') return;
  for (const node of nodes) {
    const old = node.processor;
    let fresh: ProcessorHandle;
    try {
      fresh = createHandle(ctx.host, node.type).handle;
      // a sandboxed instance takes the services it names into its new sandbox; an inline one keeps the held ones
      fresh.services = ctx.bindings(node);
      if (node.state === 'running' || node.state === 'starting') await fresh.initialize?.(node.context);
    } catch (err) {
      ctx.alert(
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
      await node.settled(5);
      try {
        await old.onStopped?.(node.context);
      } catch {
        // the old version's shutdown failing does not concern the new one
      }
    })();
  }
  await restartStopped(ctx, nodes);
}

/** What stopped because its plugin went away starts again when the plugin is back and enabled. */
export async function restartStopped(ctx: FollowContext, nodes: readonly ProcessorNode[]): Promise<void> {
  for (const node of nodes) {
    if (!ctx.stoppedForPlugin.has(node.id) || node.state !== 'stopped') continue;
    if (!ctx.host.registry.has(node.pluginId) || !ctx.host.registry.get(node.pluginId).enabled) continue;
    ctx.stoppedForPlugin.delete(node.id);
    try {
      await ctx.start(node.id);
      node.logger.info('processor started again: its plugin is back');
    } catch (err) {
      // start() raised the alert; the processor stays stopped
      node.logger.warn('processor could not start again', { err: (err as Error).message });
    }
  }
}
