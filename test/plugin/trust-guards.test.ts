/**
 * The trust guards at every load and while a plugin runs, through the
 * embedding API: a folder swapped by hand for a lower version (or other
 * bytes) is refused at start, by the watcher and by reload; a revoked key or
 * release stops the plugin that runs it at once, and the FlowFiles queued
 * for it stay queued.
 */

import assert from 'node:assert/strict';
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { createFlowController, type FlowController } from '../../src/flow/controller.ts';
import { createPluginManager, isDataBridgeError, type PluginManager } from '../../src/index.ts';
import { type Emitted, registerSink, registerSource } from '../flow-harness.ts';
import { tempDir, until } from '../helpers.ts';
import { makePlugin, newKey, sign, trustKey, upperCode } from '../plugin-fixtures.ts';

type Key = ReturnType<typeof newKey>;

interface World {
  dir: string;
  dataDir: string;
  pluginDir: string;
  key: Key;
  /** A signed release of `acme.slow` (processor `Slow`) in a folder of its own. */
  release: (version: string, options?: { mark?: string; key?: Key; id?: string }) => Promise<string>;
  open: (options?: Record<string, unknown>) => Promise<PluginManager>;
}

function world(t: TestContext): World {
  const dir = tempDir(t);
  const dataDir = join(dir, 'data');
  const pluginDir = join(dir, 'plugins');
  const key = newKey();
  let n = 0;
  return {
    dir,
    dataDir,
    pluginDir,
    key,
    release: async (version, options = {}) => {
      const id = options.id ?? 'acme.slow';
      const component = id === 'acme.slow' ? 'Slow' : 'Other';
      const code = upperCode(component).replace('.toUpperCase()', `.toUpperCase() + '${options.mark ?? ''}'`);
      const folder = makePlugin(join(dir, 'releases', String(++n)), { id, version, code, processors: [component] });
      await sign(folder, options.key ?? key);
      return folder;
    },
    open: async (options = {}) => {
      const m = await createPluginManager({ dataDir, pluginDir, logLevel: false, ...options });
      t.after(() => m.shutdown());
      return m;
    },
  };
}

/** Replaces the installed folder of a plugin with another release's files, as an operator (or an attacker) would by hand. */
function swapByHand(w: World, id: string, from: string): void {
  rmSync(join(w.pluginDir, id), { recursive: true, force: true });
  cpSync(from, join(w.pluginDir, id), { recursive: true });
}

/** source (N FlowFiles) → Slow, one FlowFile per trigger → sink. */
async function slowFlow(
  t: TestContext,
  manager: PluginManager,
  n: number,
  type = 'Slow',
): Promise<{ flow: FlowController; out: Emitted[]; ids: () => string[] }> {
  const out: Emitted[] = [];
  const flow = await createFlowController({ manager, repository: 'memory' });
  t.after(() => flow.close());
  const inputs = Array.from({ length: n }, (_, i) => ({ content: `item ${i}`, attributes: { n: String(i) } }));
  flow.createProcessorByType(registerSource(manager, inputs), { id: 'src' });
  // a session its revoked sandbox cut short is rolled back and penalized: a short penalty keeps the test short
  flow.createProcessorByType(type, {
    id: 'slow',
    schedule: { batchSize: 1, period: '50 ms' },
    penaltyDuration: '200 ms',
  });
  flow.createProcessorByType(registerSink(manager, out), { id: 'sink' });
  flow.connect({ source: 'src', relationship: 'success', destination: 'slow' });
  flow.connect({ source: 'slow', relationship: 'success', destination: 'sink' });
  await flow.startAll();
  return { flow, out, ids: () => out.map((o) => o.attributes.n!) };
}

/** Every FlowFile is delivered once or still held by the flow: none lost, none twice. */
function accountedFor(flow: FlowController, out: readonly Emitted[], n: number): void {
  assert.equal(new Set(out.map((o) => o.attributes.n)).size, out.length, 'no FlowFile was delivered twice');
  assert.equal(out.length + flow.queuedCount(), n, 'every FlowFile is delivered or still queued');
}

