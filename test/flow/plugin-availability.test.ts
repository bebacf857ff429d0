import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createFlowController } from '../../src/flow/controller.ts';
import { type Emitted, registerSink, registerSource, testManager, waitQuiet } from '../flow-harness.ts';
import { until } from '../helpers.ts';

test('a processor stopped because its plugin was disabled starts again when the plugin is enabled', async (t) => {
  const manager = await testManager(t);
  const out: Emitted[] = [];
  const flow = await createFlowController({ manager, repository: 'memory' });
  t.after(() => flow.close());
  const inputs = Array.from({ length: 10 }, (_, i) => ({ content: `ff${i}` }));
  flow.createProcessorByType(registerSource(manager, inputs), { id: 'src', schedule: { period: '10 ms' } });
  flow.createProcessorByType('UpdateAttribute', { id: 'tag', properties: { seen: 'yes' } });
  flow.createProcessorByType(registerSink(manager, out), { id: 'sink' });
  flow.connect({ source: 'src', relationship: 'success', destination: 'tag' });
  flow.connect({ source: 'tag', relationship: 'success', destination: 'sink' });

  await flow.start('tag');
  await flow.start('sink');
  await manager.disable('builtin.UpdateAttribute');
  await until('the processor stopped', () => flow.stats().processors.tag!.state === 'stopped');
  assert.ok(flow.alerts().some((a) => a.code === 'PLUGIN_UNAVAILABLE' && a.processor === 'tag'));

  // FlowFiles arriving meanwhile wait in the queue
  await flow.start('src');
  await until('the FlowFiles queued', () => flow.queuedCount() === 10);
  assert.equal(out.length, 0);

  await manager.enable('builtin.UpdateAttribute');
  await until('the processor running again', () => flow.stats().processors.tag!.state === 'running');
  await waitQuiet(flow);
  assert.equal(out.length, 10);
  assert.ok(out.every((e) => e.attributes.seen === 'yes'));

  // a processor the operator stopped stays stopped
  await manager.disable('builtin.UpdateAttribute');
  await until('stopped again', () => flow.stats().processors.tag!.state === 'stopped');
  await flow.stop('tag');
  await manager.enable('builtin.UpdateAttribute');
  await waitQuiet(flow);
  assert.equal(flow.stats().processors.tag!.state, 'stopped');
});
