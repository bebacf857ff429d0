import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { after, before, describe, type TestContext, test } from 'node:test';
import { createCatalog } from '../../src/index.ts';
import { testManager } from '../flow-harness.ts';
import { tempDir } from '../helpers.ts';
import { newKey, trustKey } from '../plugin-fixtures.ts';
import { startRegistry, suiteScope, type TestRegistry } from './registry.ts';
import { makeRelease } from './releases.ts';

const key = newKey();

describe('several catalogs, .npmrc credentials and scope registries (two Verdaccios)', () => {
  // anyone may read `open`; `closed` answers only a request carrying its token
  let open: TestRegistry;
  let closed: TestRegistry;
  const scope = suiteScope(after);
  before(async () => {
    [open, closed] = await Promise.all([
      startRegistry(scope),
      startRegistry(scope, undefined, { access: '$authenticated' }),
    ]);
    const work = tempDir(scope as never);
    for (const [registry, id, version] of [
      [open, 'acme.shared', '1.0.0'],
      [open, 'acme.open-only', '1.0.0'],
      [closed, 'acme.shared', '2.0.0'],
      [closed, 'corp.tool', '1.0.0'],
    ] as const) {
      await registry.publish((await makeRelease(work, { id, version, key })).tgz);
    }
  });

  const token = (registry: TestRegistry) => ({ [`${registry.url.replace(/^http:/, '')}:_authToken`]: registry.token });

  async function host(t: TestContext) {
    const manager = await testManager(t);
    await trustKey(manager, key, 'acme', ['acme.*', 'corp.*']);
    const installed = () => readdirSync(manager.config.pluginDir).filter((n) => !n.startsWith('.'));
    return { manager, installed };
  }

  test('catalogs are asked in order: the first that has the plugin wins, a later one answers for what it alone has', async (t) => {
    const { manager } = await host(t);
    const catalog = createCatalog(manager, { catalogs: [open.url, closed.url], npmrc: token(closed) });
    const result = await catalog.install([
      { id: 'acme.shared', range: '*' },
      { id: 'corp.tool', range: '*' },
    ]);
    assert.deepEqual(
      result.installed.map((m) => `${m.id}@${m.version} ${m.catalog === open.url ? 'open' : 'closed'}`).sort(),
      ['acme.shared@1.0.0 open', 'corp.tool@1.0.0 closed'],
      'the closed catalog’s acme.shared 2.0.0 is not taken: the open one is asked first',
    );
  });

  test('a catalog that needs credentials: CATALOG_UNAVAILABLE naming .npmrc without its token, installed with it', async (t) => {
    const { manager, installed } = await host(t);
    await assert.rejects(
      createCatalog(manager, { catalogs: [closed.url], npmrc: {} }).install([{ id: 'corp.tool', range: '*' }]),
      (err: Error & { code?: string }) =>
        err.code === 'CATALOG_UNAVAILABLE' && /refused the credentials \(see \.npmrc\)/.test(err.message),
    );
    assert.deepEqual(installed(), []);
    // the packument and the tarball both need the token
    const result = await createCatalog(manager, { catalogs: [closed.url], npmrc: token(closed) }).install([
      { id: 'corp.tool', range: '^1' },
    ]);
    assert.deepEqual(
      result.installed.map((m) => `${m.id}@${m.version}`),
      ['corp.tool@1.0.0'],
    );
    assert.deepEqual(installed(), ['corp.tool']);
  });

  test('a scope’s registry in .npmrc answers for its plugins, whatever the catalogs say', async (t) => {
    const { manager } = await host(t);
    const catalog = createCatalog(manager, {
      catalogs: [open.url],
      npmrc: { '@corp:registry': closed.url, ...token(closed) },
    });
    const result = await catalog.install([
      { id: 'corp.tool', range: '*' },
      { id: 'acme.open-only', range: '*' },
    ]);
    assert.deepEqual(result.installed.map((m) => `${m.id} ${m.catalog === open.url ? 'open' : 'closed'}`).sort(), [
      'acme.open-only open',
      'corp.tool closed',
    ]);
  });
});
