import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { createPluginManager, type PluginManager } from '../../src/index.ts';
import { type Emitted, startThrough, waitQuiet } from '../flow-harness.ts';
import { tempDir, until } from '../helpers.ts';
import { beforeLoad, makePlugin, newKey, sign, trustKey } from '../plugin-fixtures.ts';

/** A processor that uppercases its content. */
const CODE = `export default { processors: { Shout: () => ({
  getInfo: () => ({ name: 'Shout', version: '1.0.0', description: 'shout', tags: [], properties: [], relationships: [{ name: 'success' }] }),
  async onTrigger(ctx, session) {
    const ff = session.get();
    if (!ff) return;
    const text = new TextDecoder().decode(await session.read(ff));
    session.transfer(session.write(ff, text.toUpperCase()), 'success');
    session.commit();
  },
}) } };\n`;

async function installed(t: TestContext): Promise<{ dataDir: string; pluginDir: string }> {
  const dir = tempDir(t);
  const pluginDir = join(dir, 'plugins');
  const dataDir = join(dir, 'data');
  const key = newKey();
  await sign(makePlugin(pluginDir, { id: 'acme.shout', code: CODE, processors: ['Shout'] }), key);
  await beforeLoad({ dataDir, pluginDir }, (m) => trustKey(m, key));
  // the first load runs the module in its sandbox and learns its components
  const first = await createPluginManager({ dataDir, pluginDir, logLevel: false });
  assert.equal(first.statsOf('acme.shout').sandbox?.state, 'ready');
  await first.shutdown();
  return { dataDir, pluginDir };
}

async function runShout(
  t: TestContext,
  manager: PluginManager,
  inputs: string[],
  during: (out: Emitted[]) => Promise<void> = async () => {},
): Promise<Emitted[]> {
  const { flow, out } = await startThrough(
    t,
    manager,
    inputs.map((content) => ({ content })),
    'Shout',
    { id: 'shout', schedule: { batchSize: 1 }, penaltyDuration: '50 ms' },
  );
  await during(out);
  await until('every FlowFile through Shout', () => out.length >= inputs.length, 20_000);
  await waitQuiet(flow);
  return out;
}

describe('a plugin loaded before starts its sandbox on first use', () => {
  test('no sandbox at start; the first task starts it, and the flow gets every FlowFile once', async (t) => {
    const { dataDir, pluginDir } = await installed(t);
    const manager = await createPluginManager({ dataDir, pluginDir, logLevel: false });
    t.after(() => manager.shutdown());
    const plugin = manager.registry.get('acme.shout');
    assert.equal(plugin.status, 'active');
    assert.equal(manager.statsOf('acme.shout').sandbox?.state, 'idle');
    assert.equal(manager.sandboxOf('acme.shout')?.transport, null);

    const inputs = Array.from({ length: 20 }, (_, i) => `ff${i}`);
    const out = await runShout(t, manager, inputs);
    assert.deepEqual(out.map((e) => e.content.toString()).sort(), inputs.map((s) => s.toUpperCase()).sort());
    const stats = manager.statsOf('acme.shout');
    assert.equal(stats.sandbox?.state, 'ready');
    assert.equal(stats.sandbox?.restarts, 0, 'a first start is not a restart');
  });

  test('a sandbox that dies right after its first start is restarted as any other', async (t) => {
    const { dataDir, pluginDir } = await installed(t);
    const manager = await createPluginManager({ dataDir, pluginDir, logLevel: false });
    t.after(() => manager.shutdown());
    const host = manager.sandboxOf('acme.shout')!;
    const inputs = Array.from({ length: 2000 }, (_, i) => `ff${i}`);
    const out = await runShout(t, manager, inputs, async (so_far) => {
      await until('a first FlowFile through the new sandbox', () => so_far.length > 0, 20_000);
      await host.transport!.terminate();
    });
    assert.deepEqual(out.map((e) => e.content.toString()).sort(), inputs.map((s) => s.toUpperCase()).sort());
    assert.equal(manager.statsOf('acme.shout').sandbox?.restarts, 1);
  });

  test('closing a sandbox while it makes its first start leaves no sandbox running and no request waiting', async (t) => {
    const { dataDir, pluginDir } = await installed(t);
    const manager = await createPluginManager({ dataDir, pluginDir, logLevel: false });
    t.after(() => manager.shutdown());
    const host = manager.sandboxOf('acme.shout')!;
    const created = host.create({
      instance: 999,
      pluginId: 'acme.shout',
      component: 'Shout',
      processorId: 'p',
      dynamicProperties: false,
      properties: {},
    });
    assert.equal(host.state, 'restarting');
    await host.close();
    await assert.rejects(created, (e: Error & { code?: string }) => e.code === 'SANDBOX_CRASHED');
    assert.equal(host.state, 'closed');
    assert.equal(host.transport, null);
  });
});
