import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { isDataBridgeError, openSqliteStore } from '../../src/index.ts';
import { tempDir } from '../helpers.ts';

describe('SQLite state store', () => {
  test('plugin state upserts keep fields the patch leaves out', async (t) => {
    const store = await openSqliteStore({ file: join(tempDir(t), 'state.db') });
    t.after(() => store.close());
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
    const store = await openSqliteStore({ file: join(tempDir(t), 'state.db') });
    t.after(() => store.close());
    await store.recordInstall({ pluginId: 'acme.x', version: '1.0.0', digest: 'd1', action: 'install', actor: 'cli' });
    await store.recordInstall({ pluginId: 'acme.x', version: '1.1.0', digest: 'd2', action: 'upgrade', actor: 'api' });
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
    const store = await openSqliteStore({ file: join(tempDir(t), 'state.db') });
    t.after(() => store.close());
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

  test('the state survives closing and reopening the file', async (t) => {
    const file = join(tempDir(t), 'state.db');
    const a = await openSqliteStore({ file });
    await a.savePluginState('acme.keep', { enabled: false });
    await a.close();
    const b = await openSqliteStore({ file });
    t.after(() => b.close());
    assert.equal((await b.getPluginState('acme.keep'))?.enabled, false);
  });
});
