// One suite, run against both backends of the state store: SQLite files and
// a real PostgreSQL server (private to this file, see test/pg.ts).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, type TestContext, test } from 'node:test';
import { isDataBridgeError, openSqliteStore } from '../../src/index.ts';
import { openPostgresStore } from '../../src/store/postgres.ts';
import type { StateStore } from '../../src/store/types.ts';
import { tempDir, until } from '../helpers.ts';
import { PG_MISSING, type PgServer, startPostgres } from '../pg.ts';

let pg: PgServer | null = null;
let databases = 0;
before(async () => {
  if (!PG_MISSING) pg = await startPostgres();
});
after(() => pg?.destroy());

interface Backend {
  name: string;
  skip: string | false;
  /** A fresh, empty store location: a file, or a database. */
  fresh(t: TestContext): string;
  open(location: string): Promise<StateStore>;
}

const BACKENDS: Backend[] = [
  {
    name: 'SQLite',
    skip: false,
    fresh: (t) => join(tempDir(t), 'state.db'),
    open: (file) => openSqliteStore({ file }),
  },
  {
    name: 'PostgreSQL',
    skip: PG_MISSING ?? false,
    fresh: () => pg!.createDatabase(`store_${++databases}`),
    open: (url) => openPostgresStore({ url }),
  },
];

