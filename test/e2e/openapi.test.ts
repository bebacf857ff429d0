// The served OpenAPI document is complete enough to build a client from, and true: a typed client is
// generated from it and type-checked, and every documented operation is called and each answer is
// checked against what the document says (status listed, body valid against its schema).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import openapiTS, { astToString } from 'openapi-typescript';
import { packPlugin } from '../../src/plugin/bundle.ts';
import { ROOT, startApiServer, tempDir } from '../helpers.ts';
import { makePlugin, newKey, sign, trustKey } from '../plugin-fixtures.ts';

const TOKEN = 'openapi-test-token-0123456789';

interface Operation {
  operationId?: string;
  responses: Record<string, { content?: Record<string, { schema?: object }> }>;
  security?: unknown[];
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
}

interface Answer {
  status: number;
  type: string;
  text: string;
}

async function start(t: TestContext) {
  const { dir, manager, base } = await startApiServer(t, TOKEN);
  const key = newKey();
  await trustKey(manager, key);
  const doc = (await (await fetch(`${base}/api/openapi.json`, { headers: bearer(TOKEN) })).json()) as Document;
  return { base, dir, manager, key, doc };
}

function bearer(token: string | null): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}

async function bundle(dir: string, key: ReturnType<typeof newKey>, id: string, version = '1.0.0'): Promise<Buffer> {
  const src = makePlugin(join(dir, 'src', `${id}-${version}`), { id, version });
  await sign(src, key);
  const file = join(dir, `${id}-${version}.tgz`);
  await packPlugin(src, file);
  return readFileSync(file);
}

function multipart(bytes: Buffer): { body: Buffer; type: string } {
  const boundary = 'openapi-test-boundary';
  const head = `--${boundary}\r\nContent-Disposition: form-data; name="bundle"; filename="b.tgz"\r\nContent-Type: application/gzip\r\n\r\n`;
  return {
    body: Buffer.concat([Buffer.from(head), bytes, Buffer.from(`\r\n--${boundary}--\r\n`)]),
    type: `multipart/form-data; boundary=${boundary}`,
  };
}

