/**
 * Cluster nodes through the embedding API: two plugin managers in one
 * process, each with its own folders, on one PostgreSQL database (a private
 * server, see test/pg.ts). Races, hostile bytes in the database, and the
 * changes that are not installs.
 */

import assert from 'node:assert/strict';
import { cpSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, type TestContext, test } from 'node:test';
import pg from 'pg';
import { createFlowController } from '../../src/flow/controller.ts';
import { createPluginManager, type PluginManager } from '../../src/index.ts';
import { packPlugin } from '../../src/plugin/bundle.ts';
import { type Emitted, registerSink, registerSource } from '../flow-harness.ts';
import { tempDir, until } from '../helpers.ts';
import { PG_MISSING, type PgServer, startPostgres } from '../pg.ts';
import { makePlugin, newKey, sign, trustKey, upperCode } from '../plugin-fixtures.ts';

let server: PgServer | null = null;
let databases = 0;
before(async () => {
  if (!PG_MISSING) server = await startPostgres();
});
after(() => server?.destroy());

/** Two nodes on a fresh database, with a key trusted (once, for both). */
async function cluster(t: TestContext) {
  const root = tempDir(t);
  const url = server!.createDatabase(`plugins_${++databases}`);
  const key = newKey();
  const node = async (name: string, extra: { watchChanges?: boolean } = {}) => {
    const m = await createPluginManager({
      dataDir: join(root, name, 'data'),
      pluginDir: join(root, name, 'plugins'),
      store: url,
      logLevel: false,
      heartbeatMs: 200,
      watchDebounceMs: 50,
      ...extra,
    });
    t.after(() => m.shutdown());
    return m;
  };
  const a = await node('a');
  await trustKey(a, key);
  const b = await node('b');
  const bundle = async (version: string, code = upperCode('Shout')) => {
    const dir = makePlugin(join(root, 'src', version, String(Math.random())), { id: 'acme.shout', version, code });
    await sign(dir, key);
    const file = join(root, `b-${version}-${Math.random()}.tgz`);
    await packPlugin(dir, file);
    return readFileSync(file);
  };
  return { a, b, url, bundle, node, root, key };
}

const runs = (m: PluginManager) => (m.registry.has('acme.shout') ? m.get('acme.shout') : null);