describe('the rollback guard at every load', () => {
  test('at start, a lower version or other bytes swapped in by hand are refused: the plugin is in error saying what was found', async (t) => {
    const w = world(t);
    const first = await w.open();
    await trustKey(first, w.key);
    await first.install(await w.release('1.2.0'));
    await first.install(await w.release('1.3.0'));
    await first.shutdown();

    swapByHand(w, 'acme.slow', await w.release('1.2.0', { mark: ' old' }));
    const second = await w.open();
    const info = second.get('acme.slow');
    assert.equal(info.status, 'error');
    assert.match(info.statusReason!, /VERSION_ROLLBACK/);
    assert.match(info.statusReason!, /holds 1\.2\.0, below 1\.3\.0/);
    assert.throws(
      () => second.getProcessor('Slow'),
      (err: unknown) => isDataBridgeError(err),
    );
    assert.ok(second.alerts().some((a) => a.code === 'VERSION_ROLLBACK' && a.plugin === 'acme.slow'));
    const [audit] = await second.store.listAudit({ target: 'acme.slow', action: 'load' });
    assert.equal(audit?.result, 'refused');
    assert.deepEqual((audit!.details as { codes: string[] }).codes, ['VERSION_ROLLBACK']);
    const state = await second.store.getPluginState('acme.slow');
    assert.equal(state?.highestVersion, '1.3.0', 'the refused load left the guard where it was');
    await second.shutdown();

    // the same version as installed, other bytes (signed by the trusted key all the same)
    swapByHand(w, 'acme.slow', await w.release('1.3.0', { mark: ' twin' }));
    const third = await w.open();
    assert.equal(third.get('acme.slow').status, 'error');
    assert.match(
      third.get('acme.slow').statusReason!,
      /VERSION_CONFLICT: the plugin folder holds 1\.3\.0 with other bytes/,
    );
    assert.ok(third.alerts().some((a) => a.code === 'VERSION_CONFLICT'));
  });

  test('a forced downgrade loads again at the next start, and only with the bytes it was installed with', async (t) => {
    const w = world(t);
    const first = await w.open();
    await trustKey(first, w.key);
    const v1 = await w.release('1.0.0');
    await first.install(await w.release('2.0.0'));
    await first.install(v1, { force: true });
    await first.shutdown();

    const second = await w.open();
    assert.equal(second.get('acme.slow').status, 'active');
    assert.equal(second.get('acme.slow').version, '1.0.0');
    await second.shutdown();

    swapByHand(w, 'acme.slow', await w.release('1.0.0', { mark: ' other' }));
    const third = await w.open();
    assert.equal(third.get('acme.slow').status, 'error');
    assert.match(third.get('acme.slow').statusReason!, /VERSION_CONFLICT/);
  });

  test('a folder put in place by hand raises the guard: a lower one swapped in later is refused', async (t) => {
    const w = world(t);
    const first = await w.open();
    await trustKey(first, w.key);
    await first.shutdown();
    cpSync(await w.release('2.0.0'), join(w.pluginDir, 'acme.slow'), { recursive: true });
    const second = await w.open();
    assert.equal(second.get('acme.slow').status, 'active');
    const state = await second.store.getPluginState('acme.slow');
    assert.equal(state?.highestVersion, '2.0.0');
    assert.equal(state?.highestDigest, second.validation('acme.slow').digest);
    await second.shutdown();

    swapByHand(w, 'acme.slow', await w.release('1.9.0'));
    const third = await w.open();
    assert.equal(third.get('acme.slow').status, 'error');
    assert.match(third.get('acme.slow').statusReason!, /VERSION_ROLLBACK/);
  });

  test('under a running flow, the watcher and reload refuse a lower version swapped in; the release it replaced on disk stops, and no FlowFile is lost', async (t) => {
    const w = world(t);
    const setup = await w.open({ autoLoad: false });
    await trustKey(setup, w.key);
    await setup.shutdown();
    const manager = await w.open({ watchChanges: true, watchDebounceMs: 100 });
    const installed = await w.release('1.3.0', { mark: ' new' });
    await manager.install(installed);
    const N = 60;
    const { flow, out } = await slowFlow(t, manager, N);
    await until('some output', () => out.length >= 3);

    swapByHand(w, 'acme.slow', await w.release('1.2.0', { mark: ' old' }));
    await until('the watcher refused it', () =>
      manager.alerts().some((a) => a.code === 'VERSION_ROLLBACK' && a.plugin === 'acme.slow'),
    );
    // 1.3.0's files are gone from the folder: it could not start again, so it stops, saying what was found
    await until('the plugin stopped', () => manager.get('acme.slow').status === 'error');
    const info = manager.get('acme.slow');
    assert.equal(info.version, '1.3.0');
    assert.match(
      info.statusReason!,
      /^VERSION_ROLLBACK: the plugin folder holds 1\.2\.0, below 1\.3\.0, .*; 1\.3\.0, which served, is no longer on disk/,
    );
    const [watched] = await manager.store.listAudit({ target: 'acme.slow', action: 'reload' });
    assert.deepEqual(watched?.details, { codes: ['VERSION_ROLLBACK'] });
    const [withdrawn] = await manager.store.listAudit({ target: 'acme.slow', action: 'withdraw' });
    assert.equal(withdrawn?.actor, 'watcher');
    await until('the processor stopped', () => flow.stats().processors.slow!.state === 'stopped');
    const delivered = out.length;
    assert.ok(delivered < N);
    accountedFor(flow, out, N);

    await assert.rejects(manager.reload('acme.slow', { actor: 'ops' }), (err: unknown) => {
      assert.ok(isDataBridgeError(err, 'RELOAD_FAILED'));
      assert.match(err.message, /VERSION_ROLLBACK/);
      return true;
    });
    assert.equal(manager.get('acme.slow').status, 'error');
    const [reloaded] = await manager.store.listAudit({ target: 'acme.slow', action: 'reload' });
    assert.equal(reloaded?.actor, 'ops');
    assert.equal(reloaded?.result, 'refused');
    accountedFor(flow, out, N);

    // the operator puts the installed release back: the queue flows on, every FlowFile once, none through 1.2.0
    await manager.install(installed, { force: true });
    await until('every FlowFile through', () => out.length === N, 60_000);
    accountedFor(flow, out, N);
    assert.ok(
      out.every((o) => o.content.toString().endsWith(' new')),
      'only the installed release served',
    );
  });
});

