import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { createPluginManager, isDataBridgeError, type PluginManager } from '../../src/index.ts';
import { startThrough, testManager, waitQuiet } from '../flow-harness.ts';
import { sleep, tempDir, until } from '../helpers.ts';
import { beforeLoad, makePlugin, newKey, sign, trustKey } from '../plugin-fixtures.ts';

function code(body: string): string {
  return `let inFlight = 0; let most = 0;
export default { processors: { Probe: () => ({
  getInfo: () => ({ name: 'Probe', version: '1.0.0', description: 'probe', tags: [], properties: [], relationships: [{ name: 'success' }] }),
  async onTrigger(ctx, session) {
    const ff = session.get();
    if (!ff) return;
    inFlight++; most = Math.max(most, inFlight);
    try { ${body} } finally { inFlight--; }
    session.transfer(session.putAttribute(ff, 'most', String(most)), 'success');
    session.commit();
  },
}) } };\n`;
}

async function withPlugin(
  t: TestContext,
  body: string,
  manifest: Record<string, unknown>,
  options: Record<string, unknown> = {},
  namespaceLimits?: Record<string, number>,
): Promise<{ manager: PluginManager; dir: string }> {
  const dir = tempDir(t);
  const plugins = join(dir, 'plugins');
  const key = newKey();
  const p = makePlugin(plugins, { id: 'acme.probe', code: code(body), manifest });
  await sign(p, key);
  await beforeLoad({ dataDir: join(dir, 'data'), pluginDir: plugins }, async (m) => {
    await trustKey(m, key);
    if (namespaceLimits) await m.namespaces.create('acme.probe', 'probe', namespaceLimits);
  });
  const manager = await createPluginManager({
    dataDir: join(dir, 'data'),
    pluginDir: plugins,
    logLevel: false,
    ...options,
  });
  t.after(() => manager.shutdown());
  return { manager, dir };
}

function runProbe(t: TestContext, manager: PluginManager, n: number, concurrentTasks = 1) {
  return startThrough(
    t,
    manager,
    Array.from({ length: n }, (_, i) => ({ content: `x${i}` })),
    'Probe',
    { id: 'probe', schedule: { concurrentTasks, batchSize: 1 } },
  );
}

