import assert from 'node:assert/strict';
import { appendFileSync, cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { createFlowController } from '../../src/flow/controller.ts';
import { createPluginManager, isDataBridgeError, type PluginManager } from '../../src/index.ts';
import { loadPlugin } from '../../src/plugin/loader.ts';
import { validatePluginDir } from '../../src/plugin/validator.ts';
import { type Emitted, registerSink, registerSource, waitQuiet } from '../flow-harness.ts';
import { tempDir, until } from '../helpers.ts';
import { beforeLoad, makePlugin, newKey, sign, trustKey, upperCode } from '../plugin-fixtures.ts';

async function managerWith(t: TestContext, dir: string, options: Record<string, unknown> = {}): Promise<PluginManager> {
  const manager = await createPluginManager({
    dataDir: join(dir, 'data'),
    pluginDir: join(dir, 'plugins'),
    logLevel: false,
    ...options,
  });
  t.after(() => manager.shutdown());
  return manager;
}

describe('loading external plugins', () => {
  test('at start every folder loads on its own: broken ones are in error with their codes, dependencies come first', async (t) => {
    const dir = tempDir(t);
    const key = newKey();
    const plugins = join(dir, 'plugins');
    // the app's folder sorts before its dependency's
    const app = makePlugin(plugins, { id: 'acme.a-app', manifest: { dependencies: { 'acme.z-base': '^1.0.0' } } });
    const base = makePlugin(plugins, { id: 'acme.z-base' });
    const thrower = makePlugin(plugins, { id: 'acme.thrower', code: 'throw new Error("boom at import");\n' });
    const tampered = makePlugin(plugins, { id: 'acme.tampered' });
    for (const p of [app, base, thrower, tampered]) await sign(p, key);
    appendFileSync(join(tampered, 'index.js'), '// changed\n');
    mkdirSync(join(plugins, 'not-a-plugin'));
    const first = await createPluginManager({ dataDir: join(dir, 'data'), pluginDir: plugins, logLevel: false });
    await trustKey(first, key);
    await first.shutdown();
    const manager = await managerWith(t, dir);
    const status = Object.fromEntries(
      manager.search({ source: 'external' }).map((p) => [p.id, [p.status, p.statusReason]]),
    );
    assert.deepEqual(status['acme.a-app'], ['active', null]);
    assert.deepEqual(status['acme.z-base'], ['active', null]);
    assert.equal(status['acme.thrower']![0], 'error');
    assert.match(status['acme.thrower']![1] as string, /LOAD_FAILED.*boom at import/);
    assert.match(status['acme.tampered']![1] as string, /^CHECKSUM_MISMATCH/);
    assert.match(status['not-a-plugin']![1] as string, /MANIFEST_INVALID/);
    assert.equal(manager.getProcessor('AApp').getInfo().name, 'AApp');
    assert.deepEqual(
      manager.validation('acme.tampered').findings.map((f) => f.code),
      ['CHECKSUM_MISMATCH'],
    );
  });

  test('the module guard refuses a file changed after validation, and imports from outside the folder', async (t) => {
    const dir = tempDir(t);
    const p = makePlugin(dir, { id: 'acme.swap' });
    await sign(p);
    const policy = { allowUnsigned: true, trustedPublishers: [], requireChecksum: true };
    const report = await validatePluginDir(p, { policy, engineVersion: '0.1.0' });
    assert.ok(report.valid);
    writeFileSync(join(p, 'index.js'), 'globalThis.swapped = true; export default {};\n');
    const loaded = await loadPlugin(p, report, { mode: 'inline' });
    assert.equal(loaded.registration, null);
    assert.match(loaded.findings[0]!.message, /changed after it was verified/);
    assert.equal((globalThis as { swapped?: boolean }).swapped, undefined, 'the swapped code never ran');

    writeFileSync(join(dir, 'outside.js'), 'globalThis.outside = true; export const x = 1;\n');
    const escaper = makePlugin(join(dir, 'e'), {
      id: 'acme.escape',
      code: `import '../../outside.js';\n${upperCode('Escape')}`,
    });
    await sign(escaper);
    const r2 = await validatePluginDir(escaper, { policy, engineVersion: '0.1.0' });
    const l2 = await loadPlugin(escaper, r2, { mode: 'inline' });
    assert.match(l2.findings[0]?.message ?? '', /outside the plugin folder/);
    assert.equal((globalThis as { outside?: boolean }).outside, undefined);
  });

  test('unsigned plugins load where the policy allows them, still checked against their checksums', async (t) => {
    const dir = tempDir(t);
    const p = makePlugin(join(dir, 'plugins'), { id: 'acme.unsigned' });
    await sign(p);
    const manager = await managerWith(t, dir, { allowUnsigned: true });
    assert.equal(manager.get('acme.unsigned').status, 'active');
    assert.deepEqual(
      manager.validation('acme.unsigned').findings.map((f) => [f.code, f.severity]),
      [['SIGNATURE_MISSING', 'warning']],
    );
  });
});

describe('lifecycle', () => {
  test('uninstall is refused while enabled plugins depend on it; history, audit and the rollback guard persist', async (t) => {
    const dir = tempDir(t);
    const manager = await managerWith(t, dir);
    const key = newKey();
    await trustKey(manager, key);
    const base = makePlugin(join(dir, 'src'), { id: 'acme.base', version: '1.4.0' });
    const app = makePlugin(join(dir, 'src'), { id: 'acme.app', manifest: { dependencies: { 'acme.base': '^1.0.0' } } });
    await sign(base, key);
    await sign(app, key);
    await manager.install(base, { actor: 'test' });
    await manager.install(app, { actor: 'test' });
    await assert.rejects(
      manager.uninstall('acme.base'),
      (e: unknown) => isDataBridgeError(e, 'PLUGIN_HAS_DEPENDENTS') && /acme\.app/.test(e.message),
    );
    assert.ok(existsSync(join(dir, 'plugins', 'acme.base')));
    await manager.uninstall('acme.base', { force: true, actor: 'test' });
    assert.ok(!existsSync(join(dir, 'plugins', 'acme.base')));
    assert.equal(manager.get('acme.app').status, 'error');
    const state = await manager.store.getPluginState('acme.base');
    assert.equal(state?.version, null);
    assert.equal(state?.highestVersion, '1.4.0', 'the rollback guard outlives the uninstall');
    assert.deepEqual(
      (await manager.store.installHistory('acme.base')).map((h) => h.action),
      ['install', 'uninstall'],
    );
    const audit = await manager.store.listAudit({ target: 'acme.base' });
    assert.deepEqual(
      audit.map((a) => `${a.action}:${a.result}`),
      ['uninstall:ok', 'uninstall:refused', 'install:ok'],
    );
    await assert.rejects(manager.uninstall('builtin.GetFile'), (e: unknown) => isDataBridgeError(e, 'PLUGIN_BUILTIN'));
    await assert.rejects(manager.reload('builtin.GetFile'), (e: unknown) => isDataBridgeError(e, 'PLUGIN_BUILTIN'));
  });

  test('two installs of one plugin racing end with one installed and one conflict', async (t) => {
    const dir = tempDir(t);
    const manager = await managerWith(t, dir);
    const key = newKey();
    await trustKey(manager, key);
    const p = makePlugin(join(dir, 'src'), { id: 'acme.race' });
    await sign(p, key);
    const results = await Promise.allSettled([manager.install(p), manager.install(p)]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.ok(isDataBridgeError(rejected.reason, 'INSTALL_CONFLICT'));
    assert.equal((await manager.store.installHistory('acme.race')).length, 1);
  });

  test('an install interrupted between its renames is undone at the next start', async (t) => {
    const dir = tempDir(t);
    const plugins = join(dir, 'plugins');
    const key = newKey();
    const v1 = makePlugin(plugins, { id: 'acme.crashy' });
    await sign(v1, key);
    // as if the process died after moving the old version aside, before moving the new one in
    mkdirSync(join(plugins, '.previous'), { recursive: true });
    cpSync(v1, join(plugins, '.previous', 'acme.crashy'), { recursive: true });
    const { rmSync } = await import('node:fs');
    rmSync(v1, { recursive: true });
    mkdirSync(join(plugins, '.staging', 'x', 'plugin'), { recursive: true });
    writeFileSync(
      join(plugins, '.staging', 'acme.crashy.intent.json'),
      JSON.stringify({
        id: 'acme.crashy',
        staged: join(plugins, '.staging', 'x', 'plugin'),
        target: v1,
        previous: join(plugins, '.previous', 'acme.crashy'),
      }),
    );
    await beforeLoad({ dataDir: join(dir, 'data'), pluginDir: plugins }, (m) => trustKey(m, key));
    const manager = await managerWith(t, dir);
    assert.equal(manager.get('acme.crashy').status, 'active', 'the old version is back and loads');
    assert.ok(!existsSync(join(plugins, '.staging')));
  });
});

describe('hot reload', () => {
  test('a changed plugin folder is reloaded under a running flow; bad files leave the old version serving', async (t) => {
    const dir = tempDir(t);
    const key = newKey();
    const plugins = join(dir, 'plugins');
    const v1 = makePlugin(plugins, { id: 'acme.live', version: '1.0.0' });
    await sign(v1, key);
    await beforeLoad({ dataDir: join(dir, 'data'), pluginDir: plugins }, (m) => trustKey(m, key));
    const manager = await managerWith(t, dir, { watchChanges: true, watchDebounceMs: 100 });
    assert.equal(manager.get('acme.live').version, '1.0.0');

    const out: Emitted[] = [];
    const flow = await createFlowController({ manager, repository: 'memory' });
    t.after(() => flow.close());
    // half before the swap, half after: v1 may well take all of the first half before v2 is in
    const feed = (from: number) => Array.from({ length: 200 }, (_, i) => ({ content: `item ${from + i}` }));
    flow.createProcessorByType(registerSource(manager, feed(0)), { id: 'src' });
    flow.createProcessorByType('Live', { id: 'live', schedule: { batchSize: 5, period: '10 ms' } });
    flow.createProcessorByType(registerSink(manager, out), { id: 'sink' });
    flow.connect({ source: 'src', relationship: 'success', destination: 'live' });
    flow.connect({ source: 'live', relationship: 'success', destination: 'sink' });
    await flow.startAll();
    await until('some output from v1', () => out.length >= 20);

    // version 1.1.0 appends a mark; written in place, as an author's build would
    const v2code = upperCode('Live').replace('.toUpperCase()', ".toUpperCase() + ' v2'");
    writeFileSync(join(v1, 'index.js'), v2code);
    writeFileSync(
      join(v1, 'manifest.json'),
      readFileSync(join(v1, 'manifest.json'), 'utf8').replace('"1.0.0"', '"1.1.0"'),
    );
    await sign(v1, key);
    await until('version 1.1.0', () => manager.get('acme.live').version === '1.1.0');
    flow.createProcessorByType(registerSource(manager, feed(200)), { id: 'src2' });
    flow.connect({ source: 'src2', relationship: 'success', destination: 'live' });
    await flow.start('src2');
    await until('output from v2', () => out.some((o) => o.content.toString().endsWith(' v2')), 60_000);
    await waitQuiet(flow, 60, 60_000);
    assert.equal(out.length, 400, 'no FlowFile lost or duplicated across the swap');
    assert.equal(new Set(out.map((o) => o.content.toString().replace(' V2', '').replace(' v2', ''))).size, 400);

    // a new version whose files were not signed again: refused, 1.1.0 keeps serving (a restart of its sandbox
    // checks every file it loads against 1.1.0's digests, so the changed code is never run)
    const manifest = join(v1, 'manifest.json');
    writeFileSync(manifest, readFileSync(manifest, 'utf8').replace('"1.1.0"', '"1.2.0"'));
    appendFileSync(join(v1, 'index.js'), '\n// unsigned change\n');
    await until('the refusal noted', () => /refused/.test(manager.get('acme.live').statusReason ?? ''));
    let live = manager.get('acme.live');
    assert.equal(live.status, 'active');
    assert.equal(live.version, '1.1.0');
    assert.match(live.statusReason!, /CHECKSUM_MISMATCH.*the loaded version keeps serving/);

    // 1.1.0's own files changed in place: what serves is no longer on disk, so it stops, and says so (never that it
    // keeps serving)
    writeFileSync(manifest, readFileSync(manifest, 'utf8').replace('"1.2.0"', '"1.1.0"'));
    await until('1.1.0 stopped', () => manager.get('acme.live').status === 'error');
    live = manager.get('acme.live');
    assert.match(
      live.statusReason!,
      /^VERSION_CONFLICT: .*1\.1\.0, which served, is no longer on disk and was stopped/,
    );
    assert.doesNotMatch(live.statusReason!, /keeps serving/);

    const { rmSync } = await import('node:fs');
    rmSync(v1, { recursive: true });
    await until('unloaded', () => !manager.registry.has('acme.live'));
    await until('the flow stopped the processor', () => flow.stats().processors.live!.state === 'stopped');
    assert.ok(flow.alerts().some((a) => a.code === 'PLUGIN_UNAVAILABLE' && a.plugin === 'acme.live'));
  });
});
