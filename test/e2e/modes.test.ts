import assert from 'node:assert/strict';
import { cpSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT, runCli, tempDir } from '../helpers.ts';

test('the example flow runs an external plugin in each mode: process by default, worker and inline where the operator trusts it', async (t) => {
  const dir = tempDir(t);
  cpSync(join(ROOT, 'examples'), join(dir, 'examples'), {
    recursive: true,
    filter: (src) => !src.includes(`${join(ROOT, 'examples', 'out')}`),
  });
  const state = [
    '--data-dir',
    join(dir, 'data'),
    '--plugin-dir',
    join(dir, 'plugins'),
    '--inline-plugin',
    'acme.stamp',
    // acme.reverse asks for process in its manifest: listing it for a worker does not loosen that
    '--worker-plugin',
    'acme.upper,acme.reverse',
  ];
  const trust = await runCli([
    'trust',
    'add',
    '--publisher',
    'acme',
    '--key',
    join(dir, 'examples', 'keys', 'acme-example.pub'),
    ...state,
  ]);
  assert.equal(trust.code, 0, trust.stderr);
  for (const p of ['acme.upper', 'acme.reverse', 'acme.stamp']) {
    const r = await runCli(['plugin', 'install', join(dir, 'examples', 'plugins', p), ...state]);
    assert.equal(r.code, 0, r.stderr);
  }
  const list = JSON.parse((await runCli(['plugin', 'list', '--source', 'external', '--json', ...state])).stdout) as {
    id: string;
    isolation: string;
    confinement: { level: string; weak: boolean };
  }[];
  assert.deepEqual(Object.fromEntries(list.map((p) => [p.id, p.isolation])), {
    'acme.reverse': 'process',
    'acme.stamp': 'inline',
    'acme.upper': 'worker',
  });
  for (const p of list.filter((p) => p.isolation !== 'process')) assert.equal(p.confinement.level, 'trusted', p.id);
  // with no list, every one of them runs in a process sandbox
  const plain = JSON.parse(
    (await runCli(['plugin', 'list', '--source', 'external', '--json', ...state.slice(0, 4)])).stdout,
  ) as { id: string; isolation: string }[];
  assert.deepEqual(
    plain.map((p) => p.isolation),
    ['process', 'process', 'process'],
  );
  const run = await runCli(['run', join(dir, 'examples', 'flows', 'modes.json'), '--json', ...state]);
  assert.equal(run.code, 0, run.stderr);
  const summary = JSON.parse(run.stdout) as { processors: Record<string, { in: number; errors: number }> };
  const inputs = readdirSync(join(dir, 'examples', 'data', 'in'));
  for (const id of ['upper', 'reverse', 'stamp']) {
    assert.equal(summary.processors[id]!.in, inputs.length, id);
    assert.equal(summary.processors[id]!.errors, 0, id);
  }
  for (const name of inputs) {
    const original = readFileSync(join(dir, 'examples', 'data', 'in', name), 'utf8');
    const expected = original
      .toUpperCase()
      .split('\n')
      .map((line) => [...line].reverse().join(''))
      .join('\n');
    assert.equal(readFileSync(join(dir, 'examples', 'out', 'modes', name), 'utf8'), expected, name);
  }
});