describe('revocation takes effect on running plugins', () => {
  test('revoking the key of a running plugin stops it at once; its queued FlowFiles stay queued and flow on under a new release', async (t) => {
    const w = world(t);
    const manager = await w.open();
    await trustKey(manager, w.key);
    await manager.install(await w.release('1.0.0'));
    const events: string[] = [];
    manager.on((e) => {
      if (e.pluginId === 'acme.slow' && e.plugin?.status === 'error') events.push(e.plugin.statusReason ?? '');
    });
    const N = 80;
    const { flow, out } = await slowFlow(t, manager, N);
    await until('some output', () => out.length >= 3);

    const [key] = await manager.trust.list();
    await manager.trust.revokeKey(key!.keyId, 'leaked', 'ops');
    // at once: when the revocation returns, the plugin is stopped
    const info = manager.get('acme.slow');
    assert.equal(info.status, 'error');
    assert.match(info.statusReason!, /^KEY_REVOKED: key [0-9a-f]{16}… of acme was revoked: leaked/);
    assert.equal(manager.signatureOf('acme.slow').state, 'invalid');
    assert.equal(manager.sandboxOf('acme.slow'), undefined, 'its sandbox is gone');
    assert.ok(
      events.some((r) => /KEY_REVOKED/.test(r)),
      'a status event says so',
    );
    assert.ok(manager.alerts().some((a) => a.code === 'KEY_REVOKED' && a.plugin === 'acme.slow'));
    const [withdrawn] = await manager.store.listAudit({ target: 'acme.slow', action: 'withdraw' });
    assert.equal(withdrawn?.actor, 'ops');
    assert.deepEqual((withdrawn!.details as { codes: string[] }).codes, ['KEY_REVOKED']);

    await until('the processor stopped', () => flow.stats().processors.slow!.state === 'stopped');
    assert.ok(flow.alerts().some((a) => a.code === 'PLUGIN_UNAVAILABLE' && /KEY_REVOKED/.test(a.message)));
    const delivered = out.length;
    assert.ok(delivered < N, 'FlowFiles were still queued when it stopped');
    accountedFor(flow, out, N);
    assert.throws(() => manager.getProcessor('Slow'), /acme\.slow/);
    // it stays stopped: nothing more comes out of it
    await assert.rejects(until('more output', () => out.length > delivered, 1000));
    accountedFor(flow, out, N);

    // a release signed by a key still trusted takes the queue on: every FlowFile, once
    const other = newKey();
    await trustKey(manager, other);
    await manager.install(await w.release('1.1.0', { key: other, mark: ' v2' }));
    await until('every FlowFile through', () => out.length === N, 60_000);
    accountedFor(flow, out, N);
    assert.ok(out.slice(delivered).every((o) => o.content.toString().endsWith(' v2')));
  });

  test('revoking the release a sandbox replaced by an upgrade still runs: its task in flight commits nothing', async (t) => {
    const w = world(t);
    const manager = await w.open();
    await trustKey(manager, w.key);
    // 1.0.0 holds each task 10 s before it commits, and marks what it writes
    const slowCode = upperCode('Slow')
      .replace('.toUpperCase()', ".toUpperCase() + ' v1'")
      .replace('session.commit();', 'await new Promise((r) => setTimeout(r, 10_000));\n    session.commit();');
    const v1 = makePlugin(join(w.dir, 'releases', 'slow-v1'), { id: 'acme.slow', version: '1.0.0', code: slowCode });
    await sign(v1, w.key);
    await manager.install(v1);
    const N = 10;
    const { flow, out } = await slowFlow(t, manager, N);
    await until('a task of 1.0.0 in flight', () => (manager.sandboxOf('acme.slow')?.inFlight ?? 0) > 0);

    // the upgrade: new sessions go to 1.1.0, the old sandbox is left to finish its task
    const old = manager.sandboxOf('acme.slow')!;
    await manager.install(await w.release('1.1.0', { mark: ' v2' }));
    assert.ok(old.inFlight > 0, 'the replaced sandbox still runs its task');
    await manager.trust.revokeRelease('acme.slow', '1.0.0', 'ships a backdoor');
    const fromV1 = () => out.filter((o) => o.content.toString().endsWith(' v1')).length;
    const atRevocation = fromV1();
    await until('every FlowFile through', () => out.length === N, 60_000);
    accountedFor(flow, out, N);
    // before, the retiring sandbox committed its task seconds after the revocation had returned
    assert.equal(fromV1(), atRevocation, 'nothing of the revoked release was committed after its revocation');
    assert.equal(manager.get('acme.slow').status, 'active', '1.1.0 serves on');
  });

  test('revoking a release stops that plugin only; another keeps serving', async (t) => {
    const w = world(t);
    const manager = await w.open();
    await trustKey(manager, w.key);
    await manager.install(await w.release('1.0.0'));
    await manager.install(await w.release('1.0.0', { id: 'acme.other' }));
    const N = 40;
    const slow = await slowFlow(t, manager, N);
    await until('some output', () => slow.out.length >= 2);
    await manager.trust.revokeRelease('acme.slow', '1.0.0', 'ships a backdoor');
    assert.equal(manager.get('acme.slow').status, 'error');
    assert.match(
      manager.get('acme.slow').statusReason!,
      /^RELEASE_REVOKED: acme\.slow@1\.0\.0 was revoked: ships a backdoor/,
    );
    assert.equal(manager.get('acme.other').status, 'active');
    assert.ok(manager.alerts().some((a) => a.code === 'RELEASE_REVOKED' && a.plugin === 'acme.slow'));
    await until('the processor stopped', () => slow.flow.stats().processors.slow!.state === 'stopped');
    accountedFor(slow.flow, slow.out, N);

    const other = await slowFlow(t, manager, 5, 'Other');
    await until('the other plugin serves', () => other.out.length === 5);
    accountedFor(other.flow, other.out, 5);
    // a reload of the revoked release is refused, and it stays stopped
    await assert.rejects(manager.reload('acme.slow'), /RELEASE_REVOKED/);
    assert.equal(manager.get('acme.slow').status, 'error');
  });

  test('a revocation written by another program on the same state store (the CLI) stops the plugin too', async (t) => {
    const w = world(t);
    const manager = await w.open();
    await trustKey(manager, w.key);
    await manager.install(await w.release('1.0.0'));
    const N = 40;
    const { flow, out } = await slowFlow(t, manager, N);
    await until('some output', () => out.length >= 2);

    // what `databridge trust revoke` does: its own manager on the data directory, loading nothing
    const cli = await createPluginManager({
      dataDir: w.dataDir,
      pluginDir: w.pluginDir,
      logLevel: false,
      autoLoad: false,
    });
    const [key] = await cli.trust.list();
    await cli.trust.revokeKey(key!.keyId, 'leaked', 'cli:ops');
    await cli.shutdown();

    await until('the plugin stopped', () => manager.get('acme.slow').status === 'error');
    assert.match(manager.get('acme.slow').statusReason!, /KEY_REVOKED/);
    await until('the processor stopped', () => flow.stats().processors.slow!.state === 'stopped');
    accountedFor(flow, out, N);
    assert.ok(out.length < N);
    const [withdrawn] = await manager.store.listAudit({ target: 'acme.slow', action: 'withdraw' });
    assert.equal(withdrawn?.actor, 'trust-store');
  });
});