for (const backend of BACKENDS)
  describe(`${backend.name} state store`, { skip: backend.skip }, () => {
    const openStore = async (t: TestContext) => {
      const store = await backend.open(backend.fresh(t));
      t.after(() => store.close());
      return store;
    };
    test('plugin state upserts keep fields the patch leaves out', async (t) => {
      const store = await openStore(t);
      await store.savePluginState('acme.x', {
        enabled: false,
        version: '1.0.0',
        highestVersion: '1.0.0',
        highestDigest: 'aa',
      });
      const next = await store.savePluginState('acme.x', { version: '1.1.0' });
      assert.equal(next.enabled, false);
      assert.equal(next.highestDigest, 'aa');
      assert.equal((await store.getPluginState('acme.x'))?.version, '1.1.0');
      assert.deepEqual(
        (await store.listPluginStates()).map((s) => s.id),
        ['acme.x'],
      );
      await store.deletePluginState('acme.x');
      assert.equal(await store.getPluginState('acme.x'), undefined);
    });

    test('install history and the audit log keep their order and details', async (t) => {
      const store = await openStore(t);
      await store.recordInstall({
        pluginId: 'acme.x',
        version: '1.0.0',
        digest: 'd1',
        action: 'install',
        actor: 'cli',
      });
      await store.recordInstall({
        pluginId: 'acme.x',
        version: '1.1.0',
        digest: 'd2',
        action: 'upgrade',
        actor: 'api',
      });
      assert.deepEqual(
        (await store.installHistory('acme.x')).map((r) => r.version),
        ['1.0.0', '1.1.0'],
      );
      for (let i = 0; i < 5; i++) {
        await store.appendAudit({ actor: 'a', action: 'enable', target: `p${i % 2}`, result: 'ok', details: { i } });
      }
      const latest = await store.listAudit({ limit: 2 });
      assert.deepEqual(
        latest.map((e) => (e.details as { i: number }).i),
        [4, 3],
      );
      const page = await store.listAudit({ target: 'p0', before: latest[1]!.seq });
      assert.deepEqual(
        page.map((e) => (e.details as { i: number }).i),
        [2, 0],
      );
    });

    test('namespaces: create, list, update limits, delete; duplicates and unknown names are coded', async (t) => {
      const store = await openStore(t);
      await store.createNamespace('etl', 'ETL jobs', { maxMemoryMB: 128 });
      await assert.rejects(store.createNamespace('etl', 'again', {}), (e: unknown) =>
        isDataBridgeError(e, 'NAMESPACE_EXISTS'),
      );
      const updated = await store.updateNamespace('etl', { limits: { maxMemoryMB: 64, maxExecutionMS: 1000 } });
      assert.deepEqual(updated.limits, { maxMemoryMB: 64, maxExecutionMS: 1000 });
      assert.equal(updated.displayName, 'ETL jobs');
      await assert.rejects(store.updateNamespace('nope', {}), (e: unknown) =>
        isDataBridgeError(e, 'NAMESPACE_NOT_FOUND'),
      );
      assert.deepEqual(
        (await store.listNamespaces()).map((n) => n.name),
        ['etl'],
      );
      assert.equal(await store.deleteNamespace('etl'), true);
      assert.equal(await store.deleteNamespace('etl'), false);
    });

    test('trusted keys, revocations and the scan cache', async (t) => {
      const store = await openStore(t);
      await store.addTrustedKey({ keyId: 'k1', publisher: 'acme', publicKey: 'PEM', namespaces: ['acme.*'] });
      await store.addTrustedKey({ keyId: 'k1', publisher: 'acme', publicKey: 'PEM', namespaces: ['acme.*', 'x'] });
      assert.deepEqual((await store.getTrustedKey('k1'))?.namespaces, ['acme.*', 'x']);
      assert.equal(await store.revokeKey('k1', 'leaked'), true);
      assert.equal(await store.revokeKey('nope', 'x'), false);
      const key = (await store.listTrustedKeys())[0]!;
      assert.equal(key.revokedReason, 'leaked');
      assert.ok(key.revokedAt);
      await store.revokeRelease('acme.x', '1.0.0', 'bad');
      assert.deepEqual(
        (await store.listRevokedReleases()).map((r) => [r.pluginId, r.version, r.reason]),
        [['acme.x', '1.0.0', 'bad']],
      );
      await store.saveScanResult('abc', 'components/2', { processors: { A: { name: 'A' } } });
      assert.deepEqual(await store.getScanResult('abc', 'components/2'), { processors: { A: { name: 'A' } } });
      assert.equal(await store.getScanResult('abc', 'other'), undefined);
      await store.ping();
    });

    test('API tokens: created once by name, found by the hash, listed without it, touched, deleted', async (t) => {
      const store = await openStore(t);
      const made = await store.createToken({ name: 'dash', role: 'viewer', hash: 'h1', createdBy: 'token:admin' });
      assert.equal(made.lastUsedAt, null);
      await assert.rejects(
        store.createToken({ name: 'dash', role: 'admin', hash: 'h2', createdBy: 'cli' }),
        (e: unknown) => isDataBridgeError(e, 'TOKEN_EXISTS'),
      );
      await store.createToken({ name: 'oncall', role: 'operator', hash: 'h3', createdBy: 'cli:bob' });
      const found = await store.findTokenByHash('h1');
      assert.equal(found?.name, 'dash');
      assert.equal(found?.role, 'viewer');
      assert.equal(found?.hash, 'h1');
      assert.equal(await store.findTokenByHash('h2'), undefined);
      const list = await store.listTokens();
      assert.deepEqual(
        list.map((k) => [k.name, k.role, k.createdBy]),
        [
          ['dash', 'viewer', 'token:admin'],
          ['oncall', 'operator', 'cli:bob'],
        ],
      );
      assert.ok(list.every((k) => !('hash' in k)));
      await store.touchToken('dash', '2026-01-02T03:04:05.000Z');
      assert.equal((await store.findTokenByHash('h1'))?.lastUsedAt, '2026-01-02T03:04:05.000Z');
      assert.equal(await store.deleteToken('dash'), true);
      assert.equal(await store.deleteToken('dash'), false);
      assert.equal(await store.findTokenByHash('h1'), undefined);
    });

    test('the state survives closing and reopening the file', async (t) => {
      const location = backend.fresh(t);
      const a = await backend.open(location);
      await a.savePluginState('acme.keep', { enabled: false });
      await a.close();
      const b = await backend.open(location);
      t.after(() => b.close());
      assert.equal((await b.getPluginState('acme.keep'))?.enabled, false);
    });
  });

