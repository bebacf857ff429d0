import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ROOT, runCli, tempDir } from '../helpers.ts';

describe('databridge plugin CLI: author to operator to flow', () => {
  test('keygen, sign, pack; trust, install, run it in a flow; refusals exit 1 with codes', async (t) => {
    const dir = tempDir(t);
    const state = ['--data-dir', join(dir, 'data'), '--plugin-dir', join(dir, 'plugins')];
    const author = join(dir, 'acme.upper');
    cpSync(join(ROOT, 'examples', 'plugins', 'acme.upper'), author, { recursive: true });

    const keygen = await runCli(['keygen', '--out', join(dir, 'acme'), '--json']);
    assert.equal(keygen.code, 0, keygen.stderr);
    const { keyId } = JSON.parse(keygen.stdout) as { keyId: string };
    assert.match(keyId, /^[0-9a-f]{64}$/);
    assert.equal(statSync(join(dir, 'acme.key')).mode & 0o777, 0o600);
    assert.equal(
      (await runCli(['keygen', '--out', join(dir, 'acme')])).code,
      2,
      'never overwrites a key without --force',
    );

    const pack = await runCli([
      'plugin',
      'pack',
      author,
      '--key',
      join(dir, 'acme.key'),
      '-o',
      join(dir, 'upper.tgz'),
      '--json',
    ]);
    assert.equal(pack.code, 0, pack.stderr);
    assert.equal((JSON.parse(pack.stdout) as { keyId: string }).keyId, keyId);

    const untrusted = await runCli(['plugin', 'install', join(dir, 'upper.tgz'), ...state]);
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.stderr, /PUBLISHER_UNTRUSTED/);

    const trust = await runCli([
      'trust',
      'add',
      '--publisher',
      'acme',
      '--key',
      join(dir, 'acme.pub'),
      '--namespace',
      'acme.*',
      ...state,
    ]);
    assert.equal(trust.code, 0, trust.stderr);
    const verify = await runCli(['plugin', 'verify', join(dir, 'upper.tgz'), '--json', ...state]);
    assert.equal(verify.code, 0);
    assert.equal((JSON.parse(verify.stdout) as { signer: { publisher: string } }).signer.publisher, 'acme');

    const install = await runCli(['plugin', 'install', join(dir, 'upper.tgz'), '--json', ...state]);
    assert.equal(install.code, 0, install.stderr);
    assert.equal((JSON.parse(install.stdout) as { plugin: { status: string } }).plugin.status, 'active');

    writeFileSync(join(dir, 'in.txt'), 'shout this');
    writeFileSync(
      join(dir, 'flow.json'),
      JSON.stringify({
        processors: [
          {
            id: 'gen',
            type: 'GenerateFlowFile',
            properties: { 'Custom Text': 'make me loud', 'Max FlowFiles': '3', filename: 'x' },
          },
          { id: 'up', type: 'UpperCase' },
          {
            id: 'put',
            type: 'PutFile',
            properties: { Directory: 'out', 'Conflict Resolution Strategy': 'replace' },
            autoTerminate: ['success', 'failure'],
          },
        ],
        connections: [
          { source: 'gen', relationship: 'success', destination: 'up' },
          { source: 'up', relationship: 'success', destination: 'put' },
        ],
      }),
    );
    const run = await runCli(['run', join(dir, 'flow.json'), '--json', ...state]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal((JSON.parse(run.stdout) as { processors: Record<string, { in: number }> }).processors.up!.in, 3);
    assert.equal(readFileSync(join(dir, 'out', 'x'), 'utf8'), 'MAKE ME LOUD');

    const disable = await runCli(['plugin', 'disable', 'acme.upper', ...state]);
    assert.equal(disable.code, 0);
    const refusedRun = await runCli(['run', join(dir, 'flow.json'), ...state]);
    assert.equal(refusedRun.code, 1);
    assert.match(refusedRun.stderr, /FLOW_PLUGIN_UNAVAILABLE/);
    assert.equal((await runCli(['plugin', 'enable', 'acme.upper', ...state])).code, 0);

    const revoke = await runCli(['trust', 'revoke', keyId.slice(0, 12), '--reason', 'leaked', ...state]);
    assert.equal(revoke.code, 0, revoke.stderr);
    const list = await runCli(['plugin', 'list', '--json', ...state]);
    const upper = (JSON.parse(list.stdout) as { id: string; status: string; statusReason: string }[]).find(
      (p) => p.id === 'acme.upper',
    )!;
    assert.equal(upper.status, 'error', 'a revoked key’s plugin no longer loads');
    assert.match(upper.statusReason, /KEY_REVOKED/);

    const uninstall = await runCli(['plugin', 'uninstall', 'acme.upper', ...state]);
    assert.equal(uninstall.code, 0, uninstall.stderr);
    assert.ok(!existsSync(join(dir, 'plugins', 'acme.upper')));
    const trustList = await runCli(['trust', 'list', '--json', ...state]);
    assert.ok((JSON.parse(trustList.stdout) as { keys: { revokedAt: string | null }[] }).keys[0]!.revokedAt);
  });
});
