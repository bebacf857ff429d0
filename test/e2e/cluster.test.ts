/**
 * Two `databridge serve` nodes on one PostgreSQL database, driven through
 * their REST APIs as an operator would: an install through A runs on B, a
 * disable on B holds on A, B catches up after being down during an install,
 * and a database restart loses nothing; a key revoked through one node
 * stops the plugin on the other.
 */

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Page } from 'playwright-core';
import { packPlugin } from '../../src/plugin/bundle.ts';
import { CHROMIUM, CHROMIUM_FLAGS, runCli, startServe, tempDir, until } from '../helpers.ts';
import { PG_MISSING, type PgServer, startPostgres } from '../pg.ts';
import { makePlugin, newKey, sign, upperCode } from '../plugin-fixtures.ts';

interface Node {
  name: string;
  dirs: string[];
  child: ChildProcess | null;
  base: string;
  token: string;
}

let pg: PgServer | null = null;
before(async () => {
  if (!PG_MISSING) pg = await startPostgres();
});
after(() => pg?.destroy());

describe('a cluster of two nodes on one PostgreSQL database', { skip: PG_MISSING ?? false }, () => {
  test('install, disable, catch-up and a database restart, through the REST API of each node', async (t) => {
    const root = tempDir(t);
    const url = pg!.createDatabase('cluster_e2e');
    const key = newKey();
    const keyFile = join(root, 'dev.pub');
    (await import('node:fs')).writeFileSync(keyFile, key.publicKeyPem);
    // the trust store is the database's: trusting once trusts on every node
    const trusted = await runCli([
      'trust',
      'add',
      '--publisher',
      'acme',
      '--key',
      keyFile,
      '--namespace',
      'acme.*',
      '--store',
      url,
      '--data-dir',
      join(root, 'admin'),
    ]);
    assert.equal(trusted.code, 0, trusted.stderr);

    const bundle = async (version: string) => {
      const src = join(root, `src-${version}`);
      const dir = makePlugin(src, { id: 'acme.shout', version, code: upperCode('Shout') });
      await sign(dir, key);
      const file = join(root, `acme.shout-${version}.tgz`);
      await packPlugin(dir, file);
      return readFileSync(file);
    };
    const nodes: Record<'a' | 'b', Node> = {
      a: {
        name: 'a',
        dirs: ['--data-dir', join(root, 'a', 'data'), '--plugin-dir', join(root, 'a', 'plugins')],
        child: null,
        base: '',
        token: '',
      },
      b: {
        name: 'b',
        dirs: ['--data-dir', join(root, 'b', 'data'), '--plugin-dir', join(root, 'b', 'plugins')],
        child: null,
        base: '',
        token: '',
      },
    };
    const start = async (n: Node) => {
      const s = await startServe([...n.dirs, '--store', url], { DATABRIDGE_LOG_LEVEL: 'warn' });
      Object.assign(n, { child: s.child, base: s.base, token: s.token });
    };
    const stop = async (n: Node) => {
      const child = n.child;
      if (!child) return;
      n.child = null;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    };
    t.after(async () => {
      await stop(nodes.a);
      await stop(nodes.b);
    });
    const api = async (n: Node, path: string, init: RequestInit = {}) => {
      const res = await fetch(`${n.base}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${n.token}`, ...(init.headers ?? {}) },
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null };
    };
    const plugin = async (n: Node) =>
      (await api(n, '/api/plugins/acme.shout')).body as {
        version: string;
        status: string;
        enabled: boolean;
        error?: unknown;
      } | null;

    await start(nodes.a);
    await start(nodes.b);
    // an operator's browser on A's console, there throughout
    let page: Page | null = null;
    if (existsSync(CHROMIUM)) {
      const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
      t.after(() => browser.close());
      page = await browser.newPage({ viewport: { width: 1280, height: 700 } });
      await page.goto(`${nodes.a.base}/?token=${nodes.a.token}`);
      await page.locator('tr[data-plugin="builtin.GenerateFlowFile"]').waitFor();
    }

    // 1. installed through A, it runs on B: verified there, not copied blindly
    const v1 = await api(nodes.a, '/api/plugins/install', {
      method: 'POST',
      headers: { 'content-type': 'application/gzip' },
      body: await bundle('1.0.0'),
    });
    assert.equal(v1.status, 201, JSON.stringify(v1.body));
    const onB = await until('acme.shout active on B', async () => {
      const p = await plugin(nodes.b);
      return p?.status === 'active' && p;
    });
    assert.equal(onB.version, '1.0.0');
    const validation = (await api(nodes.b, '/api/plugins/acme.shout/validation')).body as {
      signature: { state: string };
    };
    assert.equal(validation.signature.state, 'trusted', 'B checked the signature itself');

    // 2. disabled on B, it is disabled on A
    assert.equal((await api(nodes.b, '/api/plugins/acme.shout/disable', { method: 'PUT' })).status, 200);
    await until('disabled on A', async () => (await plugin(nodes.a))?.enabled === false);
    assert.equal((await api(nodes.a, '/api/plugins/acme.shout/enable', { method: 'PUT' })).status, 200);
    await until('enabled again on B', async () => (await plugin(nodes.b))?.enabled === true);

    // 3. B down during an install catches up when it starts
    await stop(nodes.b);
    const v2 = await api(nodes.a, '/api/plugins/install', {
      method: 'POST',
      headers: { 'content-type': 'application/gzip' },
      body: await bundle('1.1.0'),
    });
    assert.equal(v2.status, 201);
    await start(nodes.b);
    assert.equal((await plugin(nodes.b))?.version, '1.1.0', 'caught up before serving');

    // a rollback refused on one node is refused on all: the highest version is shared
    const old = await api(nodes.b, '/api/plugins/install', {
      method: 'POST',
      headers: { 'content-type': 'application/gzip' },
      body: await bundle('1.0.0'),
    });
    assert.equal(old.status, 409);
    assert.match(JSON.stringify(old.body), /VERSION_ROLLBACK/);

    // 4. the database restarted mid-way: nodes keep running and say the store is down; nothing is lost
    pg!.stop();
    try {
      const health = await until('A reports the store down', async () => {
        const res = await fetch(`${nodes.a.base}/healthz`);
        const body = (await res.json()) as { status: string; store: { up: boolean } };
        return body.status === 'degraded' && body;
      });
      assert.equal(health.store.up, false);
      assert.equal((await api(nodes.b, '/api/plugins/acme.shout')).body.status, 'active', 'B runs what it has');
      const refused = await api(nodes.a, '/api/plugins/acme.shout/disable', { method: 'PUT' });
      assert.equal(refused.status, 503, 'no change while the store is away');
      assert.equal(refused.body.error.code, 'STORE_UNAVAILABLE');
      assert.equal((await plugin(nodes.a))?.enabled, true, 'and nothing half-applied');
      // every console page says so
      await page?.locator('#store-down').waitFor({ state: 'visible', timeout: 15_000 });
    } finally {
      pg!.start();
    }
    await until('A reports the store back', async () => {
      const res = await fetch(`${nodes.a.base}/healthz`);
      return ((await res.json()) as { status: string }).status === 'ok';
    });
    await page?.locator('#store-down').waitFor({ state: 'hidden', timeout: 15_000 });
    const v3 = await until('an install after the restart', async () => {
      const r = await api(nodes.a, '/api/plugins/install', {
        method: 'POST',
        headers: { 'content-type': 'application/gzip' },
        body: await bundle('1.2.0'),
      });
      return r.status === 201 && r;
    });
    assert.equal(v3.body.plugin.version, '1.2.0');
    await until('1.2.0 on B after the restart', async () => (await plugin(nodes.b))?.version === '1.2.0');

    // the cluster view: both nodes, what each runs, no drift
    const cluster = await until('no drift', async () => {
      const c = (await api(nodes.b, '/api/cluster')).body as {
        enabled: boolean;
        nodes: { id: string; alive: boolean; address: string; plugins: Record<string, { version: string }> }[];
        plugins: Record<string, { version: string; drift: string[] }>;
        store: { kind: string; up: boolean };
      };
      return (
        c.nodes.length === 2 &&
        c.plugins['acme.shout']?.drift.length === 0 &&
        c.nodes.every((n) => n.plugins['acme.shout']?.version === '1.2.0') &&
        c
      );
    });
    assert.equal(cluster.store.kind, 'postgres');
    const forgetLive = await api(nodes.a, `/api/cluster/nodes/${cluster.nodes[0]!.id}`, { method: 'DELETE' });
    assert.equal(forgetLive.status, 409);
    assert.equal(forgetLive.body.error.code, 'NODE_ALIVE');
    assert.ok(cluster.nodes.every((n) => n.alive && n.address.startsWith('http://')));

    // the console shows it: both nodes, the version each runs, no drift
    if (page) {
      await page.locator('a[data-nav="cluster"]').click();
      await page.locator('table.cluster tbody tr').nth(1).waitFor();
      assert.equal(await page.locator('table.cluster tbody tr').count(), 2);
      assert.equal(await page.locator('td.drift').count(), 0);
      assert.match((await page.locator('p.store').textContent()) ?? '', /postgres.*up/);
      assert.match((await page.locator('table.cluster').textContent()) ?? '', /1\.2\.0/);
      if (process.env.DATABRIDGE_SCREENSHOTS) {
        await page.screenshot({ path: join(process.env.DATABRIDGE_SCREENSHOTS, 'cluster.png') });
      }
    }

    // and the plugin installed through A processes FlowFiles with B's folders
    await stop(nodes.b);
    const flow = join(root, 'flow.json');
    (await import('node:fs')).writeFileSync(
      flow,
      JSON.stringify({
        processors: [
          {
            id: 'gen',
            type: 'GenerateFlowFile',
            properties: { 'Custom Text': 'hi', 'Batch Size': '3' },
            schedule: { period: '1 sec' },
          },
          { id: 'shout', type: 'Shout', autoTerminate: ['success'] },
        ],
        connections: [{ source: 'gen', relationship: 'success', destination: 'shout' }],
      }),
    );
    const run = await runCli(['run', flow, '--duration', '2s', '--json', ...nodes.b.dirs, '--store', url]);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(JSON.parse(run.stdout).processors.shout.out >= 3);
  });

  test('a key revoked through one node stops the plugin its flow runs on the other; the queued FlowFiles stay queued', async (t) => {
    const root = tempDir(t);
    const url = pg!.createDatabase('cluster_revoke');
    const key = newKey();
    const keyFile = join(root, 'dev.pub');
    writeFileSync(keyFile, key.publicKeyPem);
    const admin = ['--store', url, '--data-dir', join(root, 'admin')];
    const trusted = await runCli(['trust', 'add', '--publisher', 'acme', '--key', keyFile, '--json', ...admin]);
    assert.equal(trusted.code, 0, trusted.stderr);
    const keyId = JSON.parse(trusted.stdout).keyId as string;
    const src = makePlugin(join(root, 'src'), { id: 'acme.shout', version: '1.0.0', code: upperCode('Shout') });
    await sign(src, key);
    const file = join(root, 'acme.shout.tgz');
    await packPlugin(src, file);

    const children: ChildProcess[] = [];
    // stopped before the temporary folder goes (a server whose data directory vanished cannot save its queues)
    const stopAll = async () => {
      for (const child of children.splice(0)) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
    };
    t.after(stopAll);
    const serveNode = async (name: string, extra: string[] = []) => {
      const dirs = ['--data-dir', join(root, name, 'data'), '--plugin-dir', join(root, name, 'plugins')];
      const s = await startServe([...dirs, '--store', url, ...extra], { DATABRIDGE_LOG_LEVEL: 'warn' });
      children.push(s.child);
      // biome-ignore lint/suspicious/noExplicitAny: tests read response bodies field by field
      return async (path: string, init: RequestInit = {}): Promise<{ status: number; body: any }> => {
        const res = await fetch(`${s.base}${path}`, {
          ...init,
          headers: { authorization: `Bearer ${s.token}`, ...(init.headers ?? {}) },
        });
        const text = await res.text();
        return { status: res.status, body: text ? JSON.parse(text) : null };
      };
    };
    const a = await serveNode('a');
    const installed = await a('/api/plugins/install', {
      method: 'POST',
      headers: { 'content-type': 'application/gzip' },
      body: readFileSync(file),
    });
    assert.equal(installed.status, 201, JSON.stringify(installed.body));

    // B starts with a flow through the plugin: files in, one FlowFile per trigger, files out
    const N = 40;
    const input = join(root, 'in');
    const out = join(root, 'out');
    mkdirSync(input);
    mkdirSync(out);
    for (let i = 0; i < N; i++) writeFileSync(join(input, `item-${String(i).padStart(3, '0')}.txt`), `item ${i}`);
    const flowFile = join(root, 'flow.json');
    writeFileSync(
      flowFile,
      JSON.stringify({
        processors: [
          { id: 'read', type: 'GetFile', properties: { 'Input Directory': input, 'Keep Source File': 'false' } },
          { id: 'shout', type: 'Shout', schedule: { period: '100 ms', batchSize: 1 }, penaltyDuration: '200 ms' },
          {
            id: 'write',
            type: 'PutFile',
            properties: { Directory: out, 'Conflict Resolution Strategy': 'fail' },
            autoTerminate: ['success', 'failure'],
          },
        ],
        connections: [
          { source: 'read', relationship: 'success', destination: 'shout' },
          { source: 'shout', relationship: 'success', destination: 'write' },
        ],
      }),
    );
    const b = await serveNode('b', ['--flow', flowFile]);
    await until('some FlowFiles through on B', () => readdirSync(out).length >= 3);

    const revoked = await a(`/api/trust/keys/${keyId}/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'leaked' }),
    });
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    assert.equal((await a('/api/plugins/acme.shout')).body.status, 'error', 'stopped on A before the answer');
    await until('stopped on B', async () => (await b('/api/plugins/acme.shout')).body.status === 'error');
    assert.match((await b('/api/plugins/acme.shout')).body.statusReason, /^KEY_REVOKED: .* was revoked: leaked/);
    const alerts = (await b('/api/alerts')).body as { code: string; plugin: string }[];
    assert.ok(alerts.some((x) => x.code === 'KEY_REVOKED' && x.plugin === 'acme.shout'));
    await until(
      'the processor stopped on B',
      async () => (await b('/api/flow')).body.processors.shout.state === 'stopped',
    );
    const flow = (await b('/api/flow')).body as { connections: { queued: number }[] };
    const queued = flow.connections.reduce((n, c) => n + c.queued, 0);
    const written = readdirSync(out).length;
    assert.ok(written < N, 'FlowFiles were still queued when it stopped');
    assert.equal(written + queued, N, 'every FlowFile written or still queued');
    await stopAll();
  });
});
