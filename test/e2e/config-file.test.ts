/**
 * The configuration file (databridge.json, --config): checked against
 * schemas/config.schema.json, beaten by the environment and by flags, and
 * carrying what had no flag: scanner hooks, namespaces, log settings.
 */

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import configSchema from '../../schemas/config.schema.json' with { type: 'json' };
import { TRUST_PATTERN } from '../../src/plugin/isolation.ts';
import { createPluginManager } from '../../src/plugin/manager.ts';
import { DEFAULT_LIMITS, limitsJsonSchema } from '../../src/sandbox/limits.ts';
import { ROOT, runCli, tempDir } from '../helpers.ts';

function writeConfig(dir: string, config: unknown, name = 'databridge.json'): string {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

/** A folder with a databridge.json naming its own state and plugin folders. */
function site(t: TestContext, config: Record<string, unknown> = {}) {
  const dir = tempDir(t);
  writeConfig(dir, { dataDir: 'state', pluginDir: 'plugins', ...config });
  return dir;
}

describe('the configuration file', () => {
  test('an unknown key is bad usage (exit 2) naming the key and its JSON pointer; so is a wrong type, and every problem is listed', async (t) => {
    const dir = site(t, { serve: { prot: 8080, port: 'eighty' }, namespaces: [{ name: 'etl', limit: {} }] });
    const r = await runCli(['plugin', 'list'], { cwd: dir });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /CONFIG_INVALID/);
    assert.match(r.stderr, /databridge\.json/);
    assert.match(r.stderr, /\/serve\/prot is not a known key \("prot"\)/);
    assert.match(r.stderr, /\/namespaces\/0\/limit is not a known key \("limit"\)/);
    assert.match(r.stderr, /\/serve\/port must be integer/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    const json = await runCli(['plugin', 'list', '--json'], { cwd: dir });
    assert.equal(json.code, 2);
    const problems = JSON.parse(json.stdout).error.details.problems as { pointer: string }[];
    assert.deepEqual(problems.map((p) => p.pointer).sort(), ['/namespaces/0/limit', '/serve/port', '/serve/prot']);
  });

  test('--config names the file (relative paths in it are relative to it); a missing one, or one that is not JSON, is bad usage', async (t) => {
    const dir = tempDir(t);
    mkdirSync(join(dir, 'etc'));
    const file = writeConfig(
      join(dir, 'etc'),
      { dataDir: '../state', pluginDir: '../plugins', logLevel: 'info' },
      'x.json',
    );
    const bad = await runCli(['plugin', 'list', '--config', file], { cwd: dir });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /x\.json: \/logLevel is not a known key/);
    const missing = await runCli(['plugin', 'list', '--config', join(dir, 'nope.json')], { cwd: dir });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--config: .*nope\.json does not exist/);
    writeFileSync(join(dir, 'broken.json'), '{ "dataDir": ');
    const broken = await runCli(['plugin', 'list', '--config', 'broken.json'], { cwd: dir });
    assert.equal(broken.code, 2);
    assert.match(broken.stderr, /broken\.json: \(the file\) is not JSON/);

    writeConfig(join(dir, 'etc'), { dataDir: '../state', pluginDir: '../plugins' }, 'x.json');
    const ok = await runCli(['keygen', '--out', join(dir, 'k'), '--config', 'etc/x.json'], { cwd: dir });
    assert.equal(ok.code, 0, ok.stderr);
    const trusted = await runCli(['trust', 'add', '--publisher', 'me', '--key', join(dir, 'k.pub'), '--config', file], {
      cwd: ROOT,
    });
    assert.equal(trusted.code, 0, trusted.stderr);
    // the trust went into ../state from etc/, whatever the working directory
    const listed = await runCli(['trust', 'list', '--json', '--data-dir', join(dir, 'state')]);
    assert.equal((JSON.parse(listed.stdout) as { keys: unknown[] }).keys.length, 1);
  });

  test('a flag beats the environment, which beats the file: the message names where the bad value came from', async (t) => {
    const dir = site(t, { serve: { flow: 'from-file.json' } });
    const file = await runCli(['serve'], { cwd: dir });
    assert.equal(file.code, 2);
    assert.match(file.stderr, /the flow file .*from-file\.json \(serve\.flow in .*databridge\.json\) does not exist/);
    const env = await runCli(['serve'], { cwd: dir, env: { DATABRIDGE_FLOW: 'from-env.json' } });
    assert.equal(env.code, 2);
    assert.match(env.stderr, /the flow file from-env\.json \(DATABRIDGE_FLOW\) does not exist/);
    const flag = await runCli(['serve', '--flow', 'from-flag.json'], {
      cwd: dir,
      env: { DATABRIDGE_FLOW: 'from-env.json' },
    });
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /the flow file from-flag\.json \(--flow\) does not exist/);
  });

  test('DATABRIDGE_PORT=abc is reported as DATABRIDGE_PORT, not --port', async (t) => {
    const dir = site(t, { serve: { port: 8080 } });
    const env = await runCli(['serve'], { cwd: dir, env: { DATABRIDGE_PORT: 'abc' } });
    assert.equal(env.code, 2);
    assert.match(env.stderr, /USAGE: DATABRIDGE_PORT must be a number from 0 to 65535, not "abc"/);
    const flag = await runCli(['serve', '--port', '70000'], { cwd: dir, env: { DATABRIDGE_PORT: 'abc' } });
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /USAGE: --port must be a number from 0 to 65535, not "70000"/);
  });

  test('the state directory comes from the file unless the environment names another', async (t) => {
    const dir = site(t);
    const key = await runCli(['keygen', '--out', join(dir, 'k')], { cwd: dir });
    assert.equal(key.code, 0, key.stderr);
    const add = await runCli(['trust', 'add', '--publisher', 'me', '--key', 'k.pub', '--json'], { cwd: dir });
    assert.equal(add.code, 0, add.stderr);
    const count = async (where: Record<string, string>, args: string[] = []) => {
      const r = await runCli(['trust', 'list', '--json', ...args], { cwd: dir, env: where });
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as { keys: unknown[] }).keys.length;
    };
    assert.equal(await count({}), 1, 'the file’s dataDir (state/) holds the key');
    assert.equal(await count({}, ['--data-dir', join(dir, 'state')]), 1);
    assert.equal(await count({ DATABRIDGE_DATA_DIR: join(dir, 'other') }), 0, 'the environment beats the file');
    assert.equal(
      await count({ DATABRIDGE_DATA_DIR: join(dir, 'other') }, ['--data-dir', join(dir, 'state')]),
      1,
      'the flag beats the environment',
    );
  });

  test('namespaces in the file are created at start, and updated to the file’s limits at the next start (audited as config)', async (t) => {
    const defaultLimits = { maxMemoryMB: 99 };
    const dir = site(t, {
      defaultLimits,
      namespaces: [{ name: 'etl', displayName: 'ETL jobs', limits: { maxMemoryMB: 128 } }, { name: 'plain' }],
    });
    writeFileSync(
      join(dir, 'flow.json'),
      JSON.stringify({
        processors: [
          { id: 'gen', type: 'GenerateFlowFile', properties: { 'Max FlowFiles': '1' }, autoTerminate: ['success'] },
        ],
      }),
    );
    const first = await runCli(['run', 'flow.json', '--json'], { cwd: dir });
    assert.equal(first.code, 0, first.stderr);
    writeConfig(dir, {
      dataDir: 'state',
      pluginDir: 'plugins',
      defaultLimits,
      namespaces: [{ name: 'etl', limits: { maxMemoryMB: 64, maxExecutionMS: 1000 } }, { name: 'plain' }],
    });
    const second = await runCli(['run', 'flow.json'], { cwd: dir });
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /updated the namespace etl/);
    const manager = await createPluginManager({
      dataDir: join(dir, 'state'),
      pluginDir: join(dir, 'plugins'),
      logLevel: false,
      heartbeatMs: 0,
    });
    t.after(() => manager.shutdown());
    const etl = await manager.namespaces.get('etl');
    assert.equal(etl.displayName, 'ETL jobs');
    assert.deepEqual(etl.limits, { maxMemoryMB: 64, maxExecutionMS: 1000 });
    const audit = (await manager.store.listAudit({ target: 'etl' })).map((a) => `${a.actor} ${a.action}`);
    assert.deepEqual(audit.sort(), ['config namespace.create', 'config namespace.update']);
    // a namespace without limits gets the file's defaultLimits; one already as the file says is left alone
    assert.deepEqual((await manager.namespaces.get('plain')).limits, { ...DEFAULT_LIMITS, ...defaultLimits });
    const plain = (await manager.store.listAudit({ target: 'plain' })).map((a) => `${a.actor} ${a.action}`);
    assert.deepEqual(plain, ['config namespace.create']);
    assert.doesNotMatch(second.stderr, /namespace plain/);
  });

  test('the schema’s limits and trust patterns are the code’s', () => {
    const schema = configSchema as unknown as {
      properties: Record<string, { properties?: Record<string, unknown>; items?: { pattern?: string } }>;
    };
    const limits = limitsJsonSchema();
    assert.deepEqual(schema.properties.defaultLimits!.properties, limits.properties);
    assert.equal(schema.properties.workerPlugins!.items!.pattern, TRUST_PATTERN);
    assert.equal(schema.properties.inlinePlugins!.items!.pattern, TRUST_PATTERN);
    const documented = readFileSync(join(ROOT, 'docs', 'configuration.md'), 'utf8');
    for (const key of Object.keys(schema.properties).filter((k) => k !== '$schema'))
      assert.match(documented, new RegExp(`\`${key}\``), `docs/configuration.md describes ${key}`);
  });
});

