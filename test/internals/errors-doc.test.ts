import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ALERT_CODES } from '../../src/alerts.ts';
import { createError, ERRORS } from '../../src/errors.ts';
import { FLOW_FINDING_CODES } from '../../src/flow/flow-definition.ts';
import { FINDING_CODES } from '../../src/plugin/findings.ts';
import { EXPRESSION_FUNCTIONS } from '../../src/session/expression.ts';
import { ROOT } from '../helpers.ts';

const doc = readFileSync(join(ROOT, 'docs', 'errors.md'), 'utf8');

function documented(section: string): Map<string, number | null> {
  const start = doc.indexOf(`## ${section}`);
  assert.ok(start >= 0, `docs/errors.md has a "${section}" section`);
  const end = doc.indexOf('\n## ', start + 1);
  const rows = new Map<string, number | null>();
  for (const line of doc.slice(start, end < 0 ? undefined : end).split('\n')) {
    const m = /^\| `([A-Z_]+)` \| (\d{3}|—) \|/.exec(line);
    if (m) rows.set(m[1]!, m[2] === '—' ? null : Number(m[2]));
  }
  return rows;
}

test('docs/errors.md lists every error code with its HTTP status, and nothing else', () => {
  const rows = documented('Errors');
  assert.deepEqual([...rows.keys()].sort(), Object.keys(ERRORS).sort());
  for (const [code, status] of rows) {
    assert.equal(status, ERRORS[code as keyof typeof ERRORS].status, `${code}'s status`);
  }
});

test('docs/errors.md lists every flow finding code', () => {
  const start = doc.indexOf('## Flow findings');
  const section = doc.slice(start, doc.indexOf('\n## ', start + 1));
  const listed = [...section.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]).sort();
  assert.deepEqual(listed, [...FLOW_FINDING_CODES].sort());
});

test('docs/errors.md lists every plugin finding code', () => {
  const start = doc.indexOf('## Plugin findings');
  const section = doc.slice(start, doc.indexOf('\n## ', start + 1));
  const listed = [...section.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]).sort();
  assert.deepEqual(listed, [...FINDING_CODES].sort());
});

test('docs/errors.md lists every alert code', () => {
  const start = doc.indexOf('## Alert codes');
  const section = doc.slice(start, doc.indexOf('\n## ', start + 1));
  const listed = [...section.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]).sort();
  assert.deepEqual(listed, [...ALERT_CODES].sort());
});

test('docs/expression-language.md documents every function', () => {
  const el = readFileSync(join(ROOT, 'docs', 'expression-language.md'), 'utf8');
  for (const fn of EXPRESSION_FUNCTIONS) assert.match(el, new RegExp(`\`${fn}\\(`), fn);
});

test('a coded error keeps its cause and serializes as plain data', () => {
  const cause = new Error('disk on fire');
  const err = createError('PLUGIN_NOT_FOUND', { id: 'acme.x' }, { cause, details: { hint: 1 } });
  assert.equal(err.cause, cause);
  assert.deepEqual(JSON.parse(JSON.stringify(err)), {
    code: 'PLUGIN_NOT_FOUND',
    message: 'No plugin with id "acme.x"',
    details: { hint: 1 },
  });
});
