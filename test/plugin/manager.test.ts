import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, test } from 'node:test';
import { createPluginManager, isDataBridgeError, PluginManager } from '../../src/index.ts';
import { tempDir } from '../helpers.ts';

async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isDataBridgeError(err), `expected a coded error, got ${err}`);
    assert.equal(err.code, code);
    return true;
  });
}

describe('PluginManager', () => {
  test('starts with the built-ins, each active, inline and enabled', async (t) => {
    const dir = tempDir(t);
    const manager = await createPluginManager({ dataDir: dir, pluginDir: join(dir, 'plugins'), logLevel: false });
    t.after(() => manager.shutdown());
    const builtins = manager.search({ source: 'builtin' });
    assert.ok(builtins.length >= 1);
    for (const p of builtins) {
      assert.equal(p.status, 'active', p.id);
      assert.equal(p.isolation, 'inline', p.id);
      assert.ok(p.enabled, p.id);
    }
    const gen = manager.getProcessor('GenerateFlowFile');
    assert.equal(gen.getInfo().name, 'GenerateFlowFile');
    assert.notEqual(manager.getProcessor('GenerateFlowFile'), gen, 'a fresh instance each time');
  });

  test('enabled/disabled survives a restart of the manager, and is audited', async (t) => {
    const dir = tempDir(t);
    const options = { dataDir: dir, pluginDir: join(dir, 'plugins'), logLevel: false as const };
    const first = await createPluginManager(options);
    await first.disable('builtin.GenerateFlowFile', { actor: 'test:alice' });
    await rejectsWithCode(
      Promise.resolve().then(() => first.getProcessor('GenerateFlowFile')),
      'PLUGIN_DISABLED',
    );
    await first.shutdown();

    const second = await createPluginManager(options);
    t.after(() => second.shutdown());
    const gen = second.get('builtin.GenerateFlowFile');
    assert.equal(gen.enabled, false);
    assert.equal(gen.status, 'inactive');
    assert.throws(() => second.getProcessor('GenerateFlowFile'), /disabled/);

    await second.enable('builtin.GenerateFlowFile', { actor: 'test:bob' });
    const audit = await second.store.listAudit({ target: 'builtin.GenerateFlowFile' });
    assert.deepEqual(
      audit.map((a) => [a.action, a.actor, a.result]),
      [
        ['enable', 'test:bob', 'ok'],
        ['disable', 'test:alice', 'ok'],
      ],
    );
  });

  test('bad configuration is refused with one clear problem per field', () => {
    assert.throws(
      () =>
        new PluginManager({
          pluginDir: 42 as unknown as string,
          monitorInterval: -5,
          defaultLimits: { maxMemoryMB: 0 },
          watchChange: true,
        } as never),
      (err: unknown) => {
        assert.ok(isDataBridgeError(err, 'CONFIG_INVALID'));
        const fields = (err.details as { problems: { field: string }[] }).problems.map((p) => p.field).sort();
        assert.deepEqual(fields, ['defaultLimits.maxMemoryMB', 'monitorInterval', 'pluginDir', 'watchChange']);
        assert.match(err.message, /watchChange is not a known option/);
        return true;
      },
    );
  });

  test('unknown processors and unknown plugins get their own codes', async (t) => {
    const dir = tempDir(t);
    const manager = await createPluginManager({ dataDir: dir, logLevel: false });
    t.after(() => manager.shutdown());
    assert.throws(
      () => manager.getProcessor('NoSuchThing'),
      (e: unknown) => isDataBridgeError(e, 'COMPONENT_UNKNOWN'),
    );
    await rejectsWithCode(manager.disable('acme.none'), 'PLUGIN_NOT_FOUND');
    const refused = await manager.store.listAudit({ target: 'acme.none' });
    assert.equal(refused[0]?.result, 'refused');
  });

  test('a damaged state database is a clear error, and the file is left as it was', async (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'state.db');
    writeFileSync(file, 'this is not a database at all, but it is long enough to look like one'.repeat(20));
    await rejectsWithCode(createPluginManager({ dataDir: dir, logLevel: false }), 'STORE_CORRUPT');
    const { readFileSync } = await import('node:fs');
    assert.match(readFileSync(file, 'utf8'), /^this is not a database/);
  });

  test("another program's SQLite database is refused, never reset", async (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'state.db');
    const foreign = new DatabaseSync(file);
    foreign.exec('CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL); INSERT INTO invoices VALUES (1, 9.5);');
    foreign.close();
    await rejectsWithCode(createPluginManager({ dataDir: dir, logLevel: false }), 'STORE_FOREIGN');
    const check = new DatabaseSync(file);
    assert.equal(check.prepare('SELECT total FROM invoices').get()!.total, 9.5);
    check.close();
  });

  test('a database from a newer DataBridge is refused', async (t) => {
    const dir = tempDir(t);
    await (await createPluginManager({ dataDir: dir, logLevel: false })).shutdown();
    const db = new DatabaseSync(join(dir, 'state.db'));
    db.exec('PRAGMA user_version = 999');
    db.close();
    await rejectsWithCode(createPluginManager({ dataDir: dir, logLevel: false }), 'STORE_TOO_NEW');
  });

  test('shutdown leaves nothing running and refuses later use', async (t) => {
    const dir = tempDir(t);
    const manager = await createPluginManager({ dataDir: dir, logLevel: false });
    await manager.shutdown();
    await manager.shutdown();
    assert.throws(
      () => manager.getProcessor('GenerateFlowFile'),
      (e: unknown) => isDataBridgeError(e, 'MANAGER_SHUT_DOWN'),
    );
  });
});
