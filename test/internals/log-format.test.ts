/** The CLI's pretty log lines (src/cli/logs.ts): what a person reads on a terminal. */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { defaultFormat, prettyLine } from '../../src/cli/logs.ts';
import { pluginLogFields } from '../../src/sandbox/sandbox-host.ts';

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

  test('a plugin cannot forge the host’s lines: no control character reaches the terminal, odd field names are quoted', () => {
    const line = prettyLine(
      JSON.stringify({ level: 30, time: 0, msg: '\u001b[1A\u001b[2Kerased', 'x\n15:00:00 ERROR forged': 1, ok: 'y' }),
    );
    assert.ok(!/\p{Cc}/u.test(line), JSON.stringify(line));
    assert.match(line, / INFO {2}\\x1b\[1A\\x1b\[2Kerased "x\\n15:00:00 ERROR forged"=1 ok=y$/);
  });

  test('a sandbox’s log fields: names the host writes are moved aside, names that are not plain are dropped', () => {
    assert.deepEqual(pluginLogFields({ level: 60, time: 0, plugin: 'acme.upper', 'a\nb': 1, 'bad name': 2, n: 3 }), {
      'field.level': 60,
      'field.time': 0,
      'field.plugin': 'acme.upper',
      n: 3,
      droppedFields: 2,
    });
  });
});