describe('PostgreSQL: what a cluster shares', { skip: PG_MISSING ?? false }, () => {
  test('a bundle is published with its notification; a lower version racing a higher one is not accepted', async (t) => {
    const url = pg!.createDatabase(`cluster_${++databases}`);
    const a = await openPostgresStore({ url });
    const b = await openPostgresStore({ url });
    t.after(async () => {
      await a.close();
      await b.close();
    });
    const events: unknown[] = [];
    const states: boolean[] = [];
    await b.cluster!.listen(
      (e) => events.push(e),
      (up) => states.push(up),
    );
    const bytes = Buffer.from('bundle bytes');
    const [one, two] = await Promise.all([
      a.cluster!.publishBundle({ pluginId: 'acme.x', version: '1.1.0', digest: 'd11', bytes, origin: 'a' }),
      a.cluster!.publishBundle({ pluginId: 'acme.x', version: '1.2.0', digest: 'd12', bytes, origin: 'b' }),
    ]);
    // whichever came first, the higher version is what stays
    assert.equal((await b.cluster!.getBundle('acme.x'))!.version, '1.2.0');
    assert.ok(two.accepted);
    assert.equal(one.accepted, one.current.version === '1.1.0');
    const late = await a.cluster!.publishBundle({
      pluginId: 'acme.x',
      version: '1.0.0',
      digest: 'd1',
      bytes,
      origin: 'a',
    });
    assert.equal(late.accepted, false);
    assert.equal(late.current.digest, 'd12');
    assert.deepEqual((await b.cluster!.getBundle('acme.x'))!.bytes, bytes);
    await a.cluster!.removeBundle('acme.x', 'a');
    await until('the notifications', () => events.length >= 3);
    assert.deepEqual(states, [true]);
    assert.deepEqual(
      events.map((e) => (e as { type: string }).type),
      [...events.slice(0, -1).map(() => 'install'), 'uninstall'],
    );
    assert.deepEqual(await b.cluster!.listBundles(), []);
  });

  test('a server that goes away: calls fail as STORE_UNAVAILABLE, the listener says so and comes back with the server', async (t) => {
    const url = pg!.createDatabase(`restart_${++databases}`);
    const store = await openPostgresStore({ url });
    t.after(() => store.close());
    await store.savePluginState('acme.keep', { enabled: false });
    const states: boolean[] = [];
    const events: unknown[] = [];
    await store.cluster!.listen(
      (e) => events.push(e),
      (up) => states.push(up),
    );
    pg!.stop();
    try {
      await assert.rejects(store.getPluginState('acme.keep'), (e: unknown) =>
        isDataBridgeError(e, 'STORE_UNAVAILABLE'),
      );
      await assert.rejects(store.ping(), /unavailable/);
      await until('the listener saw it go', () => states.includes(false));
    } finally {
      pg!.start();
    }
    await until('the listener back', () => states.at(-1) === true, 20_000);
    assert.equal((await store.getPluginState('acme.keep'))?.enabled, false, 'nothing lost');
    await store.cluster!.notify({ type: 'reload', target: 'acme.keep', origin: 'a' });
    await until('a notification after the restart', () => events.length === 1);
  });

  test('heartbeats list the nodes with what each runs', async (t) => {
    const store = await openPostgresStore({ url: pg!.createDatabase(`nodes_${++databases}`) });
    t.after(() => store.close());
    const now = new Date().toISOString();
    const plugins = { 'acme.x': { version: '1.0.0', status: 'active', enabled: true, digest: 'd' } };
    await store.cluster!.heartbeat({
      id: 'n1',
      address: 'http://a',
      version: '0.1.0',
      startedAt: now,
      heartbeatAt: now,
      plugins,
    });
    await store.cluster!.heartbeat({
      id: 'n1',
      address: 'http://a',
      version: '0.1.0',
      startedAt: now,
      heartbeatAt: now,
      plugins: {},
    });
    await store.cluster!.heartbeat({
      id: 'n2',
      address: null,
      version: '0.1.0',
      startedAt: now,
      heartbeatAt: now,
      plugins,
    });
    const nodes = await store.cluster!.listNodes();
    assert.deepEqual(
      nodes.map((n) => [n.id, Object.keys(n.plugins)]),
      [
        ['n1', []],
        ['n2', ['acme.x']],
      ],
    );
    await store.cluster!.removeNode('n2');
    assert.equal((await store.cluster!.listNodes()).length, 1);
  });
});
