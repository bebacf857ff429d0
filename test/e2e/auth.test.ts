// The token guards every route that is not declared open, however the request target is spelled:
// requests go out on a raw socket, so nothing normalizes the target on the way.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, type TestContext, test } from 'node:test';
import { startApiServer } from '../helpers.ts';

const TOKEN = 'auth-test-token-0123456789';

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Sends one request exactly as written and reads the answer (the server closes after it). */
function raw(port: number, method: string, target: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const lines = [`${method} ${target} HTTP/1.1`, `Host: 127.0.0.1:${port}`, 'Connection: close'];
    for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
    socket.end(`${lines.join('\r\n')}\r\n\r\n`);
    const chunks: Buffer[] = [];
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const [head = '', ...rest] = text.split('\r\n\r\n');
      const [statusLine = '', ...headerLines] = head.split('\r\n');
      const out: Record<string, string> = {};
      for (const l of headerLines) {
        const i = l.indexOf(':');
        out[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers: out, body: rest.join('\r\n\r\n') });
    });
  });
}

async function start(t: TestContext) {
  const { port, manager } = await startApiServer(t, TOKEN);
  return { port, manager };
}

const auth = { Authorization: `Bearer ${TOKEN}` };

describe('authentication on the matched route', () => {
  test('a request without a valid token reaches no protected route, however the target is spelled', async (t) => {
    const { port, manager } = await start(t);
    const before = manager.list().length;
    const targets: [string, string][] = [
      ['GET', '/api/plugins'],
      ['GET', '/%61pi/plugins'],
      ['GET', '/%61%70%69/plugins'],
      ['GET', '/api/%70lugins'],
      ['GET', '/api/plugins/'],
      ['GET', '//api/plugins'],
      ['GET', '/api//plugins'],
      ['GET', '/./api/plugins'],
      ['GET', '/x/../api/plugins'],
      ['GET', '/API/plugins'],
      ['GET', '/Api/Plugins'],
      ['GET', `http://127.0.0.1:${port}/api/trust`],
      ['GET', `http://127.0.0.1:${port}/%61pi/trust`],
      ['GET', 'http://evil.example/api/trust'],
      ['GET', '/api/plugins?x=/healthz'],
      ['GET', '/api/plugins;/healthz'],
      ['GET', '/api/plugins#/healthz'],
      ['HEAD', '/api/plugins'],
      ['HEAD', '/%61pi/plugins'],
      ['OPTIONS', '/api/plugins'],
      ['OPTIONS', '*'],
      ['PUT', '/%61pi/plugins/acme.stamp/disable'],
      ['PUT', '/api/plugins/acme.stamp/disable'],
      ['POST', '/api/trust/keys'],
      ['POST', '/%61pi/namespaces'],
      ['DELETE', '/api/plugins/acme.stamp'],
      ['GET', '/api/events'],
      ['GET', '/%61pi/events'],
      ['GET', '/api/openapi.json'],
      ['GET', '/%61pi/openapi.json'],
      ['GET', '/metrics'],
      ['GET', '/%6detrics'],
      ['GET', '/METRICS'],
      ['GET', `http://127.0.0.1:${port}/metrics`],
      ['GET', '/api/plugins/%FF'],
      ['GET', `/api/plugins/${'a'.repeat(300)}`],
      ['GET', '/no/such/route'],
      ['GET', '/api/no-such'],
      ['PATCH', '/api/plugins'],
    ];
    for (const [method, target] of targets) {
      const tries: Record<string, string>[] = [{}, { Authorization: 'Bearer wrong-token' }, { Authorization: TOKEN }];
      for (const headers of tries) {
        const res = await raw(port, method, target, headers);
        assert.ok(
          res.status === 401 || res.status === 400,
          `${method} ${target} with ${JSON.stringify(headers)}: ${res.status} ${res.body.slice(0, 120)}`,
        );
        if (res.status === 400) {
          // only a target Node's HTTP parser itself refuses gets no 401: it never reaches a route
          assert.ok(!res.body.includes('"plugins"'), `${method} ${target}: no data`);
          continue;
        }
        if (method !== 'HEAD') {
          const body = JSON.parse(res.body) as { error: { code: string } };
          assert.equal(body.error.code, 'UNAUTHORIZED', `${method} ${target}`);
        }
      }
    }
    assert.equal(manager.list().length, before, 'nothing changed');
  });

  test('with the token, the same spellings reach the routes the router decodes them to', async (t) => {
    const { port } = await start(t);
    for (const target of ['/api/plugins', '/%61pi/plugins', `http://127.0.0.1:${port}/api/plugins`]) {
      const res = await raw(port, 'GET', target, auth);
      assert.equal(res.status, 200, `${target}: ${res.body.slice(0, 200)}`);
      assert.ok(Array.isArray(JSON.parse(res.body)), target);
    }
    assert.equal((await raw(port, 'HEAD', '/api/plugins', auth)).status, 200);
    assert.equal((await raw(port, 'GET', '/%6detrics', auth)).status, 200);
    assert.equal((await raw(port, 'GET', '/api/openapi.json', auth)).status, 200);
  });

  test('open routes are open: /healthz, the console files and the API description', async (t) => {
    const { port } = await start(t);
    for (const target of ['/healthz', '/', '/console/app.js', '/console/style.css', '/docs/api/json', '/docs/api/']) {
      const res = await raw(port, 'GET', target);
      assert.equal(res.status, 200, `${target}: ${res.status}`);
    }
    const health = JSON.parse((await raw(port, 'GET', '/%68ealthz')).body) as { status: string };
    assert.equal(health.status, 'ok');
  });

  test('framework errors come in the one shape, after authentication, without echoing the path', async (t) => {
    const { port } = await start(t);
    const bad = await raw(port, 'GET', '/api/plugins/%FF%3Cscript%3E', auth);
    assert.equal(bad.status, 400);
    const badBody = JSON.parse(bad.body) as { error: { code: string; message: string } };
    assert.equal(badBody.error.code, 'BAD_REQUEST');
    assert.ok(!bad.body.includes('script'), 'the path is not echoed');

    const longId = `acme.${'x'.repeat(120)}`;
    const notFound = await raw(port, 'GET', `/api/plugins/${longId}`, auth);
    assert.equal(notFound.status, 404, 'an id as long as the manifest allows reaches the route');
    assert.equal((JSON.parse(notFound.body) as { error: { code: string } }).error.code, 'PLUGIN_NOT_FOUND');

    const tooLong = await raw(port, 'GET', `/api/plugins/${'a'.repeat(300)}`, auth);
    assert.ok([400, 404, 414].includes(tooLong.status), `${tooLong.status}`);
    assert.ok(JSON.parse(tooLong.body).error.code, 'in the one shape');
    assert.ok(!tooLong.body.includes('a'.repeat(100)), 'the path is not echoed');

    const wrongMethod = await raw(port, 'POST', '/api/plugins/stats', auth);
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.headers.allow, 'DELETE, GET, HEAD');
    assert.equal((JSON.parse(wrongMethod.body) as { error: { code: string } }).error.code, 'METHOD_NOT_ALLOWED');

    const patch = await raw(port, 'PATCH', '/api/plugins/acme.x/enable', auth);
    assert.equal(patch.status, 405);
    assert.equal(patch.headers.allow, 'PUT');

    const unknown = await raw(port, 'GET', '/api/no-such-thing', auth);
    assert.equal(unknown.status, 404);
    assert.equal((JSON.parse(unknown.body) as { error: { code: string } }).error.code, 'ROUTE_NOT_FOUND');
  });
});
