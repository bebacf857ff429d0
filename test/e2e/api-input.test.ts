// Input means what it says, and every refusal comes in the one error shape: no coercion of JSON
// bodies, semantic checks, a trusted key never silently moved, malformed bodies 400 (never 500),
// and the framework's own answers (header overflow, JSON that does not parse) without its codes
// or an echo of what was sent.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, type TestContext, test } from 'node:test';
import { startApiServer } from '../helpers.ts';
import { newKey } from '../plugin-fixtures.ts';

const TOKEN = 'input-test-token-0123456789';

async function start(t: TestContext) {
  const { port, manager } = await startApiServer(t, TOKEN);
  const call = async (method: string, path: string, body?: string | Uint8Array, type = 'application/json') => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': type }) },
      body,
    });
    const text = await res.text();
    return { status: res.status, text, error: (JSON.parse(text) as { error?: { code: string } }).error };
  };
  return { port, manager, call };
}

/** The one shape, and nothing of the framework's own. */
function oneShape(text: string): void {
  const body = JSON.parse(text) as { error: { code: string; message: string; details: unknown } };
  assert.deepEqual(Object.keys(body), ['error']);
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'details', 'message']);
  assert.doesNotMatch(text, /FST_|statusCode/);
}

describe('API input', () => {
  test('JSON bodies are not coerced, and values are checked for what they mean', async (t) => {
    const { call, manager } = await start(t);
    const refused: [string, string, unknown][] = [
      ['POST', '/api/namespaces', { name: 'etl', limits: { maxMemoryMB: '5' } }],
      ['POST', '/api/namespaces', { name: 'etl', displayName: null }],
      ['POST', '/api/namespaces', { name: 'etl', limits: { maxMemoryMB: 1e308 } }],
      ['POST', '/api/namespaces', { name: 'etl', limits: { maxExecutionMS: 86_400_001 } }],
      ['POST', '/api/namespaces', { name: 'etl', limits: { maxCPUPercent: 1.5 } }],
      ['POST', '/api/namespaces', { name: 'etl', enabled: 'true' }],
      ['POST', '/api/trust/revoked-releases', { pluginId: '', version: '1.0.0' }],
      ['POST', '/api/trust/revoked-releases', { pluginId: 'acme.upper', version: 'not-semver' }],
      ['POST', '/api/trust/revoked-releases', { pluginId: 'acme.upper', version: '1.0' }],
      ['POST', '/api/trust/revoked-releases', { pluginId: 'Acme Upper', version: '1.0.0' }],
      ['POST', '/api/trust/revoked-releases', { pluginId: 'acme.upper', version: 1 }],
    ];
    for (const [method, path, body] of refused) {
      const res = await call(method, path, JSON.stringify(body));
      assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`);
      assert.equal(res.error?.code, 'USAGE');
      oneShape(res.text);
    }
    assert.deepEqual(await manager.namespaces.list(), [], 'nothing was made');
    assert.deepEqual(await manager.trust.listRevokedReleases(), []);
    // a namespace update means what it says too
    assert.equal((await call('POST', '/api/namespaces', JSON.stringify({ name: 'etl' }))).status, 201);
    const put = await call('PUT', '/api/namespaces/etl', JSON.stringify({ displayName: null }));
    assert.equal(put.status, 400);
    assert.equal((await manager.namespaces.get('etl')).displayName, 'etl', 'not stored as ""');
    // at the limit's maximum it is taken, and query strings are still read as what they say
    assert.equal(
      (await call('PUT', '/api/namespaces/etl', JSON.stringify({ limits: { maxMemoryMB: 65_536 } }))).status,
      200,
    );
    assert.equal((await call('GET', '/api/plugins/search?enabled=true&tag=a&tag=b')).status, 200);
    assert.equal((await call('GET', '/api/audit?limit=2')).status, 200);
    assert.equal(
      (
        await call(
          'POST',
          '/api/trust/revoked-releases',
          JSON.stringify({ pluginId: 'acme.upper', version: '1.0.0-rc.1' }),
        )
      ).status,
      201,
    );
  });

  test('a key trusted for one publisher is not moved to another unless the request says replace', async (t) => {
    const { call, manager } = await start(t);
    const key = newKey();
    const add = (publisher: string, query = '') =>
      call('POST', `/api/trust/keys${query}`, JSON.stringify({ publisher, publicKey: key.publicKeyPem }));
    assert.equal((await add('acme')).status, 201);
    const moved = await add('evil');
    assert.equal(moved.status, 409);
    assert.equal(moved.error?.code, 'KEY_EXISTS');
    assert.match(moved.text, /acme/);
    const [held] = await manager.trust.list();
    assert.equal(held!.publisher, 'acme');
    assert.deepEqual(held!.namespaces, ['acme.*']);
    assert.equal((await add('acme')).status, 201, 'the same publisher again is fine');
    assert.equal((await add('evil', '?replace=true')).status, 201);
    const [now] = await manager.trust.list();
    assert.deepEqual([now!.publisher, now!.namespaces], ['evil', ['evil.*']]);
    const audit = await manager.store.listAudit({ action: 'trust.add' });
    assert.deepEqual(audit[0]!.details, {
      publisher: 'evil',
      namespaces: ['evil.*'],
      was: { publisher: 'acme', namespaces: ['acme.*'] },
    });
  });

  test('bodies that cannot be read are 400 in the one shape, never 500 and never echoed', async (t) => {
    const { call, port } = await start(t);
    const badJson = await call('POST', '/api/namespaces', '{"name": "etl", "secret-marker');
    assert.equal(badJson.status, 400);
    assert.equal(badJson.error?.code, 'BAD_REQUEST');
    assert.doesNotMatch(badJson.text, /secret-marker/);
    oneShape(badJson.text);
    const empty = await call('POST', '/api/namespaces', '');
    assert.equal(empty.status, 400);
    oneShape(empty.text);

    const boundary = 'b0undary';
    const head = `--${boundary}\r\nContent-Disposition: form-data; name="bundle"; filename="x.tgz"\r\n\r\n`;
    for (const [what, body, type] of [
      ['no boundary', `${head}abc\r\n--${boundary}--\r\n`, 'multipart/form-data'],
      ['cut short', `${head}abc`, `multipart/form-data; boundary=${boundary}`],
      ['no parts', `--${boundary}--\r\n`, `multipart/form-data; boundary=${boundary}`],
      ['garbage', 'not multipart at all', `multipart/form-data; boundary=${boundary}`],
    ] as const) {
      const res = await call('POST', '/api/plugins/install', body, type);
      assert.equal(res.status, 400, `${what}: ${res.text}`);
      assert.match(res.error?.code ?? '', /^(BAD_REQUEST|USAGE)$/, what);
      oneShape(res.text);
    }

    const media = await call('POST', '/api/namespaces', 'name=etl', 'application/x-www-form-urlencoded');
    assert.equal(media.status, 415);
    oneShape(media.text);
    const large = await call('POST', '/api/namespaces', JSON.stringify({ name: 'x'.repeat(2 * 1024 * 1024) }));
    assert.equal(large.status, 413);
    oneShape(large.text);

    // headers past Node's cap: the parser answers before any route, in our shape
    const overflow = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      const chunks: Buffer[] = [];
      socket.on('data', (d) => chunks.push(d));
      socket.on('error', reject);
      socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
      socket.write(`GET /api/plugins HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    });
    assert.match(overflow, /^HTTP\/1\.1 431 /);
    const body = overflow.slice(overflow.indexOf('\r\n\r\n') + 4);
    oneShape(body);
    assert.equal(JSON.parse(body).error.code, 'HEADERS_TOO_LARGE');
    assert.doesNotMatch(body, /aaaa/);
  });

  test('answers echo nothing of the request: no path, no unknown key, no library text; nosniff and no-store', async (t) => {
    const { call, port } = await start(t);
    const marker = 'zq-echo-marker';
    const answers = [
      await call('GET', `/api/${marker}/x`),
      await call('GET', `/no/${marker}`),
      await call('POST', '/api/namespaces', JSON.stringify({ name: 'etl', [`${marker}<script>`]: 1 })),
      await call('GET', `/api/alerts?${marker}=1`),
      await call('DELETE', `/api/cluster/nodes/${marker}%3Cscript%3E`),
      await call(
        'POST',
        '/api/trust/keys',
        JSON.stringify({
          publisher: 'acme',
          publicKey: `-----BEGIN PUBLIC KEY-----\n${marker}\n-----END PUBLIC KEY-----`,
        }),
      ),
    ];
    for (const a of answers) {
      assert.ok(a.status >= 400, a.text);
      oneShape(a.text);
      assert.ok(!a.text.includes(marker), `no echo: ${a.text}`);
    }
    assert.equal(answers[0]!.error!.code, 'ROUTE_NOT_FOUND');
    assert.equal(JSON.parse(answers[0]!.text).error.message, 'No route for this method and path');
    assert.equal(answers[2]!.error!.code, 'USAGE');
    assert.equal(answers[5]!.error!.code, 'KEY_INVALID');
    assert.doesNotMatch(answers[5]!.text, /DECODER|error:[0-9A-F]{8}|routines/, 'no OpenSSL text');
    for (const path of ['/api/plugins', '/api/nothing', '/healthz']) {
      const res = await fetch(`http://127.0.0.1:${port}${path}`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
      if (path.startsWith('/api')) assert.equal(res.headers.get('cache-control'), 'no-store', path);
      await res.text();
    }
  });

  test('statuses say what is wrong: trailing slash and missing files 404, unknown routes 404 to any token, 415, 400 for too many parts, CONNECT and QUERY in our shape', async (t) => {
    const { call, port } = await start(t);
    const rawAnswer = (text: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1');
        const chunks: Buffer[] = [];
        socket.on('data', (d) => chunks.push(d));
        socket.on('error', reject);
        socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
        socket.write(text);
      });
    const codeOf = (a: { text: string }) => (JSON.parse(a.text) as { error: { code: string } }).error.code;
    for (const path of ['/api/whoami/', '/metrics/']) {
      const a = await call('GET', path);
      assert.equal(a.status, 404, `${path}: ${a.text}`);
      assert.equal(codeOf(a), 'ROUTE_NOT_FOUND');
    }
    const missing = await fetch(`http://127.0.0.1:${port}/docs/api/static/no-such-file.js`);
    assert.equal(missing.status, 404, await missing.text());
    // a known path and another method is still 405 with Allow
    const patch = await call('PATCH', '/api/plugins');
    assert.equal(patch.status, 405);
    const made = await call('POST', '/api/tokens', JSON.stringify({ name: 'oncall', role: 'operator' }));
    const operator = (JSON.parse(made.text) as { token: string }).token;
    const unknown = await fetch(`http://127.0.0.1:${port}/api/plugins/acme.x/enable/`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${operator}` },
    });
    assert.equal(unknown.status, 404, await unknown.text());
    const text = await call('POST', '/api/namespaces', 'name=etl', 'text/plain');
    assert.equal(text.status, 415, text.text);
    assert.equal(text.error?.code, 'UNSUPPORTED_MEDIA_TYPE');
    const form = new FormData();
    for (let i = 0; i < 11; i++) form.append(`f${i}`, 'x');
    const parts = await fetch(`http://127.0.0.1:${port}/api/plugins/install`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
      body: form,
    });
    const partsText = await parts.text();
    assert.equal(parts.status, 400, partsText);
    assert.equal(JSON.parse(partsText).error.code, 'BAD_REQUEST');
    const query = await rawAnswer(
      `QUERY /api/plugins HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`,
    );
    assert.match(query, /^HTTP\/1\.1 405 /);
    assert.match(query, /\r\nallow: GET, HEAD\r\n/i);
    for (const [auth, status, code] of [
      [`Authorization: Bearer ${TOKEN}\r\n`, 405, 'METHOD_NOT_ALLOWED'],
      ['', 401, 'UNAUTHORIZED'],
    ] as const) {
      const answer = await rawAnswer(`CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n${auth}\r\n`);
      assert.match(answer, new RegExp(`^HTTP/1\\.1 ${status} `), answer);
      const body = answer.slice(answer.indexOf('\r\n\r\n') + 4);
      oneShape(body);
      assert.equal(JSON.parse(body).error.code, code);
    }
  });

  test('requests mean one thing: reserved and repeated namespaces, a release revoked twice, a private key, plugin ids, display names, a key twice', async (t) => {
    const { call, manager } = await start(t);
    const key = newKey();
    const json = (v: unknown) => JSON.stringify(v);
    const refused: [string, string, string, string][] = [
      [
        'POST',
        '/api/trust/keys',
        json({ publisher: 'acme', publicKey: key.publicKeyPem, namespaces: ['builtin.*'] }),
        'USAGE',
      ],
      [
        'POST',
        '/api/trust/keys',
        json({ publisher: 'acme', publicKey: key.publicKeyPem, namespaces: ['builtin'] }),
        'USAGE',
      ],
      [
        'POST',
        '/api/trust/keys',
        json({ publisher: 'acme', publicKey: key.publicKeyPem, namespaces: ['acme.*', 'acme.*'] }),
        'USAGE',
      ],
      ['POST', '/api/trust/keys', json({ publisher: 'acme', publicKey: key.privateKeyPem }), 'PRIVATE_KEY_SENT'],
      [
        'POST',
        '/api/trust/revoked-releases',
        json({ pluginId: 'builtin.GenerateFlowFile', version: '1.0.0' }),
        'USAGE',
      ],
      ['POST', '/api/namespaces', json({ name: 'ws', displayName: '   ' }), 'USAGE'],
      ['POST', '/api/namespaces', json({ name: 'cc', displayName: '\u0000\u202egnp.exe' }), 'USAGE'],
      ['POST', '/api/namespaces', '{"name":"dk","name":"dk2"}', 'BAD_REQUEST'],
      ['POST', '/api/namespaces', '{"name":"dk","limits":{"maxMemoryMB":64,"max\\u004demoryMB":128}}', 'BAD_REQUEST'],
      ['GET', '/api/plugins/acme..x', '', 'USAGE'],
      ['GET', '/api/plugins/ACME.UPPER', '', 'USAGE'],
      ['PUT', '/api/plugins/nope/enable', '', 'USAGE'],
    ];
    for (const [method, path, body, code] of refused) {
      const a = await call(method, path, body || undefined);
      assert.equal(a.status, 400, `${method} ${path} ${body}: ${a.text}`);
      assert.equal(a.error?.code, code, `${method} ${path} ${body}`);
    }
    assert.deepEqual(await manager.trust.list(), [], 'no key trusted');
    assert.deepEqual(
      (await manager.namespaces.list()).map((n) => n.name),
      [],
      'no namespace made',
    );
    // ids of both syntaxes reach the route
    assert.equal((await call('GET', '/api/plugins/builtin.LogAttribute')).status, 200);
    assert.equal((await call('GET', '/api/plugins/acme.nope')).error?.code, 'PLUGIN_NOT_FOUND');
    // a release revoked again: 200 with what was recorded the first time, and one audit entry
    const release = json({ pluginId: 'acme.upper', version: '1.0.0', reason: 'first' });
    const first = await call('POST', '/api/trust/revoked-releases', release);
    assert.equal(first.status, 201, first.text);
    const again = await call(
      'POST',
      '/api/trust/revoked-releases',
      json({ pluginId: 'acme.upper', version: '1.0.0', reason: 'second' }),
    );
    assert.equal(again.status, 200, again.text);
    assert.equal(JSON.parse(again.text).reason, 'first');
    assert.equal((await manager.trust.listRevokedReleases()).length, 1);
  });
});
