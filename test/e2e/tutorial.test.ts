/**
 * docs/writing-a-plugin.md, step by step as a new user follows it: scaffold
 * from the checkout; in the project npm install, npm test, a key beside it
 * and npm run pack, with the system's Node first on PATH (on this machine
 * Node 20: the project's own pinned Node 24 must carry every command); then,
 * back in the checkout, trust, validate, install and run the plugin's flow.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join, sep } from 'node:path';
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

/** PATH without the Node 24 this suite runs on (the checkout's node_modules/.bin, the runner's folder): the system's Node first. */
function systemPath(): string {
  const own = dirname(process.execPath);
  return (process.env.PATH ?? '')
    .split(delimiter)
    .filter((d) => d && d !== own && !d.includes(`node_modules${sep}.bin`))
    .join(delimiter);
}

/** A shell command as the reader types it: the system's PATH, none of npm's or the test runner's variables. */
function sh(cwd: string, command: string, expect = 0): { stdout: string; stderr: string } {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('npm_') && k !== 'NODE_TEST_CONTEXT'),
  );
  const r = spawnSync('bash', ['-c', command], {
    cwd,
    env: { ...env, PATH: systemPath() },
    encoding: 'utf8',
    timeout: 300_000,
  });
  assert.equal(r.status, expect, `${command}: ${r.stdout}${r.stderr}`);
  return r;
}

/** The tutorial's step 3 and 4 for the other project types: a key, trusted for me.* by the node in ./data. */
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

// a real npm install, the project's tests and five builds (each type-checked): minutes on a loaded machine
test('the tutorial as written: plugin new to a signed, installed plugin running in a flow, on the system Node', {
  timeout: 600_000,
}, async (t) => {
  const dir = tempDir(t);
  const checkout = join(dir, 'checkout');
  const hello = join(dir, 'hello');
  mkdirSync(checkout);
  const cli = cliIn(checkout);
  const node = sh(dir, 'node --version').stdout.trim();
  t.diagnostic(
    Number(node.slice(1).split('.')[0]) < 24
      ? `the system Node is ${node}: every npm and npx command below ran through the project's pinned Node 24`
      : `the system Node here is ${node}: the older-Node case is not exercised on this machine`,
  );

  // 1. scaffold, from the checkout
  const created = await cli(['plugin', 'new', '../hello', '--id', 'me.hello']);
  assert.match(created.stdout, /created me\.hello/);
  assert.match(created.stdout, /keygen --out \.\.\/keys\/dev /, 'plugin new names the key path npm run pack uses');
  await cli(['plugin', 'new', '../hello', '--id', 'me.hello'], 1); // not over an existing project
  await cli(['plugin', 'new', 'x', '--id', 'Not An Id'], 1);

  // 2. test, in the project
  sh(hello, 'npm install --prefer-offline --no-audit --no-fund');
  assert.match(sh(hello, 'npx node --version').stdout, /^v24\./, "npx runs the project's Node 24");
  assert.match(sh(hello, 'npm test').stdout, /pass 3/);
  assert.ok(existsSync(join(hello, 'dist', 'index.js')), 'built into dist/');
  assert.match(sh(hello, 'npm run build').stdout, /built dist\/index\.js/);
  assert.match(sh(hello, 'npx databridge plugin build .').stdout, /built dist\/index\.js/);

  // 3. sign: the key beside the project, where npm run pack looks for it
  sh(hello, 'npx databridge keygen --out ../keys/dev');
  assert.match(sh(hello, 'npm run pack').stdout, /signed by/);
  assert.ok(existsSync(join(hello, 'me.hello-0.1.0.tgz')));

  // 4. trust, validate, install, from the checkout
  await cli(['trust', 'add', '--publisher', 'me', '--key', '../keys/dev.pub', '--namespace', 'me.*']);
  const valid = await cli(['plugin', 'validate', '../hello', '--json']);
  assert.equal(JSON.parse(valid.stdout).valid, true);
  await cli(['plugin', 'install', '../hello/me.hello-0.1.0.tgz']);
  const listed = JSON.parse((await cli(['plugin', 'list', '--search', 'hello', '--json'])).stdout) as {
    id: string;
    status: string;
  }[];
  assert.equal(listed.find((p) => p.id === 'me.hello')?.status, 'active');

  // 5. run it
  const run = await cli(['run', '../hello/flow.json', '--duration', '3s', '--json']);
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

  // the build type-checks: a misspelt SDK method fails with the compiler's message, nothing is built
  const source = join(hello, 'src', 'index.ts');
  const good = readFileSync(source, 'utf8');
  writeFileSync(source, good.replace('session.commit();', 'session.comit();'));
  const misspelt = sh(hello, 'npm run build', 1);
  assert.match(
    misspelt.stderr,
    /BUILD_FAILED: .*src\/index\.ts:\d+: Property 'comit' does not exist on type 'ProcessSession'\. Did you mean 'commit'\? \(TS2551\)/,
  );
  assert.ok(!existsSync(join(hello, 'dist', 'index.js')), 'nothing built');
  // a change that does not parse is refused with file and line too
  writeFileSync(source, `${good}\nconst = ;\n`);
  const broken = await cli(['plugin', 'build', '../hello'], 1);
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
