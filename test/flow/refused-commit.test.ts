/**
 * A commit the flow refuses leaves nothing behind: whatever handle runs the
 * processor (inline, worker, process, or a faulty one), a commit that fails
 * the flow's own checks writes no byte to the content repository, and its
 * inputs go back to their queue. Here the handle is a hostile one that
 * applies a commit with new content and an output that reaches past it.
 */

import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { asError } from '../../src/errors.ts';
import { createFlowController } from '../../src/flow/controller.ts';
import type { FlowHost, ProcessorHandle, ProcessorTask, TaskEnd } from '../../src/flow/host.ts';
import type { Processor } from '../../src/sdk/index.ts';
import { helperInfo } from '../../src/testing/runner.ts';
import { registerSource, testManager } from '../flow-harness.ts';
import { until } from '../helpers.ts';

const MiB = 1 << 20;

/** Bytes in the content repository's segment files. */
function contentBytes(dataDir: string): number {
  const dir = join(dataDir, 'repository', 'content');
  return readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
}

test('a commit refused by the flow writes no content, and its inputs go back', async (t) => {
  const manager = await testManager(t);
  const info = helperInfo('Forged', ['success'], 'required');
  manager.registerBuiltInProcessor(
    'Forged',
    () => ({ getInfo: () => info, onTrigger() {}, forged: true }) as Processor,
    info,
  );
  const refusals: unknown[] = [];
  const forged = (instance: Processor): ProcessorHandle => ({
    mode: 'worker',
    findings: [],
    services: [],
    throttledUntil: 0,
    getInfo: () => instance.getInfo(),
    onTrigger: () => {},
    async runTask(task: ProcessorTask): Promise<TaskEnd> {
      const inputs = task.take();
      const input = inputs[0]!;
      let error: Error | null = null;
      try {
        task.apply({
          consumed: [input.id],
          contents: [new Uint8Array(MiB).fill(120)],
          outputs: [
            {
              ...input,
              attributes: { ...input.attributes },
              parentIds: [...input.parentIds],
              relationship: 'success',
              penalize: false,
              content: { kind: 'new', index: 0, offset: 0, length: MiB },
            },
            {
              id: crypto.randomUUID(),
              attributes: {},
              entryDate: Date.now(),
              lineageStartDate: Date.now(),
              parentIds: [input.id],
              relationship: 'success',
              penalize: false,
              content: { kind: 'new', index: 0, offset: 1, length: MiB },
            },
          ],
        });
      } catch (err) {
        error = asError(err);
        refusals.push(err);
      }
      task.finish([]);
      return { yielded: false, error };
    },
  });
  const host: FlowHost = {
    config: manager.config,
    log: manager.log,
    registry: manager.registry,
    pluginStats: manager.pluginStats,
    on: (l) => manager.on(l),
    raiseAlert: (a) => manager.raiseAlert(a),
    alerts: () => manager.alerts(),
    onAlert: (l) => manager.onAlert(l),
    processorHandle: (instance) =>
      (instance as { forged?: boolean }).forged ? forged(instance) : manager.processorHandle(instance),
  };
  // durable, to count the segment files' bytes; closed before the data folder goes
  const flow = await createFlowController({ manager: host });
  try {
    flow.createProcessorByType(registerSource(manager, [{ content: 'one input' }]), { id: 'src' });
    flow.createProcessorByType('Forged', { id: 'forged', penaltyDuration: '1 ms', autoTerminate: ['success'] });
    flow.connect({ source: 'src', relationship: 'success', destination: 'forged' });
    await flow.start('src');
    await until('the input queued', () => flow.stats().connections[0]!.queued === 1);
    const before = contentBytes(manager.config.dataDir);

    await flow.start('forged');
    await until('three refused commits', () => refusals.length >= 3);
    await flow.stop('forged');

    assert.match(String((refusals[0] as Error).message), /an output refers to content it cannot have/);
    assert.equal(contentBytes(manager.config.dataDir), before, 'no byte of a refused commit was written');
    assert.equal(flow.stats().connections[0]!.queued, 1, 'the input is back in its queue');
    assert.ok(flow.stats().processors.forged!.errors >= 3, 'each refusal is a failed task');
  } finally {
    await flow.close();
  }
});
