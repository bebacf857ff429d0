// The watcher follows a plugin folder that is replaced while the host runs (by an install, or by hand with a
// rename): the new folder's later changes, and a second replacement, are seen. Once, after an install had replaced
// a folder, the host ran 1.5.0 while the disk held 1.6.0.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createPluginManager } from '../../src/index.ts';
import { tempDir, until } from '../helpers.ts';
import { beforeLoad, makePlugin, newKey, sign, trustKey } from '../plugin-fixtures.ts';

test('a plugin folder replaced by an install, then by hand (twice), is still watched', async (t) => {
  const dir = tempDir(t);
  const key = newKey();
  const plugins = join(dir, 'plugins');
  const v1 = makePlugin(plugins, { id: 'acme.swap', version: '1.0.0' });
  await sign(v1, key);
  await beforeLoad({ dataDir: join(dir, 'data'), pluginDir: plugins }, (m) => trustKey(m, key));
  const manager = await createPluginManager({
    dataDir: join(dir, 'data'),
    pluginDir: plugins,
    logLevel: false,
    watchChanges: true,
    watchDebounceMs: 100,
  });
  t.after(() => manager.shutdown());
  assert.equal(manager.get('acme.swap').version, '1.0.0');

  const release = async (version: string) => {
    const parent = join(dir, `v${version}`);
    const folder = makePlugin(parent, { id: 'acme.swap', version });
    await sign(folder, key);
    return folder;
  };
  // an install moves the old folder aside and the new one in with renames
  await manager.install(await release('1.1.0'), { actor: 'test' });
  assert.equal(manager.get('acme.swap').version, '1.1.0');

  // the folder the install put in place is watched: a change inside it is seen
  const target = join(plugins, 'acme.swap');
  writeFileSync(
    join(target, 'manifest.json'),
    readFileSync(join(target, 'manifest.json'), 'utf8').replace('"1.1.0"', '"1.2.0"'),
  );
  await sign(target, key);
  await until('1.2.0 edited in place after the install', () => manager.get('acme.swap').version === '1.2.0');

  // replaced by hand, twice: each replacement is seen
  for (const version of ['1.3.0', '1.4.0']) {
    const next = await release(version);
    const aside = join(dir, `old-${version}`);
    mkdirSync(aside);
    renameSync(target, join(aside, 'acme.swap'));
    renameSync(next, target);
    await until(`${version} put in place by hand`, () => manager.get('acme.swap').version === version);
    rmSync(aside, { recursive: true });
  }

  // and the last one's own changes still are
  writeFileSync(
    join(target, 'manifest.json'),
    readFileSync(join(target, 'manifest.json'), 'utf8').replace('"1.4.0"', '"1.5.0"'),
  );
  await sign(target, key);
  await until('1.5.0 edited in place', () => manager.get('acme.swap').version === '1.5.0');
});