describe('scanner hooks from the configuration file', () => {
  async function trusted(t: TestContext, scanners: unknown[]) {
    const dir = site(t, { scanners });
    const add = await runCli(
      [
        'trust',
        'add',
        '--publisher',
        'acme',
        '--key',
        join(ROOT, 'examples', 'keys', 'acme-example.pub'),
        '--namespace',
        'acme.*',
      ],
      { cwd: dir },
    );
    assert.equal(add.code, 0, add.stderr);
    return dir;
  }
  const plugin = join(ROOT, 'examples', 'plugins', 'acme.upper');

  test('a hook is given the plugin folder and its findings are the validation’s', async (t) => {
    const dir = await trusted(t, [
      {
        name: 'echo',
        command: [
          '/bin/sh',
          '-c',
          'printf \'{"findings":[{"severity":"warning","message":"looked at %s"}]}\' "$1"',
          'sh',
        ],
      },
    ]);
    const r = await runCli(['plugin', 'validate', plugin, '--json'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    const findings = JSON.parse(r.stdout).findings as { code: string; message: string }[];
    const hook = findings.find((f) => f.code === 'SCANNER_FINDING');
    assert.ok(hook, r.stdout);
    assert.match(hook.message, /^echo: looked at \/.+/);
  });

  test('a hook that fails refuses the install, and nothing is installed', async (t) => {
    const dir = await trusted(t, [{ name: 'strict', command: ['/bin/sh', '-c', 'exit 3', 'sh'] }]);
    const r = await runCli(['plugin', 'install', plugin], { cwd: dir });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /SCANNER_FAILED.*scanner strict failed/);
    const list = await runCli(['plugin', 'list', '--json', '--search', 'acme.upper'], { cwd: dir });
    assert.deepEqual(JSON.parse(list.stdout), []);
  });

  test('a hook that times out refuses the install', async (t) => {
    const dir = await trusted(t, [{ name: 'slow', command: ['/bin/sh', '-c', 'exec sleep 60', 'sh'], timeoutMs: 200 }]);
    const r = await runCli(['plugin', 'install', plugin], { cwd: dir });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /SCANNER_FAILED.*scanner slow failed: timed out after 200 ms/);
  });
});
