/**
 * The protocol check through `databridge serve`: a plugin that writes
 * malformed messages to its sandbox's channel itself (the hostile fixture of
 * test/sandbox/protocol.test.ts) runs in a served flow beside a healthy one.
 * The server stays up, /api/alerts says SANDBOX_PROTOCOL_VIOLATION and what
 * was wrong, the hostile sandbox restarts, and every FlowFile of both flows
 * is written out exactly once (files in, files out).
 */

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { probeConfinement } from '../../src/sandbox/confinement.ts';
import { ROOT, runCli, sandboxWritable, startServe, tempDir, until } from '../helpers.ts';
import { makePlugin, newKey, sign, upperCode } from '../plugin-fixtures.ts';

const FIXTURE = join(ROOT, 'test', 'fixtures', 'hostile', 'protocol');
const N = 6;

const report = await probeConfinement();
const noProcess = report.bwrap.ok ? false : `bubblewrap is not usable here: ${report.bwrap.detail}`;

/** A served flow: hostile (GetFile → tag → Forger → PutFile) and healthy (GetFile → Healthy → PutFile). */
async function site(t: TestContext, forge: string, mode: 'process' | 'worker') {
  // registered before the folder's removal (after-hooks run in order): the server stops first
  let child: ChildProcess | undefined;
  t.after(async () => {
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  });
  const dir = tempDir(t);
  const dirs = ['--data-dir', join(dir, 'data'), '--plugin-dir', join(dir, 'plugins')];
  const grant = join(dir, 'grant');
  mkdirSync(grant);
  sandboxWritable(grant);
  const pluginDir = join(dir, 'plugins');
  const folder = join(pluginDir, 'evil.protocol');
  cpSync(FIXTURE, folder, { recursive: true });
  const manifest = join(folder, 'manifest.json');
  writeFileSync(manifest, readFileSync(manifest, 'utf8').replaceAll('${GRANT}', grant));
  const healthy = makePlugin(pluginDir, { id: 'good.healthy', publisher: 'good', code: upperCode('Healthy') });
  for (const [plugin, publisher] of [
    [folder, 'evil'],
    [healthy, 'good'],
  ] as const) {
    const key = newKey();
    await sign(plugin, key);
    const pub = join(dir, `${publisher}.pub`);
    writeFileSync(pub, key.publicKeyPem);
    const r = await runCli(['trust', 'add', '--publisher', publisher, '--key', pub, ...dirs]);
    assert.equal(r.code, 0, r.stderr);
  }
  const io = (name: string) => {
    const input = join(dir, `${name}-in`);
    const out = join(dir, `${name}-out`);
    mkdirSync(input);
    mkdirSync(out);
    for (let i = 0; i < N; i++) writeFileSync(join(input, `${name}-${i}.txt`), `${name} ${i}`);
    return { input, out };
  };
  const hostile = io('hostile');
  const good = io('good');
  const put = (id: string, out: string) => ({
    id,
    type: 'PutFile',
    properties: { Directory: out, 'Conflict Resolution Strategy': 'fail' },
    autoTerminate: ['success', 'failure'],
  });
  const flowFile = join(dir, 'flow.json');
  writeFileSync(
    flowFile,
    JSON.stringify({
      name: 'protocol',
      processors: [
        { id: 'read-hostile', type: 'GetFile', properties: { 'Input Directory': hostile.input } },
        // every FlowFile asks to forge; the fixture's marker (forged-0 in grant) lets it forge once
        { id: 'tag', type: 'UpdateAttribute', properties: { forge, grant, n: '0' } },
        { id: 'hostile', type: 'Forger', schedule: { batchSize: N }, penaltyDuration: '50 ms' },
        put('write-hostile', hostile.out),
        { id: 'read-good', type: 'GetFile', properties: { 'Input Directory': good.input } },
        { id: 'healthy', type: 'Healthy' },
        put('write-good', good.out),
      ],
      connections: [
        { source: 'read-hostile', relationship: 'success', destination: 'tag' },
        { source: 'tag', relationship: 'success', destination: 'hostile' },
        { source: 'hostile', relationship: 'success', destination: 'write-hostile' },
        { source: 'read-good', relationship: 'success', destination: 'healthy' },
        { source: 'healthy', relationship: 'success', destination: 'write-good' },
      ],
    }),
  );
  const modeArgs = mode === 'worker' ? ['--worker-plugin', '*'] : [];
  const server = await startServe([...dirs, '--flow', flowFile, ...modeArgs], { DATABRIDGE_LOG_LEVEL: 'warn' });
  child = server.child;
  // biome-ignore lint/suspicious/noExplicitAny: tests read response bodies field by field
  const get = async (path: string): Promise<any> => {
    const res = await fetch(server.base + path, {
      headers: { authorization: `Bearer ${server.token}` },
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(res.status, 200, `GET ${path}`);
    return res.json();
  };
  return { grant, hostile, good, get, child };
}

/** Files PutFile finished (it writes `.<name>.<id>.tmp` first, then renames it into place). */
const done = (out: string) => readdirSync(out).filter((f) => !f.startsWith('.')).length;

/** The files a PutFile wrote, as name → content. */
const written = (out: string) =>
  Object.fromEntries(readdirSync(out).map((f) => [f, readFileSync(join(out, f), 'utf8')] as const));

const expected = (name: string, map: (s: string) => string) =>
  Object.fromEntries(Array.from({ length: N }, (_, i) => [`${name}-${i}.txt`, map(`${name} ${i}`)] as const));

const CASES: [forge: string, why: RegExp][] = [
  ['unknown-level', /a log of level "no-such-level"/],
  ['duplicate-ids', /new FlowFile id [0-9a-f-]{36} twice/],
];

for (const mode of ['process', 'worker'] as const) {
  describe(`databridge serve: a ${mode} sandbox that breaks the protocol`, {
    skip: mode === 'process' && noProcess,
  }, () => {
    for (const [forge, why] of CASES) {
      test(`${forge}: the server keeps serving, the alert says why, every FlowFile written once`, async (t) => {
        const s = await site(t, forge, mode);
        const alert = await until('the violation at /api/alerts', async () =>
          ((await s.get('/api/alerts')) as { code: string; plugin: string; message: string }[]).find(
            (a) => a.code === 'SANDBOX_PROTOCOL_VIOLATION',
          ),
        );
        assert.equal(alert.plugin, 'evil.protocol');
        assert.match(alert.message, why);
        assert.equal(readFileSync(join(s.grant, 'forged-0'), 'utf8'), forge, 'the forged message was sent');

        // both flows complete: each file written once, the hostile side after its sandbox restarted
        await until('every FlowFile written', () => done(s.hostile.out) === N && done(s.good.out) === N, 60_000);
        const flow = await until('the queues empty', async () => {
          const f = (await s.get('/api/flow')) as { connections: { queued: number }[]; orphaned: number };
          return f.connections.every((c) => c.queued === 0) && f;
        });
        assert.equal(flow.orphaned, 0);
        assert.deepEqual(
          written(s.good.out),
          expected('good', (x) => x.toUpperCase()),
        );
        assert.deepEqual(
          written(s.hostile.out),
          expected('hostile', (x) => x),
        );

        const sandboxes = (await s.get('/api/sandboxes')) as { namespace: string; restarts: number; crashes: number }[];
        const box = (ns: string) => sandboxes.find((x) => x.namespace === ns)!;
        assert.ok(box('evil.protocol').restarts >= 1, JSON.stringify(box('evil.protocol')));
        assert.equal(box('good.healthy').crashes, 0, 'the healthy sandbox never died');
        const alerts = (await s.get('/api/alerts')) as { code: string }[];
        assert.equal(alerts.filter((a) => a.code === 'SANDBOX_PROTOCOL_VIOLATION').length, 1, 'one violation');
        assert.equal((await s.get('/healthz')).store.up, true);
        assert.equal(s.child.exitCode, null, 'the server is still running');
      });
    }
  });
}
