/**
 * What a plugin author and a first-time operator trip on (issue 18, items
 * 6-10), through the CLI: pack keeps a tracked signature, validate is the
 * same check as install, --allow-unsigned is remembered per release, and the
 * refusals say what to do in the CLI's words.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { createPluginManager } from '../../src/plugin/manager.ts';
import { ROOT, runCli, tempDir } from '../helpers.ts';
import { beforeLoad, makePlugin, newKey, sign, trustKey, upperCode } from '../plugin-fixtures.ts';

/** A data and plugin directory with the acme key trusted; the CLI's state flags for them. */
async function node(dir: string) {
  const dataDir = join(dir, 'data');
  const pluginDir = join(dir, 'plugins');
  const key = newKey();
  await beforeLoad({ dataDir, pluginDir }, (m) => trustKey(m, key));
  return { key, dataDir, pluginDir, state: ['--data-dir', dataDir, '--plugin-dir', pluginDir] };
}

describe('plugin pack and a tracked signature', () => {
  test('packing a signed folder keeps its signature byte for byte; a changed one is refused without --key', async (t) => {
    const dir = tempDir(t);
    const upper = join(dir, 'acme.upper');
    cpSync(join(ROOT, 'examples', 'plugins', 'acme.upper'), upper, { recursive: true });
    const signature = join(upper, 'signature.dsse.json');
    const before = readFileSync(signature, 'utf8');

    const plain = await runCli(['plugin', 'pack', upper, '-o', join(dir, 'a.tgz')]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout, /its signature kept: signed by/);
    // the README's step: the example key given, the example's own signature still stands
    const keyed = await runCli([
      'plugin',
      'pack',
      upper,
      '--key',
      join(ROOT, 'examples', 'keys', 'acme-example.key'),
      '-o',
      join(dir, 'b.tgz'),
      '--json',
    ]);
    assert.equal(keyed.code, 0, keyed.stderr);
    assert.equal(JSON.parse(keyed.stdout).signatureKept, true);
    assert.equal(readFileSync(signature, 'utf8'), before, 'the tracked signature is not rewritten');
    assert.ok(existsSync(join(dir, 'a.tgz')) && existsSync(join(dir, 'b.tgz')));

    writeFileSync(join(upper, 'index.js'), `${readFileSync(join(upper, 'index.js'), 'utf8')}\n// changed\n`);
    const stale = await runCli(['plugin', 'pack', upper, '-o', join(dir, 'c.tgz')]);
    assert.equal(stale.code, 1);
    assert.match(stale.stderr, /CHECKSUM_MISMATCH index\.js/);
    assert.match(stale.stderr, /pack with --key to sign them again/);
    assert.equal(readFileSync(signature, 'utf8'), before, 'nothing written');
    assert.ok(!existsSync(join(dir, 'c.tgz')));
  });

  test('.gitignore keeps the keys and bundles the tutorial and README make out of a commit, not the example key', (t) => {
    const git = spawnSync('git', ['check-ignore', '--no-index', 'keys/dev.key', 'hello.tgz', 'acme.upper.tgz'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    if (git.error) return t.skip('git is not installed');
    assert.deepEqual(git.stdout.trim().split('\n'), ['keys/dev.key', 'hello.tgz', 'acme.upper.tgz']);
    const example = spawnSync('git', ['check-ignore', '--no-index', 'examples/keys/acme-example.key'], { cwd: ROOT });
    assert.equal(example.status, 1, 'the example key pair stays tracked');
  });
});

describe('validate is the same check as install', () => {
  test('a manifest providing a name the module does not export: invalid at validate, refused at install', async (t) => {
    const dir = tempDir(t);
    const n = await node(dir);
    // the module exports Upper; the manifest also promises Lower
    const folder = makePlugin(join(dir, 'src'), {
      id: 'acme.upper',
      processors: ['Upper', 'Lower'],
      code: upperCode('Upper'),
    });
    await sign(folder, n.key);

    const validated = await runCli(['plugin', 'validate', folder, '--json', ...n.state]);
    assert.equal(validated.code, 1, validated.stdout);
    const report = JSON.parse(validated.stdout) as { valid: boolean; findings: { code: string; message: string }[] };
    assert.equal(report.valid, false);
    assert.ok(
      report.findings.some(
        (f) => f.code === 'LOAD_FAILED' && /provides processors Lower|provides Lower/.test(f.message),
      ),
      validated.stdout,
    );

    const installed = await runCli(['plugin', 'install', folder, ...n.state]);
    assert.equal(installed.code, 1, installed.stdout);
    assert.match(installed.stderr, /error LOAD_FAILED .*Lower/);
    assert.match(installed.stderr, /error INSTALL_REFUSED: The plugin was refused: LOAD_FAILED\n$/);
    assert.doesNotMatch(installed.stdout, /installed/);
    assert.ok(!existsSync(join(n.pluginDir, 'acme.upper')), 'nothing moved in');
  });

  test('unmet or missing dependencies: invalid at validate and refused at install, naming them', async (t) => {
    const dir = tempDir(t);
    const n = await node(dir);
    const app = makePlugin(join(dir, 'src'), {
      id: 'acme.app',
      manifest: { dependencies: { 'acme.base': '^2.0.0', 'acme.other': '*' } },
    });
    await sign(app, n.key);
    const base = makePlugin(join(dir, 'src'), { id: 'acme.base', version: '1.5.0' });
    await sign(base, n.key);
    assert.equal((await runCli(['plugin', 'install', base, ...n.state])).code, 0);

    const validated = await runCli(['plugin', 'validate', app, ...n.state]);
    assert.equal(validated.code, 1);
    assert.match(
      validated.stdout,
      /error DEPENDENCY_MISSING manifest\.json#\/dependencies\/acme\.base: needs acme\.base \^2\.0\.0; 1\.5\.0 is installed/,
    );
    assert.match(validated.stdout, /error DEPENDENCY_MISSING .*acme\.other \*, which is not installed/);

    const installed = await runCli(['plugin', 'install', app, ...n.state]);
    assert.equal(installed.code, 1);
    assert.match(installed.stderr, /acme\.base \^2\.0\.0/);
    assert.match(installed.stderr, /acme\.other/);
    assert.ok(!existsSync(join(n.pluginDir, 'acme.app')));
  });
});

describe('install --allow-unsigned', () => {
  test('is recorded for that release: later loads honour it, list and the audit show it; other bytes need the flag again', async (t) => {
    const dir = tempDir(t);
    const n = await node(dir);
    const folder = makePlugin(join(dir, 'src'), { id: 'acme.loose' });
    await sign(folder); // checksums, no signature

    const refused = await runCli(['plugin', 'install', folder, ...n.state]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /SIGNATURE_MISSING/);
    const installed = await runCli(['plugin', 'install', folder, '--allow-unsigned', ...n.state]);
    assert.equal(installed.code, 0, installed.stderr);
    assert.match(installed.stdout, /installed acme\.loose@1\.0\.0 \(status active\)/);

    // a later command without the flag loads it as the install left it
    const listed = await runCli(['plugin', 'list', '--source', 'external', '--json', ...n.state]);
    const [plugin] = JSON.parse(listed.stdout) as {
      id: string;
      status: string;
      statusReason?: string;
      signature: { state: string; acceptedUnsigned?: { actor: string; at: string } };
    }[];
    assert.equal(plugin?.status, 'active', plugin?.statusReason);
    assert.equal(plugin.signature.state, 'unsigned');
    assert.match(plugin.signature.acceptedUnsigned?.actor ?? '', /^cli/);
    const table = await runCli(['plugin', 'list', '--source', 'external', ...n.state]);
    assert.match(table.stdout, /active, unsigned: accepted at install by cli/);

    const manager = await createPluginManager({ dataDir: n.dataDir, pluginDir: n.pluginDir, logLevel: false });
    try {
      assert.equal(manager.get('acme.loose').status, 'active');
      const [audit] = await manager.store.listAudit({ target: 'acme.loose', action: 'install' });
      assert.equal((audit?.details as { acceptedUnsigned?: boolean } | undefined)?.acceptedUnsigned, true);
    } finally {
      await manager.shutdown();
    }

    // other bytes under the same id are another release: not accepted by the first one's record
    writeFileSync(
      join(folder, 'manifest.json'),
      readFileSync(join(folder, 'manifest.json'), 'utf8').replace('1.0.0', '1.1.0'),
    );
    await sign(folder);
    const next = await runCli(['plugin', 'install', folder, ...n.state]);
    assert.equal(next.code, 1);
    assert.match(next.stderr, /SIGNATURE_MISSING/);
  });
});

describe('messages in the CLI’s words', () => {
  test('reinstalled, --force, no API wording, a private key refused by name, a project folder told what to do', async (t) => {
    const dir = tempDir(t);
    const n = await node(dir);
    const folder = makePlugin(join(dir, 'src'), { id: 'acme.upper' });
    await sign(folder, n.key);
    assert.equal((await runCli(['plugin', 'install', folder, ...n.state])).code, 0);

    const again = await runCli(['plugin', 'install', folder, ...n.state]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already installed; --force/);
    assert.doesNotMatch(again.stderr, /use force/);
    const forced = await runCli(['plugin', 'install', folder, '--force', ...n.state]);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stdout, /^reinstalled acme\.upper@1\.0\.0 \(status active\)$/m);

    const unsigned = makePlugin(join(dir, 'other'), { id: 'acme.upper', version: '1.1.0' });
    const refused = await runCli(['plugin', 'install', unsigned, ...n.state]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /error SIGNATURE_MISSING/);
    assert.doesNotMatch(refused.stderr, /details\.findings/);

    const keygen = await runCli(['keygen', '--out', join(dir, 'me')]);
    assert.equal(keygen.code, 0, keygen.stderr);
    const trusted = await runCli(['trust', 'add', '--publisher', 'me', '--key', join(dir, 'me.key'), ...n.state]);
    assert.equal(trusted.code, 1);
    assert.match(
      trusted.stderr,
      /error KEY_NOT_PUBLIC: .*me\.key holds a private key: trust takes the public key only/,
    );
    const list = await runCli(['trust', 'list', '--json', ...n.state]);
    assert.ok(!(JSON.parse(list.stdout) as { keys: { publisher: string }[] }).keys.some((k) => k.publisher === 'me'));

    // a plugin project, as `plugin new` and npm install leave it
    const project = join(dir, 'hello');
    assert.equal((await runCli(['plugin', 'new', project, '--id', 'me.hello'])).code, 0);
    mkdirSync(join(project, 'node_modules'));
    symlinkSync(ROOT, join(project, 'node_modules', 'databridge'));
    const projectInstall = await runCli(['plugin', 'install', project, ...n.state]);
    assert.equal(projectInstall.code, 2);
    assert.match(projectInstall.stderr, /is a plugin project .*databridge plugin pack .* and install the \.tgz/);
  });
});