describe('namespace limits', () => {
  test('the namespace’s limits are narrowed by the manifest, never widened', async (t) => {
    const { manager } = await withPlugin(
      t,
      '',
      { limits: { maxMemoryMB: 512, maxExecutionMS: 900 } },
      {},
      { maxMemoryMB: 96, maxExecutionMS: 5000, maxConcurrentTasks: 3 },
    );
    assert.deepEqual(manager.statsOf('acme.probe').sandbox!.limits, {
      maxMemoryMB: 96,
      maxExecutionMS: 900,
      maxConcurrentTasks: 3,
    });
  });

  test('maxConcurrentTasks: at most that many tasks in flight in the namespace; more wait', async (t) => {
    const { manager } = await withPlugin(t, 'await new Promise((r) => setTimeout(r, 40));', {
      limits: { maxConcurrentTasks: 2 },
    });
    const { flow, out } = await runProbe(t, manager, 12, 6);
    await waitQuiet(flow);
    assert.equal(out.length, 12);
    assert.equal(Math.max(...out.map((f) => Number(f.attributes.most))), 2);
    const s = manager.statsOf('acme.probe');
    assert.equal(s.stats.flowFilesIn, 12);
    assert.equal(s.stats.sessions, 12);
    assert.ok(s.stats.latencyMs.p50! >= 30, `latency is measured (${s.stats.latencyMs.p50} ms)`);
    assert.ok(s.stats.latencyMs.p99! >= s.stats.latencyMs.p50!);
  });

  test('maxCPUPercent in a worker: a namespace over its CPU share is throttled, with an alert; the monitor keeps history', async (t) => {
    // the monitor's throttling is what holds a worker (a process sandbox has a hard cgroup quota instead)
    const { manager } = await withPlugin(
      t,
      'const end = Date.now() + 60; while (Date.now() < end) {}',
      { limits: { maxCPUPercent: 20 } },
      { monitorInterval: 200, workerPlugins: ['acme.probe'] },
    );
    const { flow } = await runProbe(t, manager, 400);
    await until('a CPU alert', () => manager.alerts().some((a) => a.code === 'CPU_LIMIT' && a.plugin === 'acme.probe'));
    const history = manager.statsOf('acme.probe').sandbox!.history;
    assert.ok(
      history.some((h) => h.throttled),
      'a sample shows the throttling',
    );
    assert.ok(
      history.every((h) => h.memoryUsed !== null && h.memoryUsed > 0),
      'heap is sampled',
    );
    // under a cgroup CPU quota the kernel holds it at its share (the samples say it was throttled); without one it is seen over it
    const quota = manager.sandboxOf('acme.probe')?.confinement?.controllers.includes('cpu') ?? false;
    assert.ok(history.some((h) => (h.cpuPercent ?? 0) > (quota ? 0 : 20)));
    await flow.stopAll();
  });

  test('maxFileHandles in a worker: measured, with an alert (a worker has no hard limit)', async (t) => {
    const { manager } = await withPlugin(
      t,
      'globalThis.keep ??= Array.from({ length: 40 }, () => setInterval(() => {}, 60000));',
      { limits: { maxFileHandles: 16 } },
      // a worker only where the operator trusts the plugin for one
      { monitorInterval: 150, workerPlugins: ['acme.probe'] },
    );
    assert.equal(manager.get('acme.probe').isolation, 'worker');
    const { flow } = await runProbe(t, manager, 3);
    await until('a handles alert', () =>
      manager.alerts().some((a) => a.code === 'FILE_HANDLES' && a.plugin === 'acme.probe'),
    );
    await flow.stopAll();
  });

  test('maxFileHandles in a process: a hard RLIMIT_NOFILE, so opening past it fails there', async (t) => {
    const dir = tempDir(t);
    mkdirSync(join(dir, 'files'));
    writeFileSync(join(dir, 'files', 'f.txt'), 'x');
    const body = `const fs = await import(['node', 'fs'].join(':')); const fds = []; try { for (let i = 0; i < 200; i++) fds.push(fs.openSync('${dir}/files/f.txt', 'r')); } finally { for (const fd of fds) fs.closeSync(fd); }`;
    const { manager } = await withPlugin(t, body, {
      limits: { maxFileHandles: 64 },
      permissions: { fs: { read: [join(dir, 'files')] } },
    });
    assert.equal(manager.get('acme.probe').isolation, 'process');
    const { flow } = await runProbe(t, manager, 2);
    await until('the task to fail', () =>
      manager.alerts().some((a) => a.code === 'PROCESSOR_FAILED' && /EMFILE/.test(a.message)),
    );
    await flow.stopAll();
  });
});

describe('ResourceGuard', () => {
  test('holds a slot of the namespace, and says when a limit is passed or the task aborted', async (t) => {
    const manager = await testManager(t);
    await manager.namespaces.create('etl', 'ETL', { maxConcurrentTasks: 1, maxExecutionMS: 50 });
    const ns = await manager.namespaces.open('etl');
    const first = await ns.newResourceGuard();
    let second = false;
    const waiting = ns.newResourceGuard().then((g) => {
      second = true;
      return g;
    });
    await sleep(20);
    assert.equal(second, false, 'the second waits for the slot');
    first.checkLimits();
    await sleep(70);
    assert.throws(
      () => first.checkLimits(),
      (e: unknown) => isDataBridgeError(e, 'LIMIT_EXCEEDED') && /maxExecutionMS/.test(e.message),
    );
    first.release();
    const g2 = await waiting;
    assert.equal(second, true);
    const controller = new AbortController();
    g2.release();
    const g3 = await ns.newResourceGuard(controller.signal);
    controller.abort();
    assert.throws(
      () => g3.checkLimits(),
      (e: unknown) => isDataBridgeError(e, 'LIMIT_EXCEEDED'),
    );
    g3.release();
  });
});
