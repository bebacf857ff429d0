import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { createFlowController } from '../../src/flow/controller.ts';
import {
  createPluginManager,
  isDataBridgeError,
  type PluginManager,
  type PluginManagerOptions,
} from '../../src/index.ts';
import type { ConfinementReport } from '../../src/sandbox/confinement.ts';
import { type Emitted, registerSink, registerSource, waitQuiet } from '../flow-harness.ts';
import { tempDir } from '../helpers.ts';
import { beforeLoad, makePlugin, newKey, sign, trustKey } from '../plugin-fixtures.ts';

/** What the probe says on a host without bubblewrap whose cgroups are writable. */
export const NO_BWRAP: ConfinementReport = {
  bwrap: { ok: false, path: null, detail: 'bwrap not found' },
  cgroup: { version: 1, memory: true, cpu: true, pids: true, detail: 'test' },
  prlimit: true,
  level: 'partial',
  missing: ['bubblewrap: apt-get install bubblewrap'],
};

/**
 * A plugin folder per spec under a fresh plugin directory, signed by a key
 * the store trusts for acme.*; then a manager with `options` over it.
 */
async function hostWith(
  t: TestContext,
  plugins: { id: string; manifest?: Record<string, unknown> }[],
  options: PluginManagerOptions = {},
): Promise<PluginManager> {
  const dir = tempDir(t);
  const dirs = { dataDir: join(dir, 'data'), pluginDir: join(dir, 'plugins') };
  const key = newKey();
  for (const p of plugins) await sign(makePlugin(dirs.pluginDir, p), key);
  await beforeLoad(dirs, (m) => trustKey(m, key));
  const manager = await createPluginManager({ ...dirs, logLevel: false, ...options });
  t.after(() => manager.shutdown());
  return manager;
}

describe('isolation modes: the operator trusts, the manifest can only tighten', () => {
  test('a plugin that declares nothing runs in a process sandbox; the operator’s lists (ids and patterns) make it worker or inline', async (t) => {
    const manager = await hostWith(
      t,
      [{ id: 'acme.plain' }, { id: 'acme.listed' }, { id: 'acme.inl' }, { id: 'beta.other', manifest: {} }],
      { workerPlugins: ['acme.*'], inlinePlugins: ['acme.inl'] },
    );
    // beta.other is signed by acme's key outside its namespace: it fails, and is still shown as a process plugin
    const modes = Object.fromEntries(manager.search({ source: 'external' }).map((p) => [p.id, p.isolation]));
    assert.deepEqual(modes, {
      'acme.plain': 'worker',
      'acme.listed': 'worker',
      'acme.inl': 'inline',
      'beta.other': 'process',
    });
    const plain = await hostWith(t, [{ id: 'acme.plain' }]);
    const info = plain.get('acme.plain');
    assert.equal(info.isolation, 'process');
    assert.equal(info.status, 'active');
    assert.equal(plain.sandboxOf('acme.plain')?.mode, 'process');
  });

  test('a manifest can ask for stricter isolation than the operator’s list, never looser', async (t) => {
    const manager = await hostWith(
      t,
      [
        { id: 'acme.wants-process', manifest: { isolation: 'process' } },
        { id: 'acme.wants-worker', manifest: { isolation: 'worker' } },
        { id: 'acme.wants-inline', manifest: { isolation: 'inline' } },
        { id: 'acme.inline-asks-worker', manifest: { isolation: 'worker' } },
      ],
      { workerPlugins: ['acme.wants-process', 'acme.wants-inline'], inlinePlugins: ['acme.inline-asks-worker'] },
    );
    assert.equal(manager.get('acme.wants-process').isolation, 'process', 'listed for worker, asks process');
    assert.equal(manager.get('acme.wants-worker').isolation, 'process', 'asks worker, not listed');
    assert.equal(manager.get('acme.wants-inline').isolation, 'worker', 'asks inline, listed for worker only');
    assert.equal(manager.get('acme.inline-asks-worker').isolation, 'worker', 'listed inline, asks worker');
    for (const id of ['acme.wants-process', 'acme.wants-worker', 'acme.wants-inline', 'acme.inline-asks-worker'])
      assert.equal(manager.get(id).status, 'active', id);
  });

  test('the lists come from the environment too, and a bad entry is CONFIG_INVALID naming it', async (t) => {
    const dir = tempDir(t);
    const { resolveConfig } = await import('../../src/plugin/config.ts');
    const env = { DATABRIDGE_WORKER_PLUGINS: 'acme.*, beta.one', DATABRIDGE_ALLOW_WEAK_ISOLATION: '1' };
    const config = resolveConfig({ dataDir: dir }, env);
    assert.deepEqual(config.workerPlugins, ['acme.*', 'beta.one']);
    assert.deepEqual(config.inlinePlugins, []);
    assert.equal(config.allowWeakIsolation, true);
    // an option wins over the environment
    assert.deepEqual(resolveConfig({ dataDir: dir, workerPlugins: [] }, env).workerPlugins, []);
    assert.throws(
      () => resolveConfig({ dataDir: dir }, { DATABRIDGE_INLINE_PLUGINS: 'acme.*.x' }),
      (err) => isDataBridgeError(err, 'CONFIG_INVALID') && /DATABRIDGE_INLINE_PLUGINS.*acme\.\*\.x/.test(err.message),
    );
    assert.throws(
      () => resolveConfig({ dataDir: dir, workerPlugins: ['acme/../x'] }),
      (err) => isDataBridgeError(err, 'CONFIG_INVALID') && /workerPlugins/.test(err.message),
    );
  });
});

