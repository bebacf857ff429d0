// A refusal leaves no trace on disk, and a read-only command makes nothing where it is run: `plugin list` used to
// make ./data/state.db and ./plugins wherever it was run, and a refused install an empty plugins/.staging/.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli, tempDir } from '../helpers.ts';
import { makePlugin } from '../plugin-fixtures.ts';

test('a refused install into a fresh plugin directory leaves no staging folder', async (t) => {
  const dir = tempDir(t);
  // not signed: refused
  const source = makePlugin(join(dir, 'src'), { id: 'acme.unsigned' });
  const plugins = join(dir, 'plugins');
  const r = await runCli(['plugin', 'install', source, '--data-dir', join(dir, 'data'), '--plugin-dir', plugins]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /INSTALL_REFUSED/);
  assert.deepEqual(existsSync(plugins) ? readdirSync(plugins) : [], [], 'nothing left in the plugin directory');
});

test('read-only commands make nothing where they are run', async (t) => {
  const dir = tempDir(t);
  const plugin = makePlugin(join(dir, 'src'), { id: 'acme.look' });
  const cwd = join(dir, 'elsewhere');
  mkdirSync(cwd);
  for (const args of [
    ['plugin', 'list'],
    ['plugin', 'list', '--json'],
    ['plugin', 'validate', plugin],
    ['plugin', 'verify', plugin],
    ['trust', 'list'],
    ['token', 'list'],
    ['namespace', 'list'],
    // refused (no catalog answers there), and still nothing made
    ['plugin', 'info', 'acme.look', '--catalog', 'http://127.0.0.1:1'],
    ['plugin', 'outdated', '--catalog', 'http://127.0.0.1:1'],
  ]) {
    const r = await runCli(args, { cwd });
    assert.ok(r.code === 0 || (args[1] !== 'list' && r.code === 1), `${args.join(' ')}: ${r.stderr}`);
    assert.deepEqual(readdirSync(cwd), [], `${args.join(' ')} made nothing in ${cwd}`);
  }
});
