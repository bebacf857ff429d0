/**
 * docs/writing-a-plugin.md, step by step through the CLI as a new user
 * follows it: scaffold, npm install, test, key, trust, pack (build, sign),
 * validate, install, and the plugin's flow running it.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT, runCli, tempDir } from '../helpers.ts';

type Cli = (args: string[], expect?: number) => ReturnType<typeof runCli>;

/** Runs databridge in `dir`, asserting its exit code (0 unless said). */
function cliIn(dir: string): Cli {
  return async (args, expect = 0) => {
    const r = await runCli(args, { cwd: dir });
    assert.equal(r.code, expect, `databridge ${args.join(' ')}: ${r.stdout}${r.stderr}`);
    return r;
  };
}

/** The tutorial's step 3 and 4: a key, trusted for me.* by the node in ./data. */
async function keyAndTrust(cli: Cli): Promise<void> {
  await cli(['keygen', '--out', 'keys/dev']);
  await cli([
    'trust',
    'add',
    '--publisher',
    'me',
    '--key',
    'keys/dev.pub',
    '--namespace',
    'me.*',
    '--data-dir',
    'data',
  ]);
}

test('from plugin new to a signed, installed plugin running in a flow', async (t) => {
  const dir = tempDir(t);
  const cli = cliIn(dir);
  const state = ['--data-dir', 'data', '--plugin-dir', 'plugins'];

  const created = await cli(['plugin', 'new', 'hello', '--id', 'me.hello']);
  assert.match(created.stdout, /created me\.hello/);
  await cli(['plugin', 'new', 'hello', '--id', 'me.hello'], 1); // not over an existing project
  await cli(['plugin', 'new', 'x', '--id', 'Not An Id'], 1);

  const npm = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--offline'], {
    cwd: join(dir, 'hello'),
    encoding: 'utf8',
  });
  assert.equal(npm.status, 0, npm.stderr);

  const tested = await cli(['plugin', 'test', 'hello']);
  assert.match(tested.stdout, /pass 3/);
  assert.ok(existsSync(join(dir, 'hello', 'dist', 'index.js')), 'built into dist/');

  await keyAndTrust(cli);
  const packed = await cli(['plugin', 'pack', 'hello', '--key', 'keys/dev.key', '-o', 'hello.tgz']);
  assert.match(packed.stdout, /signed by/);
  const valid = await cli(['plugin', 'validate', 'hello', '--json', ...state]);
  assert.equal(JSON.parse(valid.stdout).valid, true);
  await cli(['plugin', 'install', 'hello.tgz', ...state]);
  const listed = JSON.parse((await cli(['plugin', 'list', '--json', ...state])).stdout) as {
    id: string;
    status: string;
  }[];
  assert.equal(listed.find((p) => p.id === 'me.hello')?.status, 'active');

  const run = await cli(['run', 'hello/flow.json', '--duration', '3s', '--json', ...state]);
  const summary = JSON.parse(run.stdout) as { processors: Record<string, { out: number; errors: number }> };
  assert.ok(summary.processors.mine!.out >= 1, run.stdout);
  assert.equal(summary.processors.mine!.errors, 0);
  // step 5's promise: LogAttribute's lines, with the greeting and the upper-cased text (JSON off a terminal)
  const logged = run.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { processor?: string; attributes?: { greeting?: string }; payload?: string })
    .find((l) => l.processor === 'log');
  assert.equal(logged?.attributes?.greeting, 'hello', run.stderr);
  assert.equal(logged?.payload, 'HELLO WORLD');

  // a change that does not compile is refused with file and line, and nothing is packed
  writeFileSync(
    join(dir, 'hello', 'src', 'index.ts'),
    `${readFileSync(join(dir, 'hello', 'src', 'index.ts'), 'utf8')}\nconst = ;\n`,
  );
  const broken = await cli(['plugin', 'build', 'hello'], 1);
  assert.match(broken.stderr, /BUILD_FAILED.*index\.ts:\d+/);
});

for (const [type, check] of [
  [
    'controller',
    (summary: RunSummary) => {
      assert.ok(summary.processors.mine!.out >= 1, JSON.stringify(summary));
      assert.equal(summary.processors.mine!.errors, 0);
    },
  ],
  [
    'reporting',
    (summary: RunSummary) => {
      assert.ok(summary.reportingTasks.mine!.runs >= 1, JSON.stringify(summary));
      assert.equal(summary.reportingTasks.mine!.errors, 0);
    },
  ],
] as const) {
  test(`plugin new --type ${type}: builds, passes its tests, installs and runs its flow with no edits`, async (t) => {
    const dir = tempDir(t);
    const cli = cliIn(dir);
    const state = ['--data-dir', 'data', '--plugin-dir', 'plugins'];
    const made = JSON.parse(
      (await cli(['plugin', 'new', 'p', '--id', `me.${type}-demo`, '--type', type, '--json'])).stdout,
    );
    assert.equal(made.type, type);
    // what npm install does with the file: dependency, without the wait
    mkdirSync(join(dir, 'p', 'node_modules'));
    symlinkSync(ROOT, join(dir, 'p', 'node_modules', 'databridge'));
    const tested = await cli(['plugin', 'test', 'p']);
    assert.match(tested.stdout, /pass 3/);
    await keyAndTrust(cli);
    await cli(['plugin', 'pack', 'p', '--key', 'keys/dev.key', '-o', 'p.tgz']);
    await cli(['plugin', 'install', 'p.tgz', ...state]);
    const run = await cli(['run', 'p/flow.json', '--duration', '3s', '--json', ...state]);
    check(JSON.parse(run.stdout) as RunSummary);
  });
}

interface RunSummary {
  processors: Record<string, { out: number; errors: number }>;
  reportingTasks: Record<string, { runs: number; errors: number }>;
}