describe('the OpenAPI document', () => {
  test('a client generated from it with openapi-typescript type-checks against the success bodies', async (t) => {
    const { doc } = await start(t);
    const dir = tempDir(t);
    writeFileSync(join(dir, 'api.ts'), astToString(await openapiTS(doc as never)));
    // a program as a client author writes it: plain fetch, typed by the generated paths
    writeFileSync(
      join(dir, 'client.ts'),
      `import type { paths } from './api.ts';
type Json<R> = R extends { content: { 'application/json': infer B } } ? B : never;
type Plugin = Json<paths['/api/plugins/{id}']['get']['responses'][200]>;
type PluginList = Json<paths['/api/plugins/']['get']['responses'][200]>;
type Installed = Json<paths['/api/plugins/install']['post']['responses'][201]>;
type Stats = Json<paths['/api/plugins/stats']['get']['responses'][200]>;
type Status = Json<paths['/api/plugins/{id}/status']['get']['responses'][200]>;
type Namespace = Json<paths['/api/namespaces/{name}']['get']['responses'][200]>;
type NewNamespace = paths['/api/namespaces/']['post']['requestBody']['content']['application/json'];
type Trust = Json<paths['/api/trust/']['get']['responses'][200]>;
type Audit = Json<paths['/api/audit']['get']['responses'][200]>;
type Health = Json<paths['/healthz']['get']['responses'][200]>;
type NotFound = Json<paths['/api/plugins/{id}']['get']['responses'][404]>;
type InstallQuery = NonNullable<paths['/api/plugins/install']['post']['parameters']['query']>;
type Gzip = paths['/api/plugins/install']['post']['requestBody']['content']['application/gzip'];

async function get<T>(base: string, path: string): Promise<T> {
  const res = await fetch(base + path, { headers: { authorization: 'Bearer x' } });
  return (await res.json()) as T;
}

export async function main(base: string): Promise<string[]> {
  const plugin = await get<Plugin>(base, '/api/plugins/acme.x');
  const version: string = plugin.version;
  const enabled: boolean = plugin.enabled;
  const reason: string | null = plugin.statusReason;
  const ids: string[] = (await get<PluginList>(base, '/api/plugins/')).map((p) => p.id);
  const installed = await get<Installed>(base, '/api/plugins/install');
  const action: 'install' | 'upgrade' | 'downgrade' | 'reinstall' = installed.outcome.action;
  const total: number = (await get<Stats>(base, '/api/plugins/stats')).total;
  const status: 'active' | 'inactive' | 'error' | 'loading' = (await get<Status>(base, '/api/plugins/acme.x/status')).status;
  const memory: number | undefined = (await get<Namespace>(base, '/api/namespaces/etl')).limits.maxMemoryMB;
  const created: NewNamespace = { name: 'etl', displayName: 'ETL', limits: { maxMemoryMB: 64 } };
  const publishers: string[] = (await get<Trust>(base, '/api/trust/')).keys.map((k) => k.publisher);
  const actors: string[] = (await get<Audit>(base, '/api/audit')).map((e) => e.actor);
  const health: 'ok' | 'degraded' = (await get<Health>(base, '/healthz')).status;
  const code: string = (await get<NotFound>(base, '/api/plugins/nope.x')).error.code;
  const query: InstallQuery = { force: true };
  const upload: Gzip = 'bytes';
  return [version, String(enabled), String(reason), ...ids, action, String(total), status, String(memory),
    created.name, ...publishers, ...actors, health, code, String(query.force), String(upload)];
}
`,
    );
    // and one that reads a field no schema has: the check must catch it
    writeFileSync(
      join(dir, 'wrong.ts'),
      `import type { paths } from './api.ts';
type Plugin = paths['/api/plugins/{id}']['get']['responses'][200]['content']['application/json'];
export const read = (p: Plugin): string => p.noSuchField;
`,
    );
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          allowImportingTsExtensions: true,
          lib: ['ES2022', 'DOM'],
          types: [],
          skipLibCheck: true,
        },
        files: ['client.ts', 'wrong.ts'],
      }),
    );
    const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], {
      encoding: 'utf8',
    });
    const errors = tsc.stdout.split('\n').filter((l) => /error TS\d+/.test(l));
    assert.deepEqual(
      errors.filter((l) => !l.includes('wrong.ts(')),
      [],
      'the client type-checks against the generated types',
    );
    assert.equal(errors.length, 1, tsc.stdout);
    assert.match(errors[0]!, /wrong\.ts\(.*TS2339.*noSuchField/);
  });

  test('every documented operation answers with a documented status and a body valid against its schema', async (t) => {
    const { base, dir, manager, key, doc } = await start(t);
    // formats (date-time) are not checked: the stores write ISO strings, and the schema says so
    const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
    const called = new Set<string>();
    const problems: string[] = [];

    /** Calls one operation (path as documented, `actual` as sent) and checks the answer against the document. */
    async function call(
      method: string,
      path: string,
      actual: string = path,
      init: { body?: unknown; type?: string; token?: string | null; headers?: Record<string, string> } = {},
    ): Promise<Answer & { json: () => unknown }> {
      const headers: Record<string, string> = { ...bearer(init.token === undefined ? TOKEN : init.token) };
      let body: Uint8Array | string | undefined;
      if (Buffer.isBuffer(init.body)) body = new Uint8Array(init.body);
      else if (typeof init.body === 'string') body = init.body;
      else if (init.body !== undefined) body = JSON.stringify(init.body);
      if (body !== undefined) headers['content-type'] = init.type ?? 'application/json';
      Object.assign(headers, init.headers);
      const res = await fetch(base + actual, { method, headers, body });
      const text = await res.text();
      const answer = { status: res.status, type: res.headers.get('content-type') ?? '', text };
      const op = doc.paths[path]?.[method.toLowerCase()];
      const where = `${method} ${actual} → ${answer.status}`;
      if (!op) {
        problems.push(`${method} ${path} is not in the document`);
      } else {
        called.add(`${method} ${path}`);
        const documented = op.responses[String(answer.status)];
        if (!documented) problems.push(`${where}: status not documented (${Object.keys(op.responses).join(', ')})`);
        else if (answer.status === 204 || answer.status === 304) {
          if (text !== '') problems.push(`${where}: a body where none is documented`);
        } else {
          const media = answer.type.split(';')[0]!.trim();
          const content = documented.content?.[media];
          if (!content) problems.push(`${where}: ${media} is not a documented content type`);
          else if (media === 'application/json') {
            const validate = ajv.compile(content.schema ?? {});
            if (!validate(JSON.parse(text)))
              problems.push(`${where}: ${ajv.errorsText(validate.errors)} in ${text.slice(0, 300)}`);
          }
        }
      }
      return { ...answer, json: () => JSON.parse(text) };
    }

    // every operation that needs a token says so, and answers 401 without one
    for (const [path, ops] of Object.entries(doc.paths))
      for (const [method, op] of Object.entries(ops)) {
        if (!op.security?.length) continue;
        const res = await call(method.toUpperCase(), path, path.replace(/\{[^}]+\}/g, 'acme.x'), { token: null });
        assert.equal(res.status, 401, `${method} ${path}`);
      }

    assert.equal((await call('GET', '/healthz', '/healthz', { token: null })).status, 200);

    // plugins
    const v1 = await bundle(dir, key, 'acme.openapi');
    const installed = await call('POST', '/api/plugins/install', '/api/plugins/install', {
      body: v1,
      type: 'application/gzip',
    });
    assert.equal(installed.status, 201, installed.text);
    const asInstalled = installed.json() as { plugin: { id: string } };
    assert.deepEqual(
      asInstalled.plugin,
      JSON.parse(JSON.stringify(manager.registry.get('acme.openapi'))),
      'the serializer kept every field of the plugin',
    );
    assert.equal(
      (await call('POST', '/api/plugins/install', undefined, { body: v1, type: 'application/gzip' })).status,
      409,
    );
    const form = multipart(await bundle(dir, key, 'acme.openapi', '1.1.0'));
    assert.equal(
      (await call('POST', '/api/plugins/install', undefined, { body: form.body, type: form.type })).status,
      201,
    );
    assert.equal(
      (await call('POST', '/api/plugins/install', undefined, { body: 'x', type: 'multipart/form-data' })).status,
      400,
    );
    assert.equal(
      (await call('POST', '/api/plugins/install', undefined, { body: 'x', type: 'text/plain' })).status,
      415,
    );
    assert.equal(
      (
        await call('POST', '/api/plugins/install', undefined, {
          body: Buffer.from('not a tgz'),
          type: 'application/gzip',
        })
      ).status,
      422,
    );
    assert.equal(
      (
        await call('POST', '/api/plugins/install', '/api/plugins/install?force=maybe', {
          body: v1,
          type: 'application/gzip',
        })
      ).status,
      400,
    );

    const list = await call('GET', '/api/plugins/');
    assert.equal(list.status, 200);
    const etag = (await fetch(`${base}/api/plugins/`, { headers: bearer(TOKEN) })).headers.get('etag')!;
    assert.equal((await call('GET', '/api/plugins/', undefined, { headers: { 'if-none-match': etag } })).status, 304);
    assert.equal((await call('GET', '/api/plugins/search', '/api/plugins/search?q=openapi&enabled=true')).status, 200);
    assert.equal((await call('GET', '/api/plugins/search', '/api/plugins/search?enabled=maybe')).status, 400);
    const stats = await call('GET', '/api/plugins/stats');
    assert.deepEqual(stats.json(), JSON.parse(JSON.stringify(manager.stats())), 'the serializer kept every count');

    const one = await call('GET', '/api/plugins/{id}', '/api/plugins/acme.openapi');
    assert.deepEqual(one.json(), JSON.parse(JSON.stringify(manager.get('acme.openapi'))), 'every field of the plugin');
    assert.equal((await call('GET', '/api/plugins/{id}', '/api/plugins/acme.none')).status, 404);
    assert.equal((await call('GET', '/api/plugins/{id}', '/api/plugins/Not%20An%20Id')).status, 400);
    assert.equal((await call('PUT', '/api/plugins/{id}/disable', '/api/plugins/acme.openapi/disable')).status, 200);
    assert.equal(
      (await call('PUT', '/api/plugins/{id}/disable', '/api/plugins/acme.openapi/disable?force=maybe')).status,
      400,
    );
    assert.equal((await call('PUT', '/api/plugins/{id}/enable', '/api/plugins/acme.openapi/enable')).status, 200);
    assert.equal((await call('PUT', '/api/plugins/{id}/enable', '/api/plugins/acme.none/enable')).status, 404);
    assert.equal((await call('POST', '/api/plugins/{id}/reload', '/api/plugins/acme.openapi/reload')).status, 200);
    assert.equal((await call('POST', '/api/plugins/{id}/reload', '/api/plugins/acme.none/reload')).status, 404);
    assert.equal((await call('GET', '/api/plugins/{id}/status', '/api/plugins/acme.openapi/status')).status, 200);
    assert.equal((await call('GET', '/api/plugins/{id}/status', '/api/plugins/acme.none/status')).status, 404);
    const validation = await call('GET', '/api/plugins/{id}/validation', '/api/plugins/acme.openapi/validation');
    assert.equal(validation.status, 200);
    assert.equal((validation.json() as { history: unknown[] }).history.length, 2);
    assert.equal((await call('GET', '/api/plugins/{id}/validation', '/api/plugins/acme.none/validation')).status, 404);

    // namespaces
    const ns = { name: 'etl', displayName: 'ETL', limits: { maxMemoryMB: 64 } };
    assert.equal((await call('POST', '/api/namespaces/', undefined, { body: ns })).status, 201);
    assert.equal((await call('POST', '/api/namespaces/', undefined, { body: ns })).status, 409);
    for (const bad of [
      { name: 'x', limits: { maxMemoryMB: '5' } },
      { name: 'x', displayName: null },
      { name: 'x', limits: { maxMemoryMB: 1e308 } },
      { name: 'X Y' },
    ])
      assert.equal((await call('POST', '/api/namespaces/', undefined, { body: bad })).status, 400, JSON.stringify(bad));
    assert.equal(
      (await call('POST', '/api/namespaces/', undefined, { body: '{"name":', type: 'application/json' })).status,
      400,
    );
    assert.equal((await call('GET', '/api/namespaces/')).status, 200);
    assert.equal((await call('GET', '/api/namespaces/{name}', '/api/namespaces/etl')).status, 200);
    assert.equal((await call('GET', '/api/namespaces/{name}', '/api/namespaces/none')).status, 404);
    const put = await call('PUT', '/api/namespaces/{name}', '/api/namespaces/etl', {
      body: { limits: { maxExecutionMS: 1000 } },
    });
    assert.equal(put.status, 200);
    assert.equal(
      (await call('PUT', '/api/namespaces/{name}', '/api/namespaces/etl', { body: { limits: { cpu: 1 } } })).status,
      400,
    );
    assert.equal((await call('PUT', '/api/namespaces/{name}', '/api/namespaces/none', { body: {} })).status, 404);
    assert.equal((await call('DELETE', '/api/namespaces/{name}', '/api/namespaces/etl')).status, 204);
    assert.equal((await call('DELETE', '/api/namespaces/{name}', '/api/namespaces/etl')).status, 404);

    // trust
    assert.equal((await call('GET', '/api/trust/')).status, 200);
    const other = newKey();
    const added = await call('POST', '/api/trust/keys', undefined, {
      body: { publisher: 'beta', publicKey: other.publicKeyPem },
    });
    assert.equal(added.status, 201);
    const keyId = (added.json() as { keyId: string }).keyId;
    assert.equal(
      (await call('POST', '/api/trust/keys', undefined, { body: { publisher: 'evil', publicKey: other.publicKeyPem } }))
        .status,
      409,
    );
    assert.equal(
      (
        await call('POST', '/api/trust/keys', undefined, {
          body: { publisher: 'Bad Name', publicKey: other.publicKeyPem },
        })
      ).status,
      400,
    );
    assert.equal(
      (
        await call('POST', '/api/trust/keys', '/api/trust/keys?replace=true', {
          body: { publisher: 'evil', publicKey: other.publicKeyPem },
        })
      ).status,
      201,
    );
    const revoke = '/api/trust/keys/{keyId}/revoke';
    assert.equal(
      (await call('POST', revoke, `/api/trust/keys/${keyId}/revoke`, { body: { reason: 'test' } })).status,
      200,
    );
    assert.equal((await call('POST', revoke, '/api/trust/keys/0123456789abcdef/revoke', { body: {} })).status, 404);
    assert.equal((await call('POST', revoke, '/api/trust/keys/nothex/revoke', { body: {} })).status, 400);
    const release = { pluginId: 'acme.openapi', version: '0.9.0' };
    assert.equal((await call('POST', '/api/trust/revoked-releases', undefined, { body: release })).status, 201);
    for (const bad of [
      { pluginId: '', version: '1.0.0' },
      { pluginId: 'acme.openapi', version: 'not-semver' },
      { pluginId: 'Acme', version: '1.0.0' },
    ])
      assert.equal((await call('POST', '/api/trust/revoked-releases', undefined, { body: bad })).status, 400);

    // observation
    assert.equal((await call('GET', '/api/alerts', '/api/alerts?limit=5')).status, 200);
    assert.equal((await call('GET', '/api/alerts', '/api/alerts?limit=0')).status, 400);
    const audit = await call('GET', '/api/audit', '/api/audit?limit=50');
    assert.equal(audit.status, 200);
    assert.equal((await call('GET', '/api/audit', '/api/audit?before=x')).status, 400);
    assert.equal((await call('GET', '/api/sandboxes')).status, 200);
    assert.equal((await call('GET', '/api/flow')).status, 200);
    assert.equal((await call('GET', '/api/cluster')).status, 200);
    assert.equal((await call('DELETE', '/api/cluster/nodes/{id}', '/api/cluster/nodes/n1')).status, 404);
    assert.equal((await call('GET', '/metrics')).status, 200);
    {
      // the stream never ends: read its first event, then hang up
      const abort = new AbortController();
      const res = await fetch(`${base}/api/events`, { headers: bearer(TOKEN), signal: abort.signal });
      const op = doc.paths['/api/events']!.get!;
      assert.ok(op.responses['200']?.content?.['text/event-stream'], 'the stream is documented as text/event-stream');
      assert.equal(res.headers.get('content-type')?.split(';')[0], 'text/event-stream');
      const first = await res.body!.getReader().read();
      assert.match(new TextDecoder().decode(first.value), /event: hello/);
      abort.abort();
      called.add('GET /api/events');
    }

    // tokens and roles, where the server has them
    if (doc.paths['/api/tokens']) {
      assert.equal((await call('GET', '/api/whoami')).status, 200);
      assert.equal((await call('GET', '/api/tokens')).status, 200);
      const made = await call('POST', '/api/tokens', undefined, { body: { name: 'dash', role: 'viewer' } });
      assert.equal(made.status, 201, made.text);
      const viewer = (made.json() as { token: string }).token;
      assert.equal(
        (await call('POST', '/api/tokens', undefined, { body: { name: 'dash', role: 'viewer' } })).status,
        409,
      );
      // a viewer may read but not change: 403 is documented where a role above viewer is needed
      assert.equal((await call('GET', '/api/plugins/', undefined, { token: viewer })).status, 200);
      for (const [method, path, actual] of [
        ['PUT', '/api/plugins/{id}/enable', '/api/plugins/acme.openapi/enable'],
        ['POST', '/api/plugins/install', '/api/plugins/install'],
        ['DELETE', '/api/plugins/{id}', '/api/plugins/acme.openapi'],
        ['POST', '/api/namespaces/', '/api/namespaces/'],
        ['GET', '/api/tokens', '/api/tokens'],
      ] as const)
        assert.equal(
          (await call(method, path, actual, { token: viewer, body: method === 'GET' ? undefined : {} })).status,
          403,
          `${method} ${path}`,
        );
      assert.equal((await call('DELETE', '/api/tokens/{name}', '/api/tokens/dash')).status, 204);
      assert.equal((await call('DELETE', '/api/tokens/{name}', '/api/tokens/dash')).status, 404);
    }

    // and last, uninstall
    assert.equal((await call('DELETE', '/api/plugins/{id}', '/api/plugins/acme.openapi')).status, 204);
    assert.equal((await call('DELETE', '/api/plugins/{id}', '/api/plugins/acme.openapi')).status, 404);

    assert.deepEqual(problems, []);
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
    );
    assert.deepEqual(
      documented.filter((op) => !called.has(op)),
      [],
      'every documented operation was called',
    );
    const ids = Object.values(doc.paths).flatMap((ops) => Object.values(ops).map((op) => op.operationId));
    assert.ok(
      ids.every((id) => typeof id === 'string'),
      'every operation has an operationId',
    );
    assert.equal(new Set(ids).size, ids.length, 'operationIds are unique');
    for (const op of documented) {
      const responses = Object.keys(doc.paths[op.split(' ')[1]!]![op.split(' ')[0]!.toLowerCase()]!.responses);
      assert.ok(
        responses.some((s) => /^2\d\d$/.test(s)),
        `${op} documents its success answer (${responses.join(', ')})`,
      );
      // a route that takes a body can be sent one over the cap or of another type
      const operation = doc.paths[op.split(' ')[1]!]![op.split(' ')[0]!.toLowerCase()]! as { requestBody?: unknown };
      if (operation.requestBody)
        assert.ok(responses.includes('413') && responses.includes('415'), `${op} documents 413 and 415`);
    }
  });
});
