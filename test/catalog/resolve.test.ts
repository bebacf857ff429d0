import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CatalogEntry } from '../../src/catalog/client.ts';
import { isPluginId, packageName, parseSpec, pluginIdOf } from '../../src/catalog/names.ts';
import { parseNpmrc } from '../../src/catalog/npmrc.ts';
import { type InstalledPlugin, resolveSet } from '../../src/catalog/resolve.ts';
import { isDataBridgeError } from '../../src/errors.ts';
import { brokenDependents, type DependentView } from '../../src/plugin/dependents.ts';

/** A catalog in memory: id → version → dependencies. */
function catalog(data: Record<string, Record<string, Record<string, string>>>) {
  const asked: string[] = [];
  const lookup = async (id: string): Promise<CatalogEntry> => {
    asked.push(id);
    const versions = data[id];
    if (!versions) throw new Error(`no ${id}`);
    const releases = Object.entries(versions)
      .map(([version, dependencies]) => ({
        id,
        version,
        publisher: 'acme',
        description: '',
        dependencies,
        deprecated: null,
        integrity: null,
        tarball: `http://x/${id}-${version}.tgz`,
      }))
      .sort((a, b) => (a.version < b.version ? 1 : -1));
    return { id, package: packageName(id), catalog: 'http://x/', description: '', latestTag: null, releases };
  };
  return { lookup, asked };
}

const none = new Map<string, InstalledPlugin>();
const picked = (set: Awaited<ReturnType<typeof resolveSet>>) =>
  set.members.map((m) => `${m.id}@${m.version}${m.release ? '' : ' (kept)'}`);

describe('resolving a dependency set', () => {
  test('the highest version satisfying every range in the set, dependencies first', async () => {
    const { lookup } = catalog({
      'acme.app': { '1.0.0': { 'acme.lib': '^1.0.0', 'acme.util': '*' } },
      'acme.lib': { '1.0.0': {}, '1.5.0': { 'acme.util': '<2.0.0' }, '2.0.0': {} },
      'acme.util': { '1.0.0': {}, '1.9.0': {}, '2.1.0': {} },
    });
    const set = await resolveSet([{ id: 'acme.app', range: '*' }], none, lookup);
    assert.deepEqual(picked(set), ['acme.util@1.9.0', 'acme.lib@1.5.0', 'acme.app@1.0.0']);
  });

  test('an installed dependency that satisfies every range is kept; one that does not is upgraded', async () => {
    const { lookup, asked } = catalog({
      'acme.app': { '1.0.0': { 'acme.lib': '^1.2.0', 'acme.util': '^1.0.0' } },
      'acme.lib': { '1.2.0': {}, '1.8.0': {} },
      'acme.util': { '1.0.0': {}, '1.3.0': {} },
    });
    const installed = new Map<string, InstalledPlugin>([
      ['acme.util', { id: 'acme.util', version: '1.0.0', dependencies: {} }],
      ['acme.lib', { id: 'acme.lib', version: '1.1.0', dependencies: {} }],
    ]);
    const set = await resolveSet([{ id: 'acme.app', range: '*' }], installed, lookup);
    assert.deepEqual(picked(set), ['acme.lib@1.8.0', 'acme.util@1.0.0 (kept)', 'acme.app@1.0.0']);
    assert.equal(set.members.find((m) => m.id === 'acme.lib')?.installed, '1.1.0');
    assert.ok(!asked.includes('acme.util'), 'a kept plugin’s packument is not even asked for');
  });

  test('a plugin asked for by name takes the highest release, even when an installed one fits', async () => {
    const { lookup } = catalog({ 'acme.lib': { '1.0.0': {}, '1.4.0': {} } });
    const installed = new Map([['acme.lib', { id: 'acme.lib', version: '1.0.0', dependencies: {} }]]);
    assert.deepEqual(picked(await resolveSet([{ id: 'acme.lib', range: '^1' }], installed, lookup)), [
      'acme.lib@1.4.0',
    ]);
  });

  test('a newer pick that brings a tighter range moves the others; built-in dependencies are left alone', async () => {
    const { lookup } = catalog({
      'acme.a': { '1.0.0': { 'acme.b': '*', 'builtin.LogAttribute': '*' } },
      'acme.b': { '1.0.0': {}, '2.0.0': { 'acme.c': '^1.0.0' } },
      'acme.c': { '1.0.0': {}, '1.1.0': {} },
    });
    const set = await resolveSet([{ id: 'acme.a', range: '*' }], none, lookup);
    assert.deepEqual(picked(set), ['acme.c@1.1.0', 'acme.b@2.0.0', 'acme.a@1.0.0']);
  });

  test('ranges nothing satisfies: CATALOG_UNRESOLVED naming the plugin and who asked for what', async () => {
    const { lookup } = catalog({
      'acme.a': { '1.0.0': { 'acme.lib': '^1.0.0' } },
      'acme.b': { '1.0.0': { 'acme.lib': '^2.0.0' } },
      'acme.lib': { '1.0.0': {}, '2.0.0': {} },
    });
    await assert.rejects(
      resolveSet(
        [
          { id: 'acme.a', range: '*' },
          { id: 'acme.b', range: '*' },
        ],
        none,
        lookup,
      ),
      (err) =>
        isDataBridgeError(err, 'CATALOG_UNRESOLVED') &&
        /acme\.lib/.test(err.message) &&
        /\^1\.0\.0 \(acme\.a@1\.0\.0\)/.test(err.message) &&
        /\^2\.0\.0 \(acme\.b@1\.0\.0\)/.test(err.message),
    );
  });

  test('a cycle resolves, each member once', async () => {
    const { lookup } = catalog({
      'acme.a': { '1.0.0': { 'acme.b': '^1' } },
      'acme.b': { '1.0.0': { 'acme.a': '^1' } },
    });
    const set = await resolveSet([{ id: 'acme.a', range: '*' }], none, lookup);
    assert.deepEqual(set.members.map((m) => m.id).sort(), ['acme.a', 'acme.b']);
  });
});

