/**
 * The trust guards through `databridge serve`: a revocation by the API or
 * by the CLI stops the plugin it concerns while the server runs (its queued
 * FlowFiles stay queued), and a lower version swapped into the plugin
 * directory by hand is refused at start, by the watcher and by reload.
 */

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { runCli, startServe, tempDir, until } from '../helpers.ts';
import { makePlugin, newKey, sign, upperCode } from '../plugin-fixtures.ts';

type Key = ReturnType<typeof newKey>;

interface Site {
  dir: string;
  dirs: string[];
  /** Runs a CLI command on the site's data and plugin directories; fails the test unless it exits 0. */
  cli: (...args: string[]) => Promise<string>;
  /** A signed plugin folder: processor `Slow` for acme.slow, `Other` for acme.other; `mark` is appended to what it writes. */
  release: (id: string, version: string, key: Key, mark?: string) => Promise<string>;
  trust: (key: Key) => Promise<string>;
}

function site(t: TestContext): Site {
  const dir = tempDir(t);
  const dirs = ['--data-dir', join(dir, 'data'), '--plugin-dir', join(dir, 'plugins')];
  let n = 0;
  const cli = async (...args: string[]) => {
    const r = await runCli([...args, ...dirs]);
    assert.equal(r.code, 0, `databridge ${args.join(' ')}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  };
  return {
    dir,
    dirs,
    cli,
    release: async (id, version, key, mark = '') => {
      const component = id === 'acme.slow' ? 'Slow' : 'Other';
      const code = upperCode(component).replace('.toUpperCase()', `.toUpperCase() + '${mark}'`);
      const folder = makePlugin(join(dir, 'releases', String(++n)), { id, version, code, processors: [component] });
      await sign(folder, key);
      return folder;
    },
    trust: async (key) => {
      const file = join(dir, `key-${++n}.pub`);
      writeFileSync(file, key.publicKeyPem);
      const out = JSON.parse(await cli('trust', 'add', '--publisher', 'acme', '--key', file, '--json'));
      return out.keyId as string;
    },
  };
}

async function serve(t: TestContext, s: Site, args: string[] = []) {
  const server = await startServe([...s.dirs, ...args], { DATABRIDGE_LOG_LEVEL: 'warn' });
  let child: ChildProcess | null = server.child;
  const stop = async () => {
    if (!child) return;
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    child = null;
    await exited;
  };
  t.after(stop);
  // biome-ignore lint/suspicious/noExplicitAny: tests read response bodies field by field
  const call = async (method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> => {
    const headers: Record<string, string> = { authorization: `Bearer ${server.token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(server.base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  return { call, stop };
}

/** GetFile (N files) → Slow, one FlowFile per trigger → PutFile: FlowFiles are files in, files out. */
function slowFlow(s: Site, n: number): { flowFile: string; out: string } {
  const input = join(s.dir, 'in');
  const out = join(s.dir, 'out');
  mkdirSync(input, { recursive: true });
  mkdirSync(out, { recursive: true });
  for (let i = 0; i < n; i++) writeFileSync(join(input, `item-${String(i).padStart(3, '0')}.txt`), `item ${i}`);
  const flowFile = join(s.dir, 'flow.json');
  writeFileSync(
    flowFile,
    JSON.stringify({
      name: 'slow',
      processors: [
        { id: 'read', type: 'GetFile', properties: { 'Input Directory': input, 'Keep Source File': 'false' } },
        {
          id: 'slow',
          type: 'Slow',
          schedule: { period: '100 ms', batchSize: 1 },
          penaltyDuration: '200 ms',
        },
        {
          id: 'write',
          type: 'PutFile',
          properties: { Directory: out, 'Conflict Resolution Strategy': 'fail' },
          autoTerminate: ['success', 'failure'],
        },
      ],
      connections: [
        { source: 'read', relationship: 'success', destination: 'slow' },
        { source: 'slow', relationship: 'success', destination: 'write' },
      ],
    }),
  );
  return { flowFile, out };
}

describe('databridge serve: trust guards while it runs', () => {
  test('a release revoked over the API and a key revoked with the CLI stop their plugins; queued FlowFiles stay queued', async (t) => {
    const s = site(t);
    const key = newKey();
    const otherKey = newKey();
    await s.trust(key);
    const otherKeyId = await s.trust(otherKey);
    await s.cli('plugin', 'install', await s.release('acme.slow', '1.0.0', key));
    await s.cli('plugin', 'install', await s.release('acme.other', '1.0.0', otherKey));
    const N = 40;
    const { flowFile, out } = slowFlow(s, N);
    const api = await serve(t, s, ['--flow', flowFile]);
    const written = () => readdirSync(out).length;
    const queued = async () =>
      (await api.call('GET', '/api/flow')).body.connections.reduce(
        (n: number, c: { queued: number }) => n + c.queued,
        0,
      );
    await until('some FlowFiles through', () => written() >= 3);

    const revoked = await api.call('POST', '/api/trust/revoked-releases', {
      pluginId: 'acme.slow',
      version: '1.0.0',
      reason: 'ships a backdoor',
    });
    assert.ok(revoked.status < 300, JSON.stringify(revoked.body));
    // when the API answered, the plugin was stopped
    const slow = (await api.call('GET', '/api/plugins/acme.slow')).body;
    assert.equal(slow.status, 'error');
    assert.match(slow.statusReason, /^RELEASE_REVOKED: acme\.slow@1\.0\.0 was revoked: ships a backdoor/);
    const alerts = (await api.call('GET', '/api/alerts')).body as { code: string; plugin: string }[];
    assert.ok(alerts.some((a) => a.code === 'RELEASE_REVOKED' && a.plugin === 'acme.slow'));
    const audit = (await api.call('GET', '/api/audit?target=acme.slow&action=withdraw')).body as { actor: string }[];
    assert.equal(audit.length, 1);
    assert.equal(audit[0]!.actor, 'token:admin', 'the audit log names the token that revoked it');
    await until(
      'the processor stopped',
      async () => (await api.call('GET', '/api/flow')).body.processors.slow.state === 'stopped',
    );
    const through = written();
    assert.ok(through < N, 'FlowFiles were still queued when it stopped');
    assert.equal(through + (await queued()), N, 'every FlowFile written or still queued');

    // the CLI writes the revocation to the state store; the server finds it and stops the plugin
    await s.cli('trust', 'revoke', otherKeyId, '--reason', 'leaked');
    await until(
      'acme.other stopped',
      async () => (await api.call('GET', '/api/plugins/acme.other')).body.status === 'error',
    );
    const other = (await api.call('GET', '/api/plugins/acme.other')).body;
    assert.match(other.statusReason, /^KEY_REVOKED: .* was revoked: leaked/);
    assert.equal(other.signature.state, 'invalid');

    // nothing was lost or written twice while both were stopped
    assert.equal(written() + (await queued()), N);
    await api.stop();
  });

  test('a lower version swapped in by hand is refused by the watcher, by reload and at the next start, never served', async (t) => {
    const s = site(t);
    const key = newKey();
    await s.trust(key);
    await s.cli('plugin', 'install', await s.release('acme.slow', '1.2.0', key));
    await s.cli('plugin', 'install', await s.release('acme.slow', '1.3.0', key));
    const N = 30;
    const { flowFile, out } = slowFlow(s, N);
    const api = await serve(t, s, ['--watch', '--flow', flowFile]);
    assert.equal((await api.call('GET', '/api/plugins/acme.slow')).body.version, '1.3.0');
    const written = () => readdirSync(out).length;
    await until('some FlowFiles through', () => written() >= 2);

    const swap = async () => {
      const old = await s.release('acme.slow', '1.2.0', key, ' old');
      rmSync(join(s.dir, 'plugins', 'acme.slow'), { recursive: true, force: true });
      cpSync(old, join(s.dir, 'plugins', 'acme.slow'), { recursive: true });
    };
    await swap();
    await until('the watcher refused it', async () =>
      ((await api.call('GET', '/api/alerts')).body as { code: string }[]).some((a) => a.code === 'VERSION_ROLLBACK'),
    );
    // 1.3.0's files were swapped out: it stops, saying what was found
    await until(
      'the plugin stopped',
      async () => (await api.call('GET', '/api/plugins/acme.slow')).body.status === 'error',
    );
    let info = (await api.call('GET', '/api/plugins/acme.slow')).body;
    assert.equal(info.version, '1.3.0');
    assert.match(info.statusReason, /^VERSION_ROLLBACK: the plugin folder holds 1\.2\.0, .* no longer on disk/);
    await until(
      'the processor stopped',
      async () => (await api.call('GET', '/api/flow')).body.processors.slow.state === 'stopped',
    );
    const flow = (await api.call('GET', '/api/flow')).body;
    const queued = flow.connections.reduce((n: number, c: { queued: number }) => n + c.queued, 0);
    assert.ok(written() < N);
    assert.equal(written() + queued, N, 'every FlowFile written or still queued');
    assert.ok(
      readdirSync(out).every(
        (f) =>
          !readFileSync(join(out, f), 'utf8').endsWith(' OLD') && !readFileSync(join(out, f), 'utf8').endsWith(' old'),
      ),
      '1.2.0 never served',
    );

    const reload = await api.call('POST', '/api/plugins/acme.slow/reload');
    assert.ok(reload.status >= 400);
    assert.equal(reload.body.error.code, 'RELOAD_FAILED');
    assert.match(reload.body.error.message, /VERSION_ROLLBACK/);
    await api.stop();

    const again = await serve(t, s);
    info = (await again.call('GET', '/api/plugins/acme.slow')).body;
    assert.equal(info.status, 'error');
    assert.match(info.statusReason, /^VERSION_ROLLBACK: the plugin folder holds 1\.2\.0, below 1\.3\.0/);
    const alerts = (await again.call('GET', '/api/alerts')).body as { code: string; message: string }[];
    assert.ok(alerts.some((a) => a.code === 'VERSION_ROLLBACK' && /1\.2\.0/.test(a.message)));
    await again.stop();
  });
});
