import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { createPluginManager, type PluginManager } from '../../src/index.ts';
import { packPlugin } from '../../src/plugin/bundle.ts';
import { buildServer } from '../../src/server/app.ts';
import { tempDir } from '../helpers.ts';
import { makePlugin, newKey, sign, trustKey } from '../plugin-fixtures.ts';

const TOKEN = 'test-token-0123456789';

interface Api {
  base: string;
  manager: PluginManager;
  dir: string;
  key: ReturnType<typeof newKey>;
  call: (
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
    // biome-ignore lint/suspicious/noExplicitAny: tests read response bodies field by field
  ) => Promise<{ status: number; body: any }>;
}

async function start(t: TestContext, options: Record<string, unknown> = {}): Promise<Api> {
  const dir = tempDir(t);
  const manager = await createPluginManager({
    dataDir: join(dir, 'data'),
    pluginDir: join(dir, 'plugins'),
    logLevel: false,
    ...options,
  });
  const { app } = await buildServer({ manager, token: TOKEN });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.after(async () => {
    await app.close();
    await manager.shutdown();
  });
  const address = app.server.address() as { port: number };
  const base = `http://127.0.0.1:${address.port}`;
  const key = newKey();
  await trustKey(manager, key);
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const init: RequestInit = { method, headers: { authorization: `Bearer ${TOKEN}`, ...headers } };
    if (Buffer.isBuffer(body)) {
      init.body = body;
      (init.headers as Record<string, string>)['content-type'] ??= 'application/gzip';
    } else if (body !== undefined) {
      init.body = JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
    }
    const res = await fetch(base + path, init);
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // not JSON (metrics)
    }
    return { status: res.status, body: parsed };
  };
  return { base, manager, dir, key, call };
}

async function bundle(api: Api, spec: Parameters<typeof makePlugin>[1], signed = true): Promise<Buffer> {
  const dir = makePlugin(join(api.dir, 'src', `${spec?.id}-${spec?.version ?? '1.0.0'}`), spec);
  await sign(dir, signed ? api.key : newKey());
  const file = join(api.dir, `${spec?.id}-${spec?.version ?? '1.0.0'}-${Math.random()}.tgz`);
  await packPlugin(dir, file);
  return readFileSync(file);
}