describe('cluster nodes (PostgreSQL)', { skip: PG_MISSING ?? false }, () => {
  test('two nodes racing to install the same id end with one version everywhere', async (t) => {
    const { a, b, bundle } = await cluster(t);
    const [one, two] = await Promise.allSettled([a.install(await bundle('1.1.0')), b.install(await bundle('1.2.0'))]);
    assert.ok(
      [one, two].some((r) => r.status === 'fulfilled'),
      'at least one install is accepted',
    );
    await until('both on 1.2.0', () => runs(a)?.version === '1.2.0' && runs(b)?.version === '1.2.0');
    assert.equal(a.validation('acme.shout').digest, b.validation('acme.shout').digest);
    // same version, other bytes: one of them, everywhere
    const [x, y] = await Promise.allSettled([
      a.install(await bundle('1.3.0', upperCode('Shout').replace('toUpperCase', 'toLocaleUpperCase'))),
      b.install(await bundle('1.3.0')),
    ]);
    assert.ok([x, y].some((r) => r.status === 'fulfilled'));
    await until(
      'one 1.3.0 release on both',
      () =>
        runs(a)?.version === '1.3.0' &&
        runs(b)?.version === '1.3.0' &&
        a.validation('acme.shout').digest === b.validation('acme.shout').digest,
    );
  });

  test('hostile: bytes changed in the database are refused by the node that fetches them; it keeps what it runs', async (t) => {
    const { a, b, url, bundle, node } = await cluster(t);
    await a.install(await bundle('1.0.0'));
    await until('1.0.0 on B', () => runs(b)?.status === 'active');
    // an attacker with write access to the database puts in a release signed by a key nobody trusts,
    // then garbage, and announces each
    const other = makePlugin(join(tempDir(t), 'x'), {
      id: 'acme.shout',
      version: '2.0.0',
      code: upperCode('Shout').replace('toUpperCase()', "toUpperCase() + ' pwned'"),
    });
    await sign(other, newKey());
    const file = join(tempDir(t), 'x.tgz');
    await packPlugin(other, file);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    t.after(() => client.end());
    for (const bytes of [readFileSync(file), Buffer.from('not a bundle at all')]) {
      await client.query(
        `UPDATE bundles SET version = '2.0.0', digest = 'forged', bytes = $1, origin = 'mallory' WHERE plugin_id = 'acme.shout'`,
        [bytes],
      );
      await client.query(`SELECT pg_notify('databridge_changes', $1)`, [
        JSON.stringify({ type: 'install', target: 'acme.shout', digest: 'forged', origin: 'mallory' }),
      ]);
    }
    const refused = () => b.alerts().filter((x) => x.code === 'CLUSTER_SYNC_FAILED');
    await until('B refuses both releases', () => refused().length >= 2);
    assert.equal(runs(b)?.version, '1.0.0', 'B refused the untrusted release and runs what it had');
    const alerts = refused();
    assert.equal(alerts.length, 2, JSON.stringify(alerts));
    assert.match(alerts[0]!.message, /from node mallory was not applied here: INSTALL_REFUSED/);
    assert.equal(runs(b)?.status, 'active');
    assert.equal(runs(a)?.version, '1.0.0');
    // a node starting now still starts: the refused release is an alert, not a failure to start
    const c = await node('c');
    assert.equal(runs(c), null);
    assert.ok(c.alerts().some((x) => x.code === 'CLUSTER_SYNC_FAILED' && /catching up/.test(x.message)));
  });

  test('uninstall, reload and namespace limits reach the other node; trust is shared', async (t) => {
    const { a, b, bundle } = await cluster(t);
    await a.install(await bundle('1.0.0'));
    await until('on B', () => runs(b)?.status === 'active');
    assert.ok(
      (await b.trust.list()).some((k) => k.publisher === 'acme'),
      'B sees the key A trusted',
    );
    await a.namespaces.update('acme.shout', { limits: { maxExecutionMS: 1234 } }).catch(async () => {
      await a.namespaces.create('acme.shout', 'shout', { maxExecutionMS: 1234 });
    });
    await until('B applies the limits to its sandbox', () => b.sandboxOf('acme.shout')?.limits.maxExecutionMS === 1234);
    let reloadedOnB = 0;
    b.on((e) => {
      if (e.type === 'registered' && e.pluginId === 'acme.shout') reloadedOnB++;
    });
    await a.reload('acme.shout');
    await until('B reloads too', () => reloadedOnB === 1);
    await b.uninstall('acme.shout');
    await until('gone from A', () => !a.registry.has('acme.shout'));
    // once both have beaten since, the view shows nothing left anywhere
    await until('an empty view', async () => {
      const view = await a.cluster!.view();
      return view.nodes.length === 2 && Object.keys(view.plugins).length === 0;
    });
  });

  test('a key revoked on one node stops the plugin on the other at once; its queued FlowFiles stay queued', async (t) => {
    const { a, b, bundle } = await cluster(t);
    await a.install(await bundle('1.0.0'));
    await until('on B', () => runs(b)?.status === 'active');
    const N = 40;
    const out: Emitted[] = [];
    const flow = await createFlowController({ manager: b, repository: 'memory' });
    t.after(() => flow.close());
    const inputs = Array.from({ length: N }, (_, i) => ({ content: `item ${i}`, attributes: { n: String(i) } }));
    flow.createProcessorByType(registerSource(b, inputs), { id: 'src' });
    flow.createProcessorByType('Shout', {
      id: 'shout',
      schedule: { batchSize: 1, period: '50 ms' },
      penaltyDuration: '200 ms',
    });
    flow.createProcessorByType(registerSink(b, out), { id: 'sink' });
    flow.connect({ source: 'src', relationship: 'success', destination: 'shout' });
    flow.connect({ source: 'shout', relationship: 'success', destination: 'sink' });
    await flow.startAll();
    await until('some output on B', () => out.length >= 2);

    const [key] = await a.trust.list();
    await a.trust.revokeKey(key!.keyId, 'leaked', 'ops');
    assert.equal(runs(a)?.status, 'error');
    await until('stopped on B', () => runs(b)?.status === 'error');
    assert.match(runs(b)!.statusReason!, /^KEY_REVOKED: key [0-9a-f]{16}… of acme was revoked: leaked/);
    assert.equal(b.sandboxOf('acme.shout'), undefined);
    assert.ok(b.alerts().some((x) => x.code === 'KEY_REVOKED' && x.plugin === 'acme.shout'));
    await until('both nodes audited it', async () => {
      const entries = await b.store.listAudit({ target: 'acme.shout', action: 'withdraw' });
      return entries.length === 2 && entries.some((e) => e.actor === 'ops');
    });
    await until('the processor stopped on B', () => flow.stats().processors.shout!.state === 'stopped');
    assert.ok(out.length < N, 'FlowFiles were still queued when it stopped');
    assert.equal(new Set(out.map((o) => o.attributes.n)).size, out.length, 'none delivered twice');
    assert.equal(out.length + flow.queuedCount(), N, 'every FlowFile delivered or still queued');
  });

  test('a node that was down catches up at start: installs and uninstalls it missed', async (t) => {
    const { a, b, bundle, node } = await cluster(t);
    await a.install(await bundle('1.0.0'));
    await until('on B', () => runs(b)?.status === 'active');
    await b.shutdown();
    await a.uninstall('acme.shout');
    const b2 = await node('b');
    assert.equal(b2.registry.has('acme.shout'), false, 'the uninstall it missed');
    await b2.shutdown();
    await a.install(await bundle('1.1.0'));
    const b3 = await node('b');
    assert.equal(runs(b3)?.version, '1.1.0', 'the install it missed');
    assert.equal(b3.cluster!.id, b.cluster!.id, 'the same node, by the id in its data directory');
    // a node that stopped for good is forgotten on request; a live one is not
    await b3.shutdown();
    await assert.rejects(a.cluster!.forget(a.cluster!.id), /NODE_ALIVE|is alive/);
    await until('B silent', async () =>
      (await a.cluster!.view()).nodes.some((n) => n.id === b.cluster!.id && !n.alive),
    );
    await a.cluster!.forget(b.cluster!.id);
    assert.deepEqual(
      (await a.cluster!.view()).nodes.map((n) => n.id),
      [a.cluster!.id],
    );
    await assert.rejects(a.cluster!.forget('nope'), /No cluster node/);
  });

  test('a folder put by hand into a watched node is published to the others', async (t) => {
    const { b, node, root, key } = await cluster(t);
    const c = await node('c', { watchChanges: true });
    const src = makePlugin(join(root, 'by-hand'), { id: 'acme.shout', version: '3.0.0', code: upperCode('Shout') });
    await sign(src, key);
    cpSync(src, join(root, 'c', 'plugins', 'acme.shout'), { recursive: true });
    await until('loaded on C by its watcher', () => runs(c)?.status === 'active');
    await until('published to B', () => runs(b)?.version === '3.0.0');
  });
});
