/**
 * Logs for people and for programs: pretty lines on a terminal (or
 * --log-format pretty), JSON lines otherwise; a one-shot command prints its
 * answer and one summary line for what its host logged, the lines
 * themselves with --verbose; run shows the flow's logs (LogAttribute).
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { BIN, ROOT, runCli, startServe, tempDir } from '../helpers.ts';

/** A folder whose plugin directory holds two example plugins signed by a key nobody trusted: both fail to load. */
function brokenSite(t: TestContext) {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'plugins'));
  for (const id of ['acme.upper', 'acme.reverse'])
    cpSync(join(ROOT, 'examples', 'plugins', id), join(dir, 'plugins', id), { recursive: true });
  return { dir, state: ['--data-dir', join(dir, 'data'), '--plugin-dir', join(dir, 'plugins')] };
}

const jsonLines = (text: string) => text.split('\n').filter((l) => l.startsWith('{'));

describe('CLI logs', () => {
  test('plugin list and plugin validate print their answer and one summary line for broken plugins; --verbose shows the lines', async (t) => {
    const { dir, state } = brokenSite(t);
    const list = await runCli(['plugin', 'list', ...state]);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(jsonLines(list.stderr), [], 'no JSON log lines');
    const notes = list.stderr.split('\n').filter((l) => /failed to load/.test(l));
    assert.equal(notes.length, 1, list.stderr);
    assert.match(
      notes[0]!,
      /^note: 2 installed plugins failed to load \(acme\.reverse: PUBLISHER_UNTRUSTED; acme\.upper: PUBLISHER_UNTRUSTED\); --verbose shows the details$/,
    );

    const unrelated = join(ROOT, 'examples', 'plugins', 'acme.stamp');
    const validate = await runCli(['plugin', 'validate', unrelated, ...state], { cwd: dir });
    assert.equal(validate.code, 1, 'acme.stamp is not trusted here either');
    assert.deepEqual(jsonLines(validate.stderr), []);
    assert.equal(validate.stderr.split('\n').filter((l) => /failed to load/.test(l)).length, 1, validate.stderr);

    const verbose = await runCli(['plugin', 'list', '--verbose', ...state]);
    const lines = jsonLines(verbose.stderr).map((l) => JSON.parse(l) as { msg: string; plugin?: string });
    assert.deepEqual(
      // the plugins load side by side: their lines come in either order
      lines
        .filter((l) => l.msg === 'plugin failed to load')
        .map((l) => l.plugin)
        .sort(),
      ['acme.reverse', 'acme.upper'],
    );
    assert.doesNotMatch(verbose.stderr, /^note:/m);

    const pretty = await runCli(['plugin', 'list', '--verbose', '--log-format', 'pretty', ...state]);
    assert.deepEqual(jsonLines(pretty.stderr), []);
    assert.match(
      pretty.stderr,
      /^\d\d:\d\d:\d\d WARN {2}plugin failed to load plugin=acme\.upper codes=\["PUBLISHER_UNTRUSTED"\]$/m,
    );

    // --log-level on the command line asks for the lines too; a level from the environment does not
    const level = await runCli(['plugin', 'list', '--log-level', 'warn', ...state]);
    assert.equal(jsonLines(level.stderr).length, 2, level.stderr);
    const env = await runCli(['plugin', 'list', ...state], { env: { DATABRIDGE_LOG_LEVEL: 'debug' } });
    assert.deepEqual(jsonLines(env.stderr), []);
  });

  test('on a terminal the lines are pretty with no flag', {
    skip: !existsSync('/usr/bin/script') && 'needs script(1) for a terminal',
  }, (t) => {
    const { state } = brokenSite(t);
    // script(1) gives the command a pseudo-terminal, as a person's shell does
    const command = [process.execPath, BIN, 'plugin', 'list', '--verbose', ...state].map((a) => `'${a}'`).join(' ');
    const r = spawnSync('/usr/bin/script', ['-qec', command, '/dev/null'], { encoding: 'utf8', cwd: ROOT });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /WARN {2}plugin failed to load plugin=acme\.upper/);
    assert.deepEqual(jsonLines(r.stdout.replaceAll('\r', '')), []);
  });

  test('a bad level or format is bad usage naming where it came from', async (t) => {
    const { state } = brokenSite(t);
    const flag = await runCli(['plugin', 'list', '--log-format', 'xml', ...state]);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /--log-format must be one of pretty, json, not "xml"/);
    const env = await runCli(['trust', 'list', ...state], { env: { DATABRIDGE_LOG_LEVEL: 'loud' } });
    assert.equal(env.code, 2);
    assert.match(env.stderr, /DATABRIDGE_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, not "loud"/);
  });

  test('run shows what LogAttribute logs: JSON lines for programs, a pretty line with the attributes for people', async (t) => {
    const dir = tempDir(t);
    writeFileSync(
      join(dir, 'flow.json'),
      JSON.stringify({
        processors: [
          {
            id: 'gen',
            type: 'GenerateFlowFile',
            properties: { 'Custom Text': 'HELLO THERE', 'Max FlowFiles': '1', greeting: 'hello' },
          },
          { id: 'log', type: 'LogAttribute', properties: { 'Log Payload': 'true' }, autoTerminate: ['success'] },
        ],
        connections: [{ source: 'gen', relationship: 'success', destination: 'log' }],
      }),
    );
    const state = ['--data-dir', join(dir, 'data'), '--plugin-dir', join(dir, 'plugins')];
    const json = await runCli(['run', 'flow.json', '--json', ...state], { cwd: dir });
    assert.equal(json.code, 0, json.stderr);
    const logged = jsonLines(json.stderr)
      .map((l) => JSON.parse(l) as { msg: string; processor?: string; attributes?: Record<string, string> })
      .find((l) => l.processor === 'log');
    assert.ok(logged, json.stderr);
    assert.equal(logged.attributes?.greeting, 'hello');

    const pretty = await runCli(['run', 'flow.json', '--log-format', 'pretty', ...state], { cwd: dir });
    assert.equal(pretty.code, 0, pretty.stderr);
    assert.deepEqual(jsonLines(pretty.stderr), []);
    assert.match(pretty.stderr, /INFO {2}FlowFile \S+ .*attributes\.greeting=hello.* payload="HELLO THERE"/);

    const quiet = await runCli(['run', 'flow.json', '--log-level', 'warn', ...state], { cwd: dir });
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.doesNotMatch(quiet.stderr, /FlowFile/);
  });

  test('serve with pretty logs prints no JSON line before its banner; --log-level warn drops the info lines', async (t) => {
    const { state } = brokenSite(t);
    for (const [args, info] of [
      [['--log-format', 'pretty'], true],
      [['--log-format', 'pretty', '--log-level', 'warn'], false],
    ] as const) {
      const server = await startServe([...state, ...args]);
      t.after(() => server.child.kill('SIGKILL'));
      const output = server.output();
      const before = output.slice(0, output.indexOf('DataBridge '));
      assert.deepEqual(jsonLines(output), [], output);
      assert.match(before, /WARN {2}plugin failed to load plugin=acme\.reverse/);
      assert.equal(/INFO {2}plugin manager ready/.test(output), info, output);
      server.child.kill('SIGTERM');
      await new Promise((r) => server.child.once('exit', r));
    }
  });
});
