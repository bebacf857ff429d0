import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { ROOT, tempDir } from '../helpers.ts';

function files(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    out.set(relative(dir, path), readFileSync(path, 'utf8'));
  }
  return out;
}

test('docs/sdk-reference is generated from the SDK TSDoc (npm run docs)', (t) => {
  const out = join(tempDir(t), 'sdk-reference');
  const r = spawnSync(join(ROOT, 'node_modules', '.bin', 'typedoc'), ['--out', out, '--logLevel', 'Warn'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const fresh = files(out);
  const committed = files(join(ROOT, 'docs', 'sdk-reference'));
  assert.deepEqual([...committed.keys()].sort(), [...fresh.keys()].sort(), 'run npm run docs and commit the result');
  for (const [name, text] of fresh)
    assert.equal(committed.get(name), text, `${name}: run npm run docs and commit the result`);
  const sdk = fresh.get(join('databridge', 'sdk.md'))!;
  for (const name of [
    'Processor',
    'ProcessSession',
    'ControllerService',
    'ReportingTask',
    'PropertyMigration',
    'definePlugin',
  ])
    assert.match(sdk, new RegExp(`^### ${name}`, 'm'), name);
  const testing = fresh.get(join('databridge', 'sdk', 'testing.md'))!;
  for (const name of ['TestRunner', 'ReportingTaskRunner', 'MockFlowFile'])
    assert.match(testing, new RegExp(`^### ${name}`, 'm'), name);
});