describe('names, specs and .npmrc', () => {
  test('plugin ids and package names map both ways; other packages map to none', () => {
    assert.equal(packageName('acme.csv-tools'), '@acme/databridge-csv-tools');
    assert.equal(packageName('acme.io.s3_x'), '@acme/databridge-io.s3_x');
    for (const id of ['acme.csv-tools', 'acme.io.s3_x', 'a-b.c']) assert.equal(pluginIdOf(packageName(id)), id);
    for (const name of ['lodash', '@acme/csv-tools', '@acme/databridge-', '@ACME/databridge-x'])
      assert.equal(pluginIdOf(name), null, name);
    assert.equal(isPluginId('builtin.LogAttribute'), false);
    assert.throws(
      () => packageName('Acme.x'),
      (e) => isDataBridgeError(e, 'USAGE'),
    );
  });

  test('ID[@RANGE]: a range defaults to *, a bad id or range is USAGE', () => {
    assert.deepEqual(parseSpec('acme.base'), { id: 'acme.base', range: '*' });
    assert.deepEqual(parseSpec('acme.base@^1.2.0'), { id: 'acme.base', range: '^1.2.0' });
    for (const bad of ['acme.base@', 'acme.base@nope', 'nodots', '@acme/x', '../x@1'])
      assert.throws(
        () => parseSpec(bad),
        (e) => isDataBridgeError(e, 'USAGE'),
        bad,
      );
  });

  test('.npmrc: keys as written, quotes and comments, ${VAR} from the environment', () => {
    const text = [
      '; a comment',
      '# another',
      '@acme:registry = "http://npm.acme.test/"',
      '//npm.acme.test/:_authToken=${ACME_TOKEN}',
      'noequals',
    ].join('\n');
    assert.deepEqual(parseNpmrc(text, { ACME_TOKEN: 's3cret' }), {
      '@acme:registry': 'http://npm.acme.test/',
      '//npm.acme.test/:_authToken': 's3cret',
    });
  });
});

describe('the dependents guard', () => {
  const installed: DependentView[] = [
    { id: 'acme.report', version: '1.0.0', dependencies: { 'acme.base': '^1.2.0' } },
    { id: 'acme.dash', version: '3.0.0', dependencies: { 'acme.base': '>=1.0.0' } },
    { id: 'acme.base', version: '1.4.0', dependencies: {} },
  ];
  test('names each installed plugin whose range the new version leaves, and no other', () => {
    const found = brokenDependents('acme.base', '2.0.0', installed);
    assert.deepEqual(
      found.map((f) => [f.code, f.message]),
      [['DEPENDENT_BROKEN', 'acme.report@1.0.0 needs acme.base ^1.2.0, which 2.0.0 does not satisfy']],
    );
    assert.deepEqual(brokenDependents('acme.base', '1.9.0', installed), []);
    assert.deepEqual(brokenDependents('acme.base', '2.0.0', installed, new Set(['acme.report'])), []);
  });
});
