/**
 * Hostile plugins, each in a real sandbox: every one ends in a rollback or a
 * refusal, an alert naming it, and a flow that goes on. FlowFiles are
 * counted before and after: none lost, none duplicated.
 */

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { createFlowController, type FlowController } from '../../src/flow/controller.ts';
import { createPluginManager, type PluginManager } from '../../src/index.ts';
import { type Emitted, registerSink, registerSource } from '../flow-harness.ts';
import { sandboxWritable, tempDir, until } from '../helpers.ts';
import { beforeLoad, makePlugin, newKey, sign, trustKey, upperCode } from '../plugin-fixtures.ts';

function hostileCode(body: string, hooks = ''): string {
  return `export default { processors: { Hostile: () => ({
  getInfo: () => ({ name: 'Hostile', version: '1.0.0', description: 'misbehaves', tags: [], properties: [], relationships: [{ name: 'success' }] }),
  ${hooks}
  async onTrigger(ctx, session) {
    const batch = session.getBatch();
    ${body}
    for (const ff of batch) session.transfer(ff, 'success');
    session.commit();
  },
}) } };\n`;
}

interface Arena {
  manager: PluginManager;
  flow: FlowController;
  hostile: Emitted[];
  healthy: Emitted[];
  dir: string;
  count: () => number;
}

const N = 20;

/** A flow with the hostile plugin and a healthy one (its own sandbox) side by side, each fed N FlowFiles. */
async function arena(
  t: TestContext,
  code: string,
  manifest: Record<string, unknown> = {},
  options: { start?: boolean; limits?: Record<string, number>; mode?: 'process' | 'worker' } = {},
): Promise<Arena> {
  const dir = tempDir(t);
  const plugins = join(dir, 'plugins');
  const key = newKey();
  const goodKey = newKey();
  const hostile = makePlugin(plugins, {
    id: 'evil.hostile',
    publisher: 'evil',
    code,
    manifest: { limits: { maxExecutionMS: 1500, maxMemoryMB: 48, ...options.limits }, ...manifest },
  });
  const healthy = makePlugin(plugins, { id: 'good.healthy', publisher: 'good', code: upperCode('Healthy') });
  await sign(hostile, key);
  await sign(healthy, goodKey);
  await beforeLoad({ dataDir: join(dir, 'data'), pluginDir: plugins }, async (m) => {
    await trustKey(m, key, 'evil');
    await trustKey(m, goodKey, 'good');
  });
  const manager = await createPluginManager({
    dataDir: join(dir, 'data'),
    pluginDir: plugins,
    logLevel: false,
    // a worker is the operator's trust: both plugins listed for it, or both in process sandboxes (the default)
    ...(options.mode === 'worker' ? { workerPlugins: ['evil.hostile', 'good.healthy'] } : {}),
  });
  const flow = await createFlowController({ manager, repository: 'memory' });
  t.after(async () => {
    await flow.close();
    await manager.shutdown();
  });
  const out = { hostile: [] as Emitted[], healthy: [] as Emitted[] };
  const feed = Array.from({ length: N }, (_, i) => ({ content: `ff ${i}`, attributes: { n: String(i) } }));
  for (const side of ['hostile', 'healthy'] as const) {
    flow.createProcessorByType(registerSource(manager, feed), { id: `src-${side}` });
    flow.createProcessorByType(side === 'hostile' ? 'Hostile' : 'Healthy', {
      id: side,
      penaltyDuration: '100 ms',
      schedule: { batchSize: 5 },
    });
    flow.createProcessorByType(registerSink(manager, out[side]), { id: `sink-${side}` });
    flow.connect({ source: `src-${side}`, relationship: 'success', destination: side });
    flow.connect({ source: side, relationship: 'success', destination: `sink-${side}` });
  }
  if (options.start !== false) {
    for (const id of ['src-hostile', 'src-healthy', 'healthy', 'sink-hostile', 'sink-healthy']) await flow.start(id);
  }
  // every FlowFile of the hostile side: still queued (in any state) or delivered
  const count = () =>
    flow
      .stats()
      .connections.filter((c) => c.source === 'src-hostile' || c.destination === 'sink-hostile')
      .reduce((n, c) => n + c.queued, 0) + out.hostile.length;
  return { manager, flow, ...out, dir, count };
}

function assertAllThere(a: Arena): void {
  assert.equal(a.count(), N, 'no FlowFile of the hostile side was lost');
  assert.equal(new Set(a.hostile.map((f) => f.attributes.n)).size, a.hostile.length, 'none was delivered twice');
}

