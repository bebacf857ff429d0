import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli, tempDir } from '../helpers.ts';
import { beforeLoad, newKey, trustKey } from '../plugin-fixtures.ts';
import { startRegistry, suiteScope, type TestRegistry } from './registry.ts';
import { makeRelease } from './releases.ts';

const key = newKey();

describe('plugin catalog: install by name from a real registry (Verdaccio)', () => {
  let registry: TestRegistry;
  let work: string;

  // one registry for the file, stopped after its last test
  const scope = suiteScope(after);
  before(async () => {
    registry = await startRegistry(scope);
    work = tempDir(scope as never);
    for (const spec of [
      { id: 'acme.base', version: '1.0.0' },
      { id: 'acme.base', version: '1.4.0' },
      { id: 'acme.base', version: '2.0.0' },
      { id: 'acme.report', version: '1.0.0', dependencies: { 'acme.base': '^1.2.0' } },
      { id: 'acme.fmt', version: '1.0.0' },
      { id: 'acme.dash', version: '1.0.0', dependencies: { 'acme.report': '^1.0.0', 'acme.fmt': '^1.0.0' } },
    ]) {
      await registry.publish((await makeRelease(work, { ...spec, key })).tgz);
    }
  });

  async function host(t: Parameters<Parameters<typeof test>[1]>[0]) {
    const dir = tempDir(t);
    const dirs = { dataDir: join(dir, 'data'), pluginDir: join(dir, 'plugins') };
    await beforeLoad(dirs, (m) => trustKey(m, key));
    const local = ['--data-dir', dirs.dataDir, '--plugin-dir', dirs.pluginDir];
    return { dir, dirs, local, state: [...local, '--catalog', registry.url] };
  }

  test('install by range takes the highest matching release, verified; dependencies come with it', async (t) => {
    const { state, local, dirs } = await host(t);
    const r = await runCli(['plugin', 'install', 'acme.report@^1', '--json', ...state]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const out = JSON.parse(r.stdout) as { installed: { id: string; version: string; signer: { publisher: string } }[] };
    assert.deepEqual(
      out.installed.map((m) => `${m.id}@${m.version}`),
      ['acme.base@1.4.0', 'acme.report@1.0.0'],
    );
    assert.equal(out.installed[0]!.signer.publisher, 'acme');
    const list = await runCli(['plugin', 'list', '--json', ...local]);
    const plugins = JSON.parse(list.stdout) as { id: string; version: string; status: string }[];
    assert.equal(plugins.find((p) => p.id === 'acme.report')?.status, 'active');
    assert.ok(existsSync(join(dirs.pluginDir, 'acme.base', 'package.json')), 'the package.json is part of the release');
  });
});