describe('REST API', () => {
  test('every /api route and /metrics answer 401 without the token or with a wrong one; /healthz is open', async (t) => {
    const api = await start(t);
    const doc = (await api.call('GET', '/api/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
    const routes = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((m) => [m.toUpperCase(), path.replace(/\{[^}]+\}/g, 'x1')] as const),
    );
    assert.ok(routes.length >= 20, `the OpenAPI document lists the routes (${routes.length})`);
    for (const [method, path] of [
      ...routes.filter(([, p]) => p !== '/healthz'),
      ['GET', '/api/openapi.json'] as const,
    ]) {
      for (const auth of [undefined, 'Bearer wrong', 'Basic abc']) {
        const res = await fetch(api.base + path, { method, headers: auth ? { authorization: auth } : {} });
        assert.equal(res.status, 401, `${method} ${path} with ${auth ?? 'no token'}`);
        assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'UNAUTHORIZED');
      }
    }
    assert.equal((await fetch(`${api.base}/healthz`)).status, 200);
    assert.equal((await fetch(`${api.base}/docs/api/`)).status, 200, 'the API page is served without the network');
  });

  test('install → enable → reload → disable → uninstall, checked in the store and the audit log', async (t) => {
    const api = await start(t);
    const tgz = await bundle(api, { id: 'acme.round', version: '1.0.0' });
    const installed = await api.call('POST', '/api/plugins/install', tgz);
    assert.equal(installed.status, 201, JSON.stringify(installed.body));
    assert.equal(installed.body.plugin.id, 'acme.round');
    assert.equal(installed.body.plugin.status, 'active');
    assert.equal((await api.call('GET', '/api/plugins/acme.round')).body.version, '1.0.0');
    assert.equal((await api.call('PUT', '/api/plugins/acme.round/disable')).body.enabled, false);
    assert.equal((await api.manager.store.getPluginState('acme.round'))?.enabled, false);
    assert.equal((await api.call('PUT', '/api/plugins/acme.round/enable')).body.status, 'active');
    assert.equal((await api.call('POST', '/api/plugins/acme.round/reload')).status, 200);
    const status = await api.call('GET', '/api/plugins/acme.round/status');
    assert.equal(status.body.status, 'active');
    const validation = await api.call('GET', '/api/plugins/acme.round/validation');
    assert.equal(validation.body.valid, true);
    assert.equal(validation.body.signer.publisher, 'acme');
    assert.equal(validation.body.history.length, 1);
    assert.equal((await api.call('PUT', '/api/plugins/acme.round/disable')).status, 200);
    assert.equal((await api.call('DELETE', '/api/plugins/acme.round')).status, 204);
    assert.equal((await api.call('GET', '/api/plugins/acme.round')).status, 404);
    const state = await api.manager.store.getPluginState('acme.round');
    assert.equal(state?.version, null);
    assert.equal(state?.highestVersion, '1.0.0');
    const audit = (await api.call('GET', '/api/audit?target=acme.round')).body as {
      action: string;
      result: string;
      actor: string;
    }[];
    assert.deepEqual(
      audit.map((a) => `${a.action}:${a.result}`),
      ['uninstall:ok', 'disable:ok', 'reload:ok', 'enable:ok', 'disable:ok', 'install:ok'],
    );
    assert.ok(
      audit.every((a) => a.actor === 'token:admin'),
      'the audit log names the token',
    );
    assert.deepEqual(
      (await api.manager.store.installHistory('acme.round')).map((h) => h.action),
      ['install', 'uninstall'],
    );
  });

  test('list, search, stats; install by multipart too', async (t) => {
    const api = await start(t);
    const form = new FormData();
    form.append(
      'bundle',
      new Blob([await bundle(api, { id: 'acme.csv-tools', manifest: { tags: ['text', 'csv'] } })]),
      'b.tgz',
    );
    const res = await fetch(`${api.base}/api/plugins/install`, {
      method: 'POST',
      body: form,
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(res.status, 201);
    const first = await fetch(`${api.base}/api/plugins`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const etag = first.headers.get('etag')!;
    const again = await fetch(`${api.base}/api/plugins`, {
      headers: { authorization: `Bearer ${TOKEN}`, 'if-none-match': etag },
    });
    assert.equal(again.status, 304, 'a poll that changed nothing costs no body');
    await api.call('PUT', '/api/plugins/builtin.GetFile/disable');
    const changed = await fetch(`${api.base}/api/plugins`, {
      headers: { authorization: `Bearer ${TOKEN}`, 'if-none-match': etag },
    });
    assert.equal(changed.status, 200, 'a change makes a new list');
    const list = (await api.call('GET', '/api/plugins')).body as { id: string }[];
    assert.ok(list.some((p) => p.id === 'acme.csv-tools') && list.some((p) => p.id === 'builtin.GetFile'));
    const byTags = (await api.call('GET', '/api/plugins/search?tag=text&tag=csv&enabled=true')).body as {
      id: string;
    }[];
    assert.deepEqual(
      byTags.map((p) => p.id),
      ['acme.csv-tools'],
    );
    const byText = (await api.call('GET', '/api/plugins/search?q=json&source=builtin')).body as { id: string }[];
    assert.deepEqual(
      byText.map((p) => p.id),
      ['builtin.EvaluateJsonPath'],
    );
    const stats = (await api.call('GET', '/api/plugins/stats')).body;
    assert.equal(stats.bySource.external, 1);
    assert.equal(stats.byStatus.inactive, 1, 'GetFile, disabled above');
    assert.equal(stats.byStatus.active, stats.total - 1);
  });

  test('errors: 400 bad input, 404 unknown, 409 conflicts, 413 too large, 415 wrong type, 422 refused with findings', async (t) => {
    const api = await start(t, { bundleLimits: { maxBytes: 64 * 1024 } });
    const expect = async (
      method: string,
      path: string,
      status: number,
      code: string,
      body?: unknown,
      headers?: Record<string, string>,
    ) => {
      const res = await api.call(method, path, body, headers);
      assert.equal(res.status, status, `${method} ${path}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, code, `${method} ${path}`);
      assert.equal(typeof res.body.error.message, 'string');
      return res.body.error;
    };
    await expect('GET', '/api/plugins/search?status=sleepy', 400, 'USAGE');
    await expect('GET', '/api/plugins/search?bogus=1', 400, 'USAGE');
    await expect('POST', '/api/namespaces', 400, 'USAGE', { name: 'Bad Name!' });
    await expect('POST', '/api/namespaces', 400, 'USAGE', { name: 'etl', limits: { maxMemoryMB: -1 } });
    await expect('POST', '/api/trust/keys', 400, 'KEY_INVALID', { publisher: 'acme', publicKey: 'not a key' });
    await expect('GET', '/api/plugins/acme.nope', 404, 'PLUGIN_NOT_FOUND');
    await expect('PUT', '/api/plugins/acme.nope/enable', 404, 'PLUGIN_NOT_FOUND');
    await expect('GET', '/api/namespaces/none', 404, 'NAMESPACE_NOT_FOUND');
    await expect('GET', '/api/nothing-here', 404, 'ROUTE_NOT_FOUND');
    await expect('POST', '/api/trust/keys/abcdef0123/revoke', 404, 'KEY_NOT_FOUND', {});

    assert.equal(
      (await api.call('POST', '/api/plugins/install', await bundle(api, { id: 'acme.base', version: '2.0.0' }))).status,
      201,
    );
    assert.equal(
      (
        await api.call(
          'POST',
          '/api/plugins/install',
          await bundle(api, { id: 'acme.app', manifest: { dependencies: { 'acme.base': '^2.0.0' } } }),
        )
      ).status,
      201,
    );
    const dependents = await expect('PUT', '/api/plugins/acme.base/disable', 409, 'PLUGIN_HAS_DEPENDENTS');
    assert.deepEqual(dependents.details.dependents, ['acme.app']);
    await expect('DELETE', '/api/plugins/acme.base', 409, 'PLUGIN_HAS_DEPENDENTS');
    const rollback = await expect(
      'POST',
      '/api/plugins/install',
      409,
      'INSTALL_CONFLICT',
      await bundle(api, { id: 'acme.base', version: '1.0.0' }),
    );
    assert.ok(rollback.details.findings.some((f: { code: string }) => f.code === 'VERSION_ROLLBACK'));
    assert.equal((await api.call('POST', '/api/namespaces', { name: 'etl' })).status, 201);
    await expect('POST', '/api/namespaces', 409, 'NAMESPACE_EXISTS', { name: 'etl' });
    await expect('DELETE', '/api/plugins/builtin.GetFile', 409, 'PLUGIN_BUILTIN');

    await expect('POST', '/api/plugins/install', 413, 'BODY_TOO_LARGE', Buffer.alloc(100 * 1024, 1));
    await expect('POST', '/api/plugins/install', 415, 'UNSUPPORTED_MEDIA_TYPE', { not: 'a bundle' });
    const refused = await expect(
      'POST',
      '/api/plugins/install',
      422,
      'INSTALL_REFUSED',
      await bundle(api, { id: 'acme.stranger' }, false),
    );
    assert.ok(refused.details.findings.some((f: { code: string }) => f.code === 'PUBLISHER_UNTRUSTED'));
    await expect('POST', '/api/plugins/install', 422, 'INSTALL_REFUSED', Buffer.from('not gzip at all'));
    const health = await fetch(`${api.base}/healthz`);
    assert.equal(health.status, 200, 'still up after every bad request');
  });

  test('two installs racing for one id end with one 201 and one 409', async (t) => {
    const api = await start(t);
    const tgz = await bundle(api, { id: 'acme.race' });
    const results = await Promise.all([
      api.call('POST', '/api/plugins/install', tgz),
      api.call('POST', '/api/plugins/install', tgz),
    ]);
    assert.deepEqual(results.map((r) => r.status).sort(), [201, 409]);
  });

  test('namespaces and trust: create, update limits, list, delete; add, list, revoke keys and releases', async (t) => {
    const api = await start(t);
    assert.equal(
      (await api.call('POST', '/api/namespaces', { name: 'etl', displayName: 'ETL', limits: { maxMemoryMB: 128 } }))
        .status,
      201,
    );
    const updated = await api.call('PUT', '/api/namespaces/etl', { limits: { maxMemoryMB: 64, maxExecutionMS: 2000 } });
    assert.deepEqual(updated.body.limits, { maxMemoryMB: 64, maxExecutionMS: 2000 });
    assert.equal((await api.call('GET', '/api/namespaces')).body.length, 1);
    assert.equal((await api.call('DELETE', '/api/namespaces/etl')).status, 204);
    const globex = newKey();
    const added = await api.call('POST', '/api/trust/keys', {
      publisher: 'globex',
      publicKey: globex.publicKeyPem,
      namespaces: ['globex.*'],
    });
    assert.equal(added.status, 201);
    assert.equal(added.body.keyId, globex.keyId);
    const revoked = await api.call('POST', `/api/trust/keys/${globex.keyId}/revoke`, { reason: 'lost laptop' });
    assert.equal(revoked.body.revokedReason, 'lost laptop');
    assert.equal(
      (await api.call('POST', '/api/trust/revoked-releases', { pluginId: 'globex.x', version: '1.0.0' })).status,
      201,
    );
    const trust = (await api.call('GET', '/api/trust')).body;
    assert.equal(trust.keys.length, 2);
    assert.equal(trust.revokedReleases[0].pluginId, 'globex.x');
  });

  test('the event stream sends status changes as they happen; metrics need the token', async (t) => {
    const api = await start(t);
    const controller = new AbortController();
    const res = await fetch(`${api.base}/api/events`, {
      headers: { authorization: `Bearer ${TOKEN}` },
      signal: controller.signal,
    });
    assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    const reader = res.body!.getReader();
    let text = '';
    const read = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        text += new TextDecoder().decode(value);
        if (text.includes('event: plugin.disabled')) return;
      }
    })();
    await new Promise((r) => setTimeout(r, 50));
    await api.call('PUT', '/api/plugins/builtin.LogAttribute/disable');
    await Promise.race([
      read,
      new Promise((_, reject) => setTimeout(() => reject(new Error(`no event in: ${text}`)), 20_000)),
    ]);
    controller.abort();
    assert.match(text, /event: plugin\.disabled\ndata: \{[^\n]*"pluginId":"builtin\.LogAttribute"/);
    const metrics = await api.call('GET', '/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.body as string, /databridge_plugins\{status="inactive"\} 1/);
    assert.match(metrics.body as string, /databridge_validation_failures_total/);
    assert.equal((await fetch(`${api.base}/metrics`)).status, 401);
    assert.deepEqual((await api.call('GET', '/api/flow')).body, { processors: {}, connections: [], orphaned: 0 });
    assert.deepEqual((await api.call('GET', '/api/alerts')).body, []);
  });
});
