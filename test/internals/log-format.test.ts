/** The CLI's pretty log lines (src/cli/logs.ts): what a person reads on a terminal. */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { defaultFormat, prettyLine } from '../../src/cli/logs.ts';

describe('the pretty format', () => {
  test('a terminal gets pretty lines, anything else JSON', () => {
    assert.equal(defaultFormat(true), 'pretty');
    assert.equal(defaultFormat(false), 'json');
    assert.equal(defaultFormat(undefined), 'json');
  });

  test('one line: time, level, message, then fields (nested ones dotted, odd strings quoted)', () => {
    const time = new Date(2026, 0, 2, 3, 4, 5).getTime();
    const line = prettyLine(
      `${JSON.stringify({
        level: 40,
        time,
        pid: 7,
        msg: 'two\nlines',
        plugin: 'acme.x',
        attributes: { greeting: 'hello world', empty: '', eq: 'a=b' },
        n: 3,
        list: [1, 'a'],
      })}\n`,
    );
    assert.equal(
      line,
      '03:04:05 WARN  two lines plugin=acme.x attributes.greeting="hello world" attributes.empty="" attributes.eq="a=b" n=3 list=[1,"a"]',
    );
    assert.equal(prettyLine('not json\n'), 'not json');
  });
});
