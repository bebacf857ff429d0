import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { DOC_PATH, manifestReference } from '../../scripts/manifest-reference.ts';

test('docs/manifest-reference.md is generated from the schema (npm run docs)', () => {
  assert.equal(readFileSync(DOC_PATH, 'utf8'), manifestReference(), 'run npm run docs and commit the result');
  for (const field of ['id', 'entryPoint', 'provides.processors', 'permissions.fs.read', 'limits.maxMemoryMB'])
    assert.match(manifestReference(), new RegExp(`\\| \`${field.replace('.', '\\.')}\` \\|`));
});
