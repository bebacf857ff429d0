import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isDataBridgeError } from '../../src/errors.ts';
import { compileExpression } from '../../src/session/expression.ts';

const ev = (src: string, attrs: Record<string, string> = {}) => compileExpression(src).evaluate(attrs);

test('attributes, chained functions, nesting and escapes', () => {
  const a = { filename: 'report.csv', size: '2048', empty: '  ', 'my attr': 'spaced' };
  assert.equal(ev('${filename}', a), 'report.csv');
  assert.equal(ev('${filename:toUpper():substringBefore(".")}', a), 'REPORT');
  assert.equal(ev("${filename:replace('.csv', '.json')}", a), 'report.json');
  assert.equal(ev('${size:gt(1024):ifElse("big", "small")}', a), 'big');
  assert.equal(ev('${missing:isNull()} ${missing:replaceNull("dflt")} ${empty:isEmpty()}', a), 'true dflt true');
  assert.equal(ev("${'my attr'}", a), 'spaced');
  assert.equal(ev('${filename:append(${size})}', a), 'report.csv2048');
  assert.equal(ev('cost: $${literal} and ${size:divide(1024)} KiB', a), 'cost: ${literal} and 2 KiB');
  assert.equal(ev('${missing}', a), '', 'a missing attribute is empty text');
  assert.match(ev('${UUID()}'), /^[0-9a-f-]{36}$/);
  assert.ok(Number(ev('${now()}')) > 1_700_000_000_000);
  assert.equal(compileExpression('plain text').dynamic, false);
});

test('bad expressions are coded errors with a position, and never run code', () => {
  for (const [src, why] of [
    ['${filename', /expected "}"/],
    ['${filename:explode()}', /unknown function explode/],
    ['${filename:toUpper(1)}', /takes 0 argument/],
    ['${toUpper()}', /needs a subject/],
    ["${x:append('unterminated)}", /unterminated string/],
    ['${constructor}', null],
  ] as const) {
    if (why === null) {
      assert.equal(ev(src), '', 'prototype names are not attributes');
      continue;
    }
    assert.throws(
      () => compileExpression(src),
      (e: unknown) =>
        isDataBridgeError(e, 'EXPRESSION_INVALID') && why.test(e.message) && /position \d+/.test(e.message),
      src,
    );
  }
});
