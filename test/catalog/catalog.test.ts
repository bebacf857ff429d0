import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, type TestContext, test } from 'node:test';
import { readManifest } from '../../src/plugin/manifest.ts';
import { runCli, tempDir } from '../helpers.ts';
import { beforeLoad, makePlugin, newKey, trustKey } from '../plugin-fixtures.ts';
import { packageJsonIn, startRegistry, suiteScope, type TestRegistry } from './registry.ts';
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
    const specs: { id: string; version: string; dependencies?: Record<string, string> }[] = [
      { id: 'acme.base', version: '1.0.0' },
      { id: 'acme.base', version: '1.4.0' },
      { id: 'acme.base', version: '2.0.0' },
      { id: 'acme.report', version: '1.0.0', dependencies: { 'acme.base': '^1.2.0' } },
      { id: 'acme.fmt', version: '1.0.0' },
      { id: 'acme.dash', version: '1.0.0', dependencies: { 'acme.report': '^1.0.0', 'acme.fmt': '^1.0.0' } },
      { id: 'acme.solo', version: '1.0.0' },
    ];
    for (const spec of specs) {
      await registry.publish((await makeRelease(work, { ...spec, key })).tgz);
    }
    // a set with one member whose files are not what was signed, and one with an unsigned member
    await registry.publish((await makeRelease(work, { id: 'acme.tampered', version: '1.0.0', key, tamper: true })).tgz);
    await registry.publish((await makeRelease(work, { id: 'acme.unsigned', version: '1.0.0' })).tgz);
    for (const [id, dep] of [
      ['acme.uses-tampered', 'acme.tampered'],
      ['acme.uses-unsigned', 'acme.unsigned'],
    ] as const) {
      const deps = { 'acme.fmt': '^1.0.0', [dep]: '^1.0.0' };
      await registry.publish((await makeRelease(work, { id, version: '1.0.0', key, dependencies: deps })).tgz);
    }
  });

  // a catalog whose packument claims other bytes than its tarball holds
  before(async () => {
    const served = await makeRelease(work, { id: 'acme.swapped', version: '1.0.0', key });
    const claimed = await makeRelease(work, { id: 'acme.swapped', version: '1.0.1', key });
    const other = `sha512-${createHash('sha512').update(claimed.tgz).digest('base64')}`;
    await registry.publishAs(served.tgz, packageJsonIn(served.tgz), other);
  });

  // a catalog serving a release's bytes under a higher version's name (its integrity over those bytes, as a registry that lies would publish it)
  before(async () => {
    const old = await makeRelease(work, { id: 'acme.relabelled', version: '1.0.0', key });
    await registry.publishAs(old.tgz, { ...packageJsonIn(old.tgz), version: '1.1.0' });
    const deps = { 'acme.fmt': '^1.0.0', 'acme.relabelled': '^1.1.0' };
    await registry.publish(
      (await makeRelease(work, { id: 'acme.uses-relabelled', version: '1.0.0', key, dependencies: deps })).tgz,
    );
  });

  // a set whose members provide the same processor
  before(async () => {
    for (const id of ['acme.dup-a', 'acme.dup-b'])
      await registry.publish((await makeRelease(work, { id, version: '1.0.0', key, processors: ['Dup'] })).tgz);
    const deps = { 'acme.base': '^1.4.0', 'acme.dup-a': '^1.0.0', 'acme.dup-b': '^1.0.0' };
    await registry.publish(
      (await makeRelease(work, { id: 'acme.dup-app', version: '1.0.0', key, dependencies: deps })).tgz,
    );
  });

  const installedIds = (dir: string) =>
    existsSync(dir)
      ? readdirSync(dir)
          .filter((n) => !n.startsWith('.'))
          .sort()
      : [];

  async function host(t: TestContext) {
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

  test('a dependency set installs together, dependencies first; an installed dependency that fits is kept', async (t) => {
    const { state } = await host(t);
    const first = await runCli(['plugin', 'install', 'acme.base@~1.4.0', '--json', ...state]);
    assert.equal(first.code, 0, first.stderr + first.stdout);
    const r = await runCli(['plugin', 'install', 'acme.dash', '--json', ...state]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const out = JSON.parse(r.stdout) as { installed: { id: string }[]; kept: { id: string; version: string }[] };
    const order = out.installed.map((m) => m.id);
    assert.deepEqual([...order].sort(), ['acme.dash', 'acme.fmt', 'acme.report']);
    assert.equal(order.at(-1), 'acme.dash', 'the dependent last');
    assert.deepEqual(out.kept, [{ id: 'acme.base', version: '1.4.0' }]);
  });

  for (const bad of ['tampered', 'unsigned'] as const) {
    test(`one member ${bad}: the whole set is refused and nothing is installed`, async (t) => {
      const { state, dirs } = await host(t);
      const r = await runCli(['plugin', 'install', `acme.uses-${bad}`, ...state]);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, bad === 'tampered' ? /CHECKSUM_MISMATCH/ : /SIGNATURE_MISSING|PUBLISHER_UNTRUSTED/);
      assert.match(r.stderr, new RegExp(`acme\\.${bad}@1\\.0\\.0`), 'the finding names the member');
      assert.deepEqual(installedIds(dirs.pluginDir), [], 'not even the sound members (acme.fmt)');
    });
  }

  test('two members of a set providing one processor: refused before anything moves, an installed member untouched', async (t) => {
    const { state, local, dirs } = await host(t);
    assert.equal((await runCli(['plugin', 'install', 'acme.base@1.0.0', ...state])).code, 0);
    const r = await runCli(['plugin', 'install', 'acme.dup-app', ...state]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(
      r.stderr,
      /COMPONENT_CONFLICT.*acme\.dup-b@1\.0\.0: "Dup" is also provided by acme\.dup-a, in the same set/,
    );
    assert.deepEqual(installedIds(dirs.pluginDir), ['acme.base']);
    const list = JSON.parse((await runCli(['plugin', 'list', '--json', '--source', 'external', ...local])).stdout);
    assert.deepEqual(
      (list as { id: string; version: string }[]).map((p) => `${p.id}@${p.version}`),
      ['acme.base@1.0.0'],
    );
  });

  test('a catalog serving a lower version than the one installed: VERSION_ROLLBACK, nothing changed', async (t) => {
    const { state, local, dir, dirs } = await host(t);
    const newer = await makeRelease(dir, { id: 'acme.solo', version: '2.0.0', key });
    const file = join(dir, 'solo-2.tgz');
    writeFileSync(file, newer.tgz);
    const localInstall = await runCli(['plugin', 'install', file, ...local]);
    assert.equal(localInstall.code, 0, localInstall.stderr);
    const r = await runCli(['plugin', 'install', 'acme.solo', ...state]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /VERSION_ROLLBACK/);
    assert.equal(readManifest(join(dirs.pluginDir, 'acme.solo')).manifest?.version, '2.0.0');
  });

  test('outdated lists newer releases; update refuses to break a dependent’s range unless forced', async (t) => {
    const { state } = await host(t);
    assert.equal((await runCli(['plugin', 'install', 'acme.base@1.0.0', ...state])).code, 0);
    const outdated = await runCli(['plugin', 'outdated', '--json', ...state]);
    assert.equal(outdated.code, 0, outdated.stderr);
    assert.deepEqual(JSON.parse(outdated.stdout), [
      { id: 'acme.base', installed: '1.0.0', latest: '2.0.0', catalog: registry.url },
    ]);
    // acme.report needs acme.base ^1.2.0: the set upgrades base to 1.4.0 with it
    const report = await runCli(['plugin', 'install', 'acme.report', '--json', ...state]);
    assert.equal(report.code, 0, report.stderr + report.stdout);
    assert.deepEqual(
      (JSON.parse(report.stdout) as { installed: { id: string; version: string; previous: string }[] }).installed.map(
        (m) => `${m.id}@${m.version}<-${m.previous}`,
      ),
      ['acme.base@1.4.0<-1.0.0', 'acme.report@1.0.0<-null'],
    );
    const refused = await runCli(['plugin', 'update', 'acme.base', ...state]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /DEPENDENT_BROKEN.*acme\.report@1\.0\.0 needs acme\.base \^1\.2\.0/);
    assert.match(refused.stderr, /INSTALL_CONFLICT/);
    const forced = await runCli(['plugin', 'update', 'acme.base', '--force', '--json', ...state]);
    assert.equal(forced.code, 0, forced.stderr + forced.stdout);
    assert.equal((JSON.parse(forced.stdout) as { installed: { version: string }[] }).installed[0]!.version, '2.0.0');
    const none = await runCli(['plugin', 'outdated', ...state]);
    assert.match(none.stdout, /every plugin is up to date/);
  });

  test('a local install that would break an installed dependent’s range is refused naming it, unless forced', async (t) => {
    const { state, local, dir } = await host(t);
    assert.equal((await runCli(['plugin', 'install', 'acme.report', ...state])).code, 0);
    const file = join(dir, 'base-2.tgz');
    writeFileSync(file, (await makeRelease(dir, { id: 'acme.base', version: '2.0.0', key })).tgz);
    const refused = await runCli(['plugin', 'install', file, '--json', ...local]);
    assert.equal(refused.code, 1);
    const error = (
      JSON.parse(refused.stdout) as {
        error: { code: string; details: { findings: { code: string; message: string }[] } };
      }
    ).error;
    assert.equal(error.code, 'INSTALL_CONFLICT');
    assert.deepEqual(
      error.details.findings.map((f) => f.code),
      ['DEPENDENT_BROKEN'],
    );
    assert.match(error.details.findings[0]!.message, /acme\.report/);
    const forced = await runCli(['plugin', 'install', file, '--force', ...local]);
    assert.equal(forced.code, 0, forced.stderr);
  });

  test('a tarball that is not the one the catalog published: CHECKSUM_MISMATCH, nothing installed', async (t) => {
    const { state, dirs } = await host(t);
    const r = await runCli(['plugin', 'install', 'acme.swapped', ...state]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /CHECKSUM_MISMATCH: acme\.swapped@1\.0\.0.*does not match the integrity it published/);
    assert.match(r.stderr, /error INSTALL_REFUSED/);
    assert.deepEqual(installedIds(dirs.pluginDir), []);
  });

  for (const asked of ['acme.relabelled', 'acme.uses-relabelled']) {
    test(`a release whose bytes are another version's (${asked === 'acme.relabelled' ? 'alone' : 'in a set'}): MANIFEST_INVALID, nothing installed`, async (t) => {
      const { state, dirs } = await host(t);
      const r = await runCli(['plugin', 'install', asked, ...state]);
      assert.equal(r.code, 1, r.stdout);
      assert.match(
        r.stderr,
        /MANIFEST_INVALID manifest\.json: acme\.relabelled@1\.1\.0: the bundle's manifest says acme\.relabelled@1\.0\.0/,
      );
      assert.deepEqual(installedIds(dirs.pluginDir), []);
    });
  }

  test('the catalogs may come from the configuration file; the environment and the flag win over it', async (t) => {
    const { dir, local } = await host(t);
    writeFileSync(join(dir, 'databridge.json'), JSON.stringify({ catalogs: [registry.url] }));
    const fromFile = await runCli(['plugin', 'search', 'report', '--json', ...local], { cwd: dir });
    assert.equal(fromFile.code, 0, fromFile.stderr);
    assert.deepEqual(
      (JSON.parse(fromFile.stdout) as { id: string }[]).map((h) => h.id),
      ['acme.report'],
    );
    const down = 'http://127.0.0.1:9/';
    for (const [args, env] of [
      [['--catalog', down], {}],
      [[], { DATABRIDGE_CATALOG: down }],
    ] as const) {
      const r = await runCli(['plugin', 'search', 'report', ...local, ...args], { cwd: dir, env });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /CATALOG_UNAVAILABLE: The catalog http:\/\/127\.0\.0\.1:9\//);
    }
  });

  test('what a catalog writes is shown, never obeyed: escapes and bidi overrides reach the terminal as text', async (t) => {
    const painted = await makeRelease(work, { id: 'acme.painted', version: '1.0.0', key });
    const pkg = packageJsonIn(painted.tgz);
    await registry.publishAs(painted.tgz, {
      ...pkg,
      description:
        'plain\x1b[2J\x1b]0;pwned\x07\r\x1b[32mverified: signed by acme\x1b[0m \u202egnp.exe\nacme.evil  9.9.9  acme  fake row\u2028x',
    });
    const { local } = await host(t);
    const r = await runCli(['plugin', 'search', 'painted', ...local, '--catalog', registry.url]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /[\x1b\x07\r\u202e]/);
    assert.match(r.stdout, /plain\\x1b\[2J\\x1b\]0;pwned\\x07\\x0d\\x1b\[32mverified/);
    assert.match(r.stdout, /\\u202egnp\.exe/);
    // a line break in a field starts no line of its own
    assert.doesNotMatch(r.stdout, /^acme\.evil/m);
    assert.match(r.stdout, /gnp\.exe\\x0aacme\.evil {2}9\.9\.9 {2}acme {2}fake row\\u2028x/);
    const info = await runCli(['plugin', 'info', 'acme.painted', ...local, '--catalog', registry.url]);
    assert.equal(info.code, 0, info.stderr);
    assert.doesNotMatch(info.stdout, /^acme\.evil/m);
    const json = await runCli(['plugin', 'search', 'painted', '--json', ...local, '--catalog', registry.url]);
    assert.doesNotMatch(json.stdout, /[\u202e\u2028]/);
    assert.match((JSON.parse(json.stdout) as { description: string }[])[0]!.description, /\u202egnp\.exe\nacme\.evil/);
  });

  test('a catalog that is down: CATALOG_UNAVAILABLE, nothing changed', async (t) => {
    const { local, dirs } = await host(t);
    const down = ['--catalog', 'http://127.0.0.1:9/'];
    for (const args of [
      ['install', 'acme.base'],
      ['search', 'base'],
      ['info', 'acme.base'],
    ]) {
      const r = await runCli(['plugin', ...args, ...local, ...down]);
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.stderr, /error CATALOG_UNAVAILABLE: The catalog http:\/\/127\.0\.0\.1:9\/ did not answer/);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
    assert.deepEqual(installedIds(dirs.pluginDir), []);
  });

  test('an unknown id, an unsatisfiable range and a bad spec are clear', async (t) => {
    const { state } = await host(t);
    const missing = await runCli(['plugin', 'install', 'acme.nothing', ...state]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /CATALOG_PLUGIN_NOT_FOUND/);
    const range = await runCli(['plugin', 'install', 'acme.base@^9', ...state]);
    assert.equal(range.code, 1);
    assert.match(range.stderr, /CATALOG_UNRESOLVED.*\^9/);
    const bad = await runCli(['plugin', 'install', 'acme.base@not-a-range', ...state]);
    assert.equal(bad.code, 2);
    // a bundle name that is not there is a missing file, not a plugin id for the catalogs
    const file = await runCli(['plugin', 'install', 'acme.base.tgz', ...state]);
    assert.equal(file.code, 2);
    assert.match(file.stderr, /USAGE: acme\.base\.tgz does not exist/);
  });

  test('an author packs with --npm and publishes with npm publish; an operator finds, inspects and installs it', async (t) => {
    const { dir, state, dirs } = await host(t);
    const author = makePlugin(join(dir, 'src'), {
      id: 'acme.tutorial-csv',
      version: '0.3.0',
      manifest: { description: 'Reads CSV rows into FlowFiles' },
    });
    const keyFile = join(dir, 'acme.key');
    writeFileSync(keyFile, key.privateKeyPem);
    const out = join(dir, 'release.tgz');
    const pack = await runCli(['plugin', 'pack', author, '--npm', '--key', keyFile, '-o', out, '--json']);
    assert.equal(pack.code, 0, pack.stderr);
    assert.equal(packageJsonIn(readFileSync(out)).name, '@acme/databridge-tutorial-csv');

    const publish = spawnSync('npm', ['publish', out, '--registry', registry.url], {
      env: { ...process.env, NPM_CONFIG_USERCONFIG: registry.npmrc },
      encoding: 'utf8',
    });
    assert.equal(publish.status, 0, publish.stderr);

    const search = await runCli(['plugin', 'search', 'csv', '--json', ...state]);
    assert.equal(search.code, 0, search.stderr);
    assert.deepEqual(
      (JSON.parse(search.stdout) as { id: string; version: string }[]).map((h) => `${h.id}@${h.version}`),
      ['acme.tutorial-csv@0.3.0'],
    );
    const info = await runCli(['plugin', 'info', 'acme.tutorial-csv', ...state]);
    assert.equal(info.code, 0, info.stderr);
    assert.match(info.stdout, /0\.3\.0 verifies: signed by acme/);
    const install = await runCli(['plugin', 'install', 'acme.tutorial-csv@^0.3', ...state]);
    assert.equal(install.code, 0, install.stderr);
    assert.match(install.stdout, /installed acme\.tutorial-csv@0\.3\.0 from .*, signed by acme/);
    assert.deepEqual(installedIds(dirs.pluginDir), ['acme.tutorial-csv']);
  });
});