describe('fail closed: a process plugin the host cannot confine is refused, and says why', () => {
  test('without bubblewrap a process plugin is ISOLATION_UNAVAILABLE naming it; a worker-trusted plugin and the flow run on', async (t) => {
    const manager = await hostWith(t, [{ id: 'acme.untrusted' }, { id: 'acme.trusted' }], {
      workerPlugins: ['acme.trusted'],
      confinementReport: NO_BWRAP,
    });
    const refused = manager.get('acme.untrusted');
    assert.equal(refused.status, 'error');
    assert.equal(refused.isolation, 'process');
    assert.match(refused.statusReason ?? '', /^ISOLATION_UNAVAILABLE: .*bubblewrap: apt-get install bubblewrap/);
    assert.deepEqual(refused.confinement, {
      level: 'partial',
      missing: ['bubblewrap: apt-get install bubblewrap'],
      weak: false,
      summary: refused.confinement!.summary,
    });
    assert.deepEqual(
      manager.validation('acme.untrusted').findings.map((f) => f.code),
      ['ISOLATION_UNAVAILABLE'],
    );
    assert.equal(manager.sandboxOf('acme.untrusted'), undefined, 'no sandbox was started for it');
    // its processor is known, and refused with the reason: a flow says why, not 'unknown type'
    assert.throws(
      () => manager.getProcessor('Untrusted'),
      (err) => isDataBridgeError(err, 'PLUGIN_FAILED') && /ISOLATION_UNAVAILABLE.*bubblewrap/.test(err.message),
    );
    assert.deepEqual(refused.components, { processors: ['Untrusted'], controllerServices: [], reportingTasks: [] });
    await assert.rejects(manager.reload('acme.untrusted'), (err) => {
      assert.ok(isDataBridgeError(err, 'RELOAD_FAILED'));
      assert.deepEqual(
        (err.details as { findings: { code: string }[] }).findings.map((f) => f.code),
        ['ISOLATION_UNAVAILABLE'],
      );
      return true;
    });
    assert.deepEqual(manager.isolationStatus(), {
      level: 'partial',
      missing: ['bubblewrap: apt-get install bubblewrap'],
      weakAccepted: false,
    });

    const trusted = manager.get('acme.trusted');
    assert.equal(trusted.status, 'active');
    assert.equal(trusted.isolation, 'worker');
    assert.equal(trusted.confinement?.level, 'trusted');
    assert.match(trusted.confinement?.summary ?? '', /not a security boundary/);

    // the trusted plugin serves a flow beside the refused one: every FlowFile delivered once
    const flow = await createFlowController({ manager, repository: 'memory' });
    t.after(() => flow.close());
    const out: Emitted[] = [];
    const inputs = Array.from({ length: 20 }, (_, i) => ({ content: `item ${i}` }));
    flow.createProcessorByType(registerSource(manager, inputs), { id: 'src' });
    flow.createProcessorByType('Trusted', { id: 'up' });
    flow.createProcessorByType(registerSink(manager, out), { id: 'sink' });
    flow.connect({ source: 'src', relationship: 'success', destination: 'up' });
    flow.connect({ source: 'up', relationship: 'success', destination: 'sink' });
    await flow.startAll();
    await waitQuiet(flow, 60, 60_000);
    assert.deepEqual(out.map((o) => o.content.toString()).sort(), inputs.map((i) => i.content.toUpperCase()).sort());
  });

  test('with allowWeakIsolation the plugin loads with what holds, and its status says weak', async (t) => {
    const manager = await hostWith(t, [{ id: 'acme.untrusted' }], {
      confinementReport: NO_BWRAP,
      allowWeakIsolation: true,
    });
    const info = manager.get('acme.untrusted');
    assert.equal(info.status, 'active');
    assert.equal(info.isolation, 'process');
    assert.equal(info.confinement?.level, 'partial');
    assert.equal(info.confinement?.weak, true);
    assert.deepEqual(info.confinement?.missing, ['bubblewrap: apt-get install bubblewrap']);
    assert.deepEqual(manager.isolationStatus(), {
      level: 'partial',
      missing: ['bubblewrap: apt-get install bubblewrap'],
      weakAccepted: true,
    });
    const sandbox = manager.sandboxOf('acme.untrusted')!;
    const isolation = manager.sandboxIsolation(sandbox);
    assert.equal(isolation.weak, true);
    assert.equal(isolation.holds.bwrap, false);
    assert.deepEqual(isolation.holds.cgroup, { version: 1, memory: true, cpu: true, pids: true });
    assert.equal(manager.getProcessor('Untrusted').getInfo().name, 'Untrusted');
  });

  test('on a fully confining host nothing is refused and nothing is weak', async (t) => {
    const full: ConfinementReport = {
      ...NO_BWRAP,
      bwrap: { ok: true, path: '/usr/bin/bwrap', detail: 'test' },
      level: 'full',
      missing: [],
    };
    const manager = await hostWith(t, [{ id: 'acme.untrusted' }], {
      confinementReport: full,
      allowWeakIsolation: true,
    });
    assert.equal(manager.get('acme.untrusted').status, 'active');
    assert.deepEqual(manager.get('acme.untrusted').confinement?.level, 'full');
    assert.equal(manager.isolationStatus().weakAccepted, false);
    assert.equal(manager.get('builtin.GenerateFlowFile').confinement?.level, 'trusted');
  });
});
