/**
 * A plugin folder changed by hand into something that is not a set of
 * files: a pipe where signature.dsse.json or manifest.json was (opening it
 * would wait for a writer forever), a link, or a sparse file that says it is
 * gigabytes long. Loading and validating refuse each at once with a finding,
 * the manager starts, and the other plugins load.
 */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { createPluginManager } from '../../src/index.ts';
import { hashFiles, MAX_PLUGIN_BYTES, PluginFileRefused, readPluginFileSync } from '../../src/plugin/files.ts';
import { tempDir, until } from '../helpers.ts';
import { beforeLoad, makePlugin, newKey, sign, trustKey } from '../plugin-fixtures.ts';

const mkfifo = (path: string) => execFileSync('mkfifo', [path]);

/** Two signed plugins, acme.bad and acme.good; `spoil` changes acme.bad's folder; returns the started manager. */
async function load(t: TestContext, spoil: (folder: string) => void) {
  const dir = tempDir(t);
  const dirs = { dataDir: join(dir, 'data'), pluginDir: join(dir, 'plugins') };
  const key = newKey();
  const bad = makePlugin(dirs.pluginDir, { id: 'acme.bad' });
  await sign(bad, key);
  await sign(makePlugin(dirs.pluginDir, { id: 'acme.good' }), key);
  await beforeLoad(dirs, (m) => trustKey(m, key));
  spoil(bad);
  const manager = await createPluginManager({ ...dirs, logLevel: false });
  t.after(() => manager.shutdown());
  assert.equal(manager.get('acme.good').status, 'active', 'the other plugin loads');
  return manager.get('acme.bad');
}

describe('a plugin folder that is not a set of regular files', () => {
  test('a pipe as signature.dsse.json: refused at start, the manager starts', async (t) => {
    const bad = await load(t, (folder) => {
      rmSync(join(folder, 'signature.dsse.json'));
      mkfifo(join(folder, 'signature.dsse.json'));
    });
    assert.equal(bad.status, 'error');
    assert.match(bad.statusReason ?? '', /SIGNATURE_INVALID: signature\.dsse\.json: special files .* are not allowed/);
  });

  test('a pipe as manifest.json: refused at start', async (t) => {
    const dir = tempDir(t);
    const folder = makePlugin(dir, { id: 'acme.pipe' });
    rmSync(join(folder, 'manifest.json'));
    mkfifo(join(folder, 'manifest.json'));
    const dirs = { dataDir: join(dir, 'data'), pluginDir: dir };
    const manager = await createPluginManager({ ...dirs, logLevel: false });
    t.after(() => manager.shutdown());
    const report = await manager.validate(folder);
    assert.equal(report.valid, false);
    assert.match(
      report.findings.map((f) => `${f.code}: ${f.message}`).join('\n'),
      /MANIFEST_INVALID: manifest\.json is not a regular file/,
    );
  });

  test('signature.dsse.json as a link: refused, not followed', async (t) => {
    const bad = await load(t, (folder) => {
      const elsewhere = join(folder, '..', '..', 'sig-elsewhere.json');
      writeFileSync(elsewhere, '{}');
      rmSync(join(folder, 'signature.dsse.json'));
      symlinkSync(elsewhere, join(folder, 'signature.dsse.json'));
    });
    assert.equal(bad.status, 'error');
    assert.match(bad.statusReason ?? '', /SIGNATURE_INVALID: signature\.dsse\.json: links are not allowed/);
  });

  test('a sparse file past the size bound: refused before it is read through', async (t) => {
    const bad = await load(t, (folder) => {
      writeFileSync(join(folder, 'blob.bin'), '');
      truncateSync(join(folder, 'blob.bin'), 3 * 1024 ** 3);
    });
    assert.equal(bad.status, 'error');
    assert.match(bad.statusReason ?? '', /STRUCTURE_INVALID: the plugin's files hold more than 200 MiB/);
  });

  test('the readers themselves: pipes and links refused on the descriptor, sizes bounded', async (t) => {
    const dir = tempDir(t);
    mkfifo(join(dir, 'pipe'));
    writeFileSync(join(dir, 'small'), 'x'.repeat(10));
    symlinkSync(join(dir, 'small'), join(dir, 'link'));
    const refused = (fn: () => unknown, why: RegExp) =>
      assert.throws(fn, (e: unknown) => e instanceof PluginFileRefused && why.test(e.message));
    refused(() => readPluginFileSync(join(dir, 'pipe'), 100), /special files/);
    refused(() => readPluginFileSync(join(dir, 'link'), 100), /links are not allowed/);
    refused(() => readPluginFileSync(join(dir, 'small'), 5), /larger than 5 bytes/);
    assert.equal(readPluginFileSync(join(dir, 'small'), 10), 'x'.repeat(10));
    await assert.rejects(hashFiles(dir, ['pipe']), (e: unknown) => e instanceof PluginFileRefused && e.path === 'pipe');
    writeFileSync(join(dir, 'big'), '');
    truncateSync(join(dir, 'big'), MAX_PLUGIN_BYTES + 1);
    await assert.rejects(hashFiles(dir, ['small', 'big']), /more than 200 MiB/);
  });
});

describe('the watcher', () => {
  test('sees a file changed by hand as deep as a plugin may nest', async (t) => {
    const dir = tempDir(t);
    const dirs = { dataDir: join(dir, 'data'), pluginDir: join(dir, 'plugins') };
    const key = newKey();
    // 20 folders down: past the 8 levels the watcher used to look
    const deep = `${Array.from({ length: 20 }, (_, i) => `d${i}`).join('/')}/table.txt`;
    const folder = makePlugin(dirs.pluginDir, { id: 'acme.deep', files: { [deep]: 'signed' } });
    await sign(folder, key);
    await beforeLoad(dirs, (m) => trustKey(m, key));
    const manager = await createPluginManager({ ...dirs, logLevel: false, watchChanges: true, watchDebounceMs: 50 });
    t.after(() => manager.shutdown());
    assert.equal(manager.get('acme.deep').status, 'active');
    await new Promise((r) => setTimeout(r, 500)); // the watcher's first scan
    writeFileSync(join(folder, deep), 'TAMPERED BY HAND');
    await until('the change noticed', () => manager.alerts().some((a) => a.plugin === 'acme.deep'), 20_000);
    const alert = manager.alerts().find((a) => a.plugin === 'acme.deep')!;
    assert.equal(alert.code, 'VERSION_CONFLICT');
    assert.match(alert.message, /holds 1\.0\.0 with other bytes/);
  });
});
