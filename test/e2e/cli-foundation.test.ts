import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { runCli, tempDir } from '../helpers.ts';

describe('databridge CLI (foundation)', () => {
  test('--version prints the version; --help lists the commands', async () => {
    const version = await runCli(['--version']);
    assert.equal(version.code, 0);
    assert.match(version.stdout.trim(), /^\d+\.\d+\.\d+/);
    const help = await runCli(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /plugin/);
    const pluginHelp = await runCli(['plugin', 'list', '--help']);
    assert.equal(pluginHelp.code, 0);
    assert.match(pluginHelp.stdout, /--json/);
  });

  test('plugin list --json prints the built-ins as JSON', async (t) => {
    const dir = tempDir(t);
    const r = await runCli([
      'plugin',
      'list',
      '--json',
      '--data-dir',
      join(dir, 'data'),
      '--plugin-dir',
      join(dir, 'p'),
    ]);
    assert.equal(r.code, 0, r.stderr);
    const plugins = JSON.parse(r.stdout) as { id: string; source: string; status: string }[];
    const gen = plugins.find((p) => p.id === 'builtin.GenerateFlowFile');
    assert.ok(gen, 'GenerateFlowFile is listed');
    assert.equal(gen.source, 'builtin');
    assert.equal(gen.status, 'active');
  });

  test('plugin list filters, and says so when nothing matches', async (t) => {
    const dir = tempDir(t);
    const base = ['--data-dir', join(dir, 'data'), '--plugin-dir', join(dir, 'p')];
    const r = await runCli(['plugin', 'list', '--search', 'no-such-plugin-anywhere', ...base]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /No plugins match/);
    const text = await runCli(['plugin', 'list', '--search', 'generate', ...base]);
    assert.match(text.stdout, /builtin\.GenerateFlowFile/);
  });

  test('bad usage exits 2 with a message and no stack trace', async (t) => {
    const dir = tempDir(t);
    for (const args of [
      ['no-such-command'],
      ['plugin', 'list', '--no-such-flag'],
      ['plugin', 'list', '--status', 'sleepy', '--data-dir', join(dir, 'd')],
    ]) {
      const r = await runCli(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.ok(r.stderr.length > 0, 'says what is wrong');
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
  });

  test('a damaged state database is a refusal (exit 1) with the code', async (t) => {
    const dir = tempDir(t);
    const { writeFileSync, mkdirSync } = await import('node:fs');
    mkdirSync(join(dir, 'data'));
    writeFileSync(join(dir, 'data', 'state.db'), 'garbage'.repeat(200));
    const r = await runCli(['plugin', 'list', '--data-dir', join(dir, 'data')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /STORE_CORRUPT/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  test('--store: an address that is not PostgreSQL is bad usage (2); a server that does not answer is a refusal (1)', async (t) => {
    const dir = tempDir(t);
    const state = ['--data-dir', join(dir, 'data'), '--plugin-dir', join(dir, 'plugins')];
    const bad = await runCli(['plugin', 'list', '--store', 'mysql://db/x', ...state]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /CONFIG_INVALID.*store must be a postgres:\/\/ address/);
    const away = await runCli(['trust', 'list', '--store', 'postgres://nobody:secret@127.0.0.1:1/x', ...state]);
    assert.equal(away.code, 1);
    assert.match(away.stderr, /STORE_UNAVAILABLE/);
    assert.doesNotMatch(away.stderr, /secret/, 'the password is not shown');
    assert.doesNotMatch(away.stderr, /\n\s+at /);
  });
});
