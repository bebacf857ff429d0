import assert from 'node:assert/strict';
import { rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { startServe, tempDir } from '../helpers.ts';

/** Starts `databridge serve --port 0` over `dataDir` (plugins in `<dataDir>/p`). */
function startServer(dataDir: string, env: Record<string, string> = {}) {
  return startServe(['--data-dir', dataDir, '--plugin-dir', join(dataDir, 'p')], env);
}

describe('databridge serve (skeleton)', () => {
  test('prints a login link, keeps a 0600 token, answers /healthz open and /api only with the token', async (t) => {
    const dir = tempDir(t);
    const { child, base, token } = await startServer(dir, { DATABRIDGE_TOKEN: '' });
    t.after(() => child.kill('SIGKILL'));
    assert.equal(statSync(join(dir, 'admin.token')).mode & 0o777, 0o600);
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    const anonymous = await fetch(`${base}/api/plugins`);
    assert.equal(anonymous.status, 401);
    assert.equal(((await anonymous.json()) as { error: { code: string } }).error.code, 'UNAUTHORIZED');
    const wrong = await fetch(`${base}/api/plugins`, { headers: { authorization: `Bearer ${token}x` } });
    assert.equal(wrong.status, 401);
    const auth = { headers: { authorization: `Bearer ${token}` } };
    const list = (await (await fetch(`${base}/api/plugins`, auth)).json()) as { id: string }[];
    assert.ok(list.some((p) => p.id === 'builtin.GenerateFlowFile'));
    const missing = await fetch(`${base}/api/plugins/zz.none`, auth);
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'PLUGIN_NOT_FOUND');
    const exited = new Promise((r) => child.on('exit', r));
    child.kill('SIGTERM');
    assert.equal(await exited, 0, 'a clean stop on SIGTERM');
  });

  test('the same token is used on the next start', async (t) => {
    const dir = tempDir(t);
    const first = await startServer(dir, { DATABRIDGE_TOKEN: '' });
    first.child.kill('SIGKILL');
    const second = await startServer(dir, { DATABRIDGE_TOKEN: '' });
    t.after(() => second.child.kill('SIGKILL'));
    assert.equal(second.token, first.token);
  });

  test('SIGTERM after the data directory was deleted: the server still stops, says why and exits non-zero', async (t) => {
    const dir = tempDir(t);
    const flowFile = join(dir, 'flow.json');
    writeFileSync(
      flowFile,
      JSON.stringify({
        name: 'gen',
        processors: [
          { id: 'gen', type: 'GenerateFlowFile', properties: { 'Max FlowFiles': '5' } },
          { id: 'log', type: 'LogAttribute', autoTerminate: ['success'] },
        ],
        connections: [{ source: 'gen', relationship: 'success', destination: 'log' }],
      }),
    );
    const dataDir = join(dir, 'data');
    const { child, output } = await startServe([
      '--data-dir',
      dataDir,
      '--plugin-dir',
      join(dir, 'p'),
      '--flow',
      flowFile,
      // the examples' plugins run in sandboxes, which keep a server that never shut its manager down alive
      '--seed-examples',
    ]);
    t.after(() => child.kill('SIGKILL'));
    rmSync(dataDir, { recursive: true, force: true });
    const exited = new Promise((r) => child.on('exit', r));
    child.kill('SIGTERM');
    // before, the flow's failed last snapshot left the sandboxes and timers running: it never exited
    assert.equal(await exited, 1);
    assert.match(output(), /error: ENOENT/);
  });
});