async function healthyGoesOn(a: Arena): Promise<void> {
  await until('the healthy plugin to finish its FlowFiles', () => a.healthy.length === N);
  assert.deepEqual(
    a.healthy.map((f) => f.content.toString()).sort(),
    Array.from({ length: N }, (_, i) => `FF ${i}`).sort(),
  );
}

// fault, heap and deadline containment: what a process sandbox holds, and what a worker (trusted code) holds too
for (const mode of ['process', 'worker'] as const) {
  describe(`hostile plugins in ${mode} sandboxes`, () => {
    const arenaIn = (t: TestContext, code: string, manifest: Record<string, unknown> = {}) =>
      arena(t, code, manifest, { mode });

    test('loops forever: the task past its deadline kills the sandbox; inputs roll back; it restarts', async (t) => {
      const a = await arenaIn(t, hostileCode('for (;;) {}'));
      await a.flow.start('hostile');
      await until('a timeout alert', () =>
        a.manager.alerts().some((x) => x.code === 'EXECUTION_TIMEOUT' && x.plugin === 'evil.hostile'),
      );
      await healthyGoesOn(a);
      await until('the sandbox restarted', () => (a.manager.sandboxOf('evil.hostile')?.stats.restarts ?? 0) >= 1);
      assertAllThere(a);
      assert.equal(a.hostile.length, 0);
      assert.ok(a.flow.stats().processors.hostile!.errors >= 1);
    });

    test('allocates without end: the heap cap stops it, the sandbox restarts, nothing is lost', async (t) => {
      const a = await arenaIn(
        t,
        hostileCode('const hoard = []; for (;;) hoard.push(new Array(1e5).fill(Math.random()));'),
      );
      await a.flow.start('hostile');
      await until('a memory alert', () =>
        a.manager.alerts().some((x) => x.code === 'MEMORY_LIMIT' && x.plugin === 'evil.hostile'),
      );
      await healthyGoesOn(a);
      assertAllThere(a);
    });

    test('calls process.exit(): only its sandbox ends; the host and the flow go on', async (t) => {
      const a = await arenaIn(t, hostileCode('process.exit(3);'));
      await a.flow.start('hostile');
      await until('a crash alert', () =>
        a.manager.alerts().some((x) => x.code === 'SANDBOX_CRASHED' && x.plugin === 'evil.hostile'),
      );
      await healthyGoesOn(a);
      assertAllThere(a);
    });

    test('never settles its promise, or blocks in Atomics.wait: the deadline holds either way', async (t) => {
      for (const body of [
        'await new Promise(() => {});',
        'Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);',
      ]) {
        const a = await arenaIn(t, hostileCode(body));
        await a.flow.start('hostile');
        await until(`a timeout alert for ${body}`, () =>
          a.manager.alerts().some((x) => x.code === 'EXECUTION_TIMEOUT'),
        );
        await healthyGoesOn(a);
        assertAllThere(a);
      }
    });

    test('throws in onTrigger: the session rolls back with an alert; in initialize: it does not start; in onStopped: an alert', async (t) => {
      const a = await arenaIn(t, hostileCode("throw new Error('trigger exploded');"));
      await a.flow.start('hostile');
      await until('a failure alert', () =>
        a.manager.alerts().some((x) => x.code === 'PROCESSOR_FAILED' && /trigger exploded/.test(x.message)),
      );
      await healthyGoesOn(a);
      assertAllThere(a);

      const b = await arenaIn(t, hostileCode('', "initialize() { throw new Error('init exploded'); },"));
      await assert.rejects(b.flow.start('hostile'), /init exploded/);
      assert.ok(b.manager.alerts().some((x) => x.code === 'PROCESSOR_INIT_FAILED' && x.plugin === 'evil.hostile'));
      await healthyGoesOn(b);
      assertAllThere(b);

      const c = await arenaIn(t, hostileCode('', "onStopped() { throw new Error('stop exploded'); },"));
      await c.flow.start('hostile');
      await until('delivery', () => c.hostile.length === N);
      await c.flow.stop('hostile');
      assert.ok(c.manager.alerts().some((x) => x.code === 'PROCESSOR_STOP_FAILED' && /stop exploded/.test(x.message)));
    });

    test('commits, then throws what cannot be read as an error: the commit stands, the task fails, the sandbox lives', async (t) => {
      // a Proxy whose every trap throws, and an object whose getters and toString throw, by turns
      const body = `for (const ff of batch) session.transfer(ff, 'success');
    session.commit();
    globalThis.turn = (globalThis.turn ?? 0) + 1;
    const p = new Proxy({}, { get() { throw p; }, has() { throw p; }, getPrototypeOf() { throw p; }, ownKeys() { throw p; } });
    const e = { get code() { throw e; }, get message() { throw e; }, get stack() { throw e; }, toString() { throw e; } };
    throw globalThis.turn % 2 ? p : e;`;
      const a = await arenaIn(t, hostileCode(body));
      await a.flow.start('hostile');
      await until('every committed FlowFile delivered', () => a.hostile.length === N);
      const failures = a.manager.alerts().filter((x) => x.plugin === 'evil.hostile');
      assert.ok(failures.length >= 2, 'both kinds thrown');
      for (const f of failures) {
        assert.equal(f.code, 'PROCESSOR_FAILED');
        assert.match(f.message, /cannot be read as an error/);
      }
      assert.equal(a.manager.sandboxOf('evil.hostile')!.stats.crashes, 0, 'the sandbox never died');
      await healthyGoesOn(a);
      assertAllThere(a);
    });

    test('a sandbox that keeps dying is given up and its plugin put in error; the host goes on', async (t) => {
      const a = await arenaIn(t, hostileCode('process.exit(1);'));
      await a.flow.start('hostile');
      await until('the plugin in error', () => a.manager.get('evil.hostile').status === 'error', 30_000);
      assert.match(a.manager.get('evil.hostile').statusReason!, /SANDBOX_FAILED/);
      assert.ok(a.manager.alerts().some((x) => x.code === 'SANDBOX_FAILED'));
      await healthyGoesOn(a);
      assertAllThere(a);
    });
  });
}

