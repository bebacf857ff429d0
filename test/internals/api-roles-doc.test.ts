// docs/api.md's table of the role each route needs says what the server does: every documented
// operation is in it with the role its route declares, and a token one role below gets 403.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createPluginManager } from '../../src/index.ts';
import { buildServer } from '../../src/server/app.ts';
import type { Principal } from '../../src/server/auth.ts';
import { ROOT, tempDir } from '../helpers.ts';

const ORDER = ['open', 'viewer', 'operator', 'admin'] as const;

function documented(): Map<string, string> {
  const doc = readFileSync(join(ROOT, 'docs', 'api.md'), 'utf8');
  const start = doc.indexOf('### Which role each route needs');
  assert.ok(start >= 0, 'docs/api.md has the roles table');
  const rows = new Map<string, string>();
  for (const line of doc.slice(start, doc.indexOf('\n## ', start)).split('\n')) {
    const m = /^\| `([A-Z]+ \/[^`]*)` \| (open|viewer|operator|admin) \|$/.exec(line);
    if (m) rows.set(m[1]!, m[2]!);
  }
  return rows;
}

test('docs/api.md names the role of every route, and a token one role below is refused', async (t) => {
  const dir = tempDir(t);
  const manager = await createPluginManager({
    dataDir: join(dir, 'data'),
    pluginDir: join(dir, 'plugins'),
    logLevel: false,
  });
  const principals: Record<string, Principal> = {
    viewer: { name: 'v', role: 'viewer' },
    operator: { name: 'o', role: 'operator' },
    admin: { name: 'a', role: 'admin' },
  };
  const { app } = await buildServer({ manager, token: 'unused', authenticate: (s) => principals[s] ?? null });
  t.after(async () => {
    await app.close();
    await manager.shutdown();
  });
  await app.ready();
  const spec = app.swagger() as { paths: Record<string, Record<string, { description?: string }>> };
  const served = new Map<string, string>();
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const text = op.description ?? '';
      const role = /No token needed/.test(text) ? 'open' : /`(viewer|operator|admin)` role/.exec(text)?.[1];
      assert.ok(role, `${method} ${path} says who may call it`);
      served.set(`${method.toUpperCase()} ${path.length > 1 ? path.replace(/\/$/, '') : path}`, role);
    }
  }
  const table = documented();
  for (const [route, role] of served) assert.equal(table.get(route), role, `docs/api.md: ${route}`);
  // the one hidden route (the OpenAPI document itself) is listed too; nothing else that is not served
  assert.deepEqual(
    [...table.keys()].filter((r) => !served.has(r)),
    ['GET /api/openapi.json'],
  );

  for (const [route, role] of table) {
    const below = ORDER[ORDER.indexOf(role as (typeof ORDER)[number]) - 1];
    if (!below || below === 'open') continue;
    const [method, path] = route.split(' ') as [string, string];
    const url = path.replace('{id}', 'acme.none').replace('{name}', 'none').replace('{keyId}', '0123456789abcdef');
    const res = await app.inject({
      method: method as 'GET',
      url,
      headers: { authorization: `Bearer ${below}` },
    });
    assert.equal(res.statusCode, 403, `${route} with a ${below} token`);
    assert.equal(res.json().error.code, 'FORBIDDEN_ROLE');
  }
});
