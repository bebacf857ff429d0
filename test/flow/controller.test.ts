import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createFlowController } from '../../src/flow/controller.ts';
import { createPluginManager, isDataBridgeError, type PluginManager } from '../../src/index.ts';
import type { Processor, ProcessorInfo } from '../../src/sdk/index.ts';
import { type Emitted, registerSink, registerSource, startThrough, testManager, waitQuiet } from '../flow-harness.ts';
import { sleep, tempDir, until } from '../helpers.ts';

function register(
  manager: PluginManager,
  type: string,
  make: () => Omit<Processor, 'getInfo'>,
  relationships = ['success'],
): void {
  const info: ProcessorInfo = {
    name: type,
    description: 'test',
    version: '1.0.0',
    tags: [],
    properties: [],
    relationships: relationships.map((name) => ({ name })),
  };
  manager.registerBuiltInProcessor(type, () => ({ getInfo: () => info, ...make() }), info);
}

const inputs = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ content: `ff-${i}`, attributes: { n: String(i) } }));

describe('FlowController', () => {
  test('a trigger that throws rolls back: inputs go back unchanged and penalized, an alert names the plugin', async (t) => {
    const manager = await testManager(t);
    let calls = 0;
    register(manager, 'Flaky', () => ({
      onTrigger(_ctx, session) {
        calls++;
        const batch = session.getBatch();
        for (const ff of batch) session.putAttribute(ff, 'touched', 'yes');
        if (calls === 1) throw new Error('first time unlucky');
        for (const ff of batch) session.transfer(ff, 'success');
        session.commit();
      },
    }));
    const out: Emitted[] = [];
    const flow = await createFlowController({ manager, repository: 'memory' });
    t.after(() => flow.close());
    flow.createProcessorByType(registerSource(manager, inputs(5)), { id: 'src' });
    flow.createProcessorByType('Flaky', { id: 'flaky', penaltyDuration: '500 ms' });
    flow.createProcessorByType(registerSink(manager, out), { id: 'sink' });
    flow.connect({ source: 'src', relationship: 'success', destination: 'flaky' });
    flow.connect({ source: 'flaky', relationship: 'success', destination: 'sink' });
    const alerts: string[] = [];
    flow.onAlert((a) => alerts.push(`${a.code}:${a.plugin}:${a.message}`));
    await flow.startAll();
    await until('the first failure', () => flow.stats().processors.flaky!.errors > 0);
    const during = flow.stats();
    assert.equal(during.processors.flaky!.errors, 1);
    assert.equal(during.connections[0]!.queued, 5, 'all five back in the queue after the rollback');
    assert.equal(during.connections[0]!.penalized, 5, 'and penalized');
    assert.equal(out.length, 0, 'nothing got past the failing processor while penalized');
    await waitQuiet(flow);
    assert.equal(out.length, 5);
    assert.deepEqual(out.map((f) => f.attributes.n).sort(), ['0', '1', '2', '3', '4']);
    assert.ok(out.every((f) => f.attributes.touched === 'yes'));
    assert.deepEqual(alerts, ['PROCESSOR_FAILED:builtin.Flaky:first time unlucky']);
    assert.equal(manager.get('builtin.Flaky').stats.errors, 1);
  });

  test('a trigger that throws what cannot be read as an error fails its task like any other; the host goes on', async (t) => {
    const manager = await testManager(t);
    let calls = 0;
    register(manager, 'Unreadable', () => ({
      onTrigger(_ctx, session) {
        calls++;
        const batch = session.getBatch();
        if (calls === 1) {
          const e = {
            toString: () => {
              throw e;
            },
            get message() {
              throw e;
            },
          };
          throw e;
        }
        if (calls === 2) {
          const p: object = new Proxy(
            {},
            {
              get() {
                throw p;
              },
              getPrototypeOf() {
                throw p;
              },
              has() {
                throw p;
              },
            },
          );
          throw p;
        }
        for (const ff of batch) session.transfer(ff, 'success');
        session.commit();
      },
    }));
    const { flow, out } = await startThrough(t, manager, inputs(3), 'Unreadable', {
      id: 'odd',
      penaltyDuration: '1 ms',
    });
    await until('all three delivered after two failures', () => out.length === 3);
    assert.equal(flow.stats().processors.odd!.errors, 2);
    const failed = flow.alerts().filter((a) => a.code === 'PROCESSOR_FAILED');
    assert.equal(failed.length, 2);
    for (const a of failed) assert.match(a.message, /cannot be read as an error/);
  });

  test('a processor that always fails is backed off, never run in a hot loop, and loses nothing', async (t) => {
    const manager = await testManager(t);
    register(manager, 'AlwaysFails', () => ({
      onTrigger(_ctx, session) {
        session.get();
        throw new Error('broken');
      },
    }));
    const flow = await createFlowController({ manager, repository: 'memory' });
    t.after(() => flow.close());
    flow.createProcessorByType(registerSource(manager, inputs(3)), { id: 'src' });
    flow.createProcessorByType('AlwaysFails', { id: 'bad', penaltyDuration: '1 ms', autoTerminate: ['success'] });
    flow.connect({ source: 'src', relationship: 'success', destination: 'bad' });
    await flow.startAll();
    await sleep(1200);
    // backoff 250 ms, 500 ms, 1 s…: a handful of tries in 1.2 s; a hot loop would make thousands
    // (a loaded machine only makes fewer)
    const tasks = flow.stats().processors.bad!.tasks;
    assert.ok(tasks <= 6, `tasks: ${tasks}`);
    await until('a retry after the backoff', () => flow.stats().processors.bad!.errors >= 2);
    assert.equal(flow.queuedCount(), 3, 'still holds every FlowFile');
  });

  test('back-pressure stops the upstream processor once the queue is full', async (t) => {
    const manager = await testManager(t);
    const flow = await createFlowController({ manager, repository: 'memory' });
    t.after(() => flow.close());
    flow.createProcessorByType('GenerateFlowFile', { id: 'gen', properties: { 'Batch Size': '10' } });
    flow.createProcessorByType('LogAttribute', { id: 'log', autoTerminate: ['success'] });
    flow.connect({ source: 'gen', relationship: 'success', destination: 'log', backPressure: { objects: 50 } });
    await flow.start('gen');
    await until('the queue is full', () => flow.stats().connections[0]!.full);
    const s = flow.stats();
    const queued = s.connections[0]!.queued;
    assert.ok(queued >= 50 && queued < 60, `stopped at the threshold (overshoot below one batch): ${queued}`);
    assert.equal(s.connections[0]!.full, true);
    const tasks = s.processors.gen!.tasks;
    await sleep(200);
    assert.equal(flow.stats().processors.gen!.tasks, tasks, 'not scheduled while full');
    await flow.start('log');
    await until('runs again once the queue drains', () => flow.stats().processors.gen!.out > queued);
  });

  test('concurrentTasks lets that many sessions of one processor run at once, and no more', async (t) => {
    const manager = await testManager(t);
    let running = 0;
    let most = 0;
    register(manager, 'Slow', () => ({
      async onTrigger(_ctx, session) {
        const ff = session.get();
        if (!ff) return;
        running++;
        most = Math.max(most, running);
        await sleep(30);
        running--;
        session.transfer(ff, 'success');
        session.commit();
      },
    }));
    const out: Emitted[] = [];
    const flow = await createFlowController({ manager, repository: 'memory' });
    t.after(() => flow.close());
    flow.createProcessorByType(registerSource(manager, inputs(12)), { id: 'src' });
    flow.createProcessorByType('Slow', { id: 'slow', schedule: { concurrentTasks: 3, batchSize: 1 } });
    flow.createProcessorByType(registerSink(manager, out), { id: 'sink' });
    flow.connect({ source: 'src', relationship: 'success', destination: 'slow' });
    flow.connect({ source: 'slow', relationship: 'success', destination: 'sink' });
    await flow.startAll();
    await waitQuiet(flow);
    assert.equal(out.length, 12);
    assert.equal(most, 3);
  });

  test('a relationship connected twice sends a copy to each connection; the copies share content', async (t) => {
    const manager = await testManager(t);
    const a: Emitted[] = [];
    const b: Emitted[] = [];
    const flow = await createFlowController({ manager, repository: 'memory' });
    t.after(() => flow.close());
    flow.createProcessorByType(registerSource(manager, inputs(2)), { id: 'src' });
    flow.createProcessorByType(registerSink(manager, a), { id: 'a' });
    flow.createProcessorByType(registerSink(manager, b), { id: 'b' });
    flow.connect({ source: 'src', relationship: 'success', destination: 'a' });
    flow.connect({ source: 'src', relationship: 'success', destination: 'b' });
    await flow.startAll();
    await waitQuiet(flow);
    assert.equal(a.length, 2);
    assert.equal(b.length, 2);
    assert.deepEqual(a.map((f) => f.content.toString()).sort(), b.map((f) => f.content.toString()).sort());
    assert.ok(
      a.every((f) => !b.some((g) => g.id === f.id)),
      'each copy has its own id',
    );
  });

  test('disabled plugins are refused; bad configuration is reported and the processor will not start', async (t) => {
    const manager = await testManager(t);
    const flow = await createFlowController({ manager, repository: 'memory' });
    t.after(() => flow.close());
    await manager.disable('builtin.HashContent');
    assert.throws(
      () => flow.createProcessorByType('HashContent', { id: 'h' }),
      (e: unknown) => isDataBridgeError(e, 'PLUGIN_DISABLED'),
    );
    const summary = flow.createProcessorByType('GenerateFlowFile', {
      id: 'gen',
      properties: { 'File Size': 'huge', 'Batch Size': '-x', Bogus: '1' },
    });
    assert.deepEqual(summary.findings.map((f) => f.property).sort(), ['Batch Size', 'File Size']);
    const split = flow.createProcessorByType('SplitText', { id: 'split', properties: { Nope: 'x' } });
    assert.deepEqual(split.findings.map((f) => f.property).sort(), ['Line Split Count', 'Nope']);
    await assert.rejects(flow.start('split'), (e: unknown) => {
      assert.ok(isDataBridgeError(e, 'PROCESSOR_INVALID'));
      assert.match(e.message, /Line Split Count is required/);
      assert.match(e.message, /relationship "splits" is neither connected nor auto-terminated/);
      return true;
    });
  });

  test('the durable repository gives back every queued FlowFile exactly once after a restart', async (t) => {
    const dir = tempDir(t);
    const build = async (manager: PluginManager, withSource: boolean) => {
      const flow = await createFlowController({ manager });
      if (withSource) flow.createProcessorByType(registerSource(manager, inputs(300)), { id: 'src' });
      else flow.createProcessorByType('GenerateFlowFile', { id: 'src', properties: { 'Max FlowFiles': '0' } });
      flow.createProcessorByType('UpdateAttribute', {
        id: 'tag',
        properties: { stage: 'tagged' },
        schedule: { batchSize: 7 },
      });
      flow.createProcessorByType('LogAttribute', { id: 'end', autoTerminate: ['success'] });
      flow.connect({ source: 'src', relationship: 'success', destination: 'tag' });
      flow.connect({ source: 'tag', relationship: 'success', destination: 'end' });
      return flow;
    };
    const m1 = await createPluginManager({ dataDir: dir, logLevel: false });
    const f1 = await build(m1, true);
    await f1.start('src');
    await f1.start('tag');
    await sleep(5);
    await f1.stop('tag');
    const before = f1.queueContents();
    const ids = [...before.values()].flat().map((r) => r.id);
    assert.equal(ids.length, 300, 'all 300 are somewhere in the queues');
    await f1.close();
    await m1.shutdown();

    const m2 = await createPluginManager({ dataDir: dir, logLevel: false });
    const f2 = await build(m2, false);
    const after = f2.queueContents();
    const again = [...after.values()].flat();
    assert.equal(again.length, 300);
    assert.equal(new Set(again.map((r) => r.id)).size, 300, 'no duplicates');
    assert.deepEqual(new Set(again.map((r) => r.id)), new Set(ids));
    for (const [queue, records] of before) {
      assert.deepEqual(
        after.get(queue)!.map((r) => r.id),
        records.map((r) => r.id),
        `${queue} in the same order`,
      );
    }
    const sample = again.find((r) => r.attributes.stage === 'tagged') ?? again[0]!;
    assert.match(Buffer.from(f2.readContent(sample)).toString(), /^ff-\d+$/, 'content survives too');
    await f2.start('tag');
    await f2.start('end');
    await waitQuiet(f2);
    assert.equal(f2.stats().processors.end!.in, 300);
    assert.equal(f2.queuedCount(), 0);
    await f2.close();
    await m2.shutdown();
  });
});