describe('hostile plugins in process sandboxes', () => {
  // computed import names: the scanner warns (IMPORT_DYNAMIC), the sandbox must hold
  const mod = (name: string) => `await import(['node', '${name}'].join(':'))`;

  test('reads /etc/passwd, writes outside its grant, spawns a process, opens a socket: each refused, each rolled back', async (t) => {
    const cases: [string, string, RegExp][] = [
      ['read /etc/passwd', `const fs = ${mod('fs')}; fs.readFileSync('/etc/passwd');`, /ERR_ACCESS_DENIED|permission/i],
      [
        'write outside',
        `const fs = ${mod('fs')}; fs.writeFileSync('/tmp/databridge-escape.txt', 'x');`,
        /ERR_ACCESS_DENIED|permission/i,
      ],
      ['spawn', `const cp = ${mod('child_process')}; cp.execSync('id');`, /ERR_ACCESS_DENIED|permission/i],
      [
        'socket',
        `const net = ${mod('net')}; await new Promise((resolve, reject) => { const s = net.connect(80, '1.1.1.1'); s.on('connect', resolve); s.on('error', reject); });`,
        /ENETUNREACH|EACCES|network/i,
      ],
    ];
    for (const [name, body, expected] of cases) {
      const a = await arena(t, hostileCode(body), { isolation: 'process' });
      assert.equal(a.manager.get('evil.hostile').isolation, 'process', name);
      await a.flow.start('hostile');
      await until(`a failure alert for ${name}`, () =>
        a.manager.alerts().some((x) => x.code === 'PROCESSOR_FAILED' && x.plugin === 'evil.hostile'),
      );
      const alert = a.manager.alerts().find((x) => x.code === 'PROCESSOR_FAILED')!;
      assert.match(alert.message, expected, `${name}: ${alert.message}`);
      await healthyGoesOn(a);
      assertAllThere(a);
      assert.equal(a.hostile.length, 0, name);
    }
    let escaped = true;
    try {
      readFileSync('/tmp/databridge-escape.txt');
    } catch {
      escaped = false;
    }
    assert.equal(escaped, false, 'nothing was written outside the grant');
  });

  test('a declared folder is readable and writable, and only it', async (t) => {
    const dir = tempDir(t);
    const grant = join(dir, 'grant');
    mkdirSync(grant);
    writeFileSync(join(grant, 'in.txt'), 'granted');
    sandboxWritable(grant);
    const body = `const fs = ${mod('fs')}; const text = fs.readFileSync('${grant}/in.txt', 'utf8'); fs.writeFileSync('${grant}/out.txt', text.toUpperCase());`;
    const a = await arena(t, hostileCode(body), { permissions: { fs: { read: [grant], write: [grant] } } });
    assert.equal(a.manager.get('evil.hostile').isolation, 'process', 'an untrusted plugin runs in a process');
    await a.flow.start('hostile');
    await until('delivery', () => a.hostile.length === N);
    assert.equal(readFileSync(join(grant, 'out.txt'), 'utf8'), 'GRANTED');
  });
});
