// GET /api/plugins, what the console polls: gzipped for clients that accept it, the same JSON as
// without, each coding with its own ETag, 304 for a poll that changed nothing, a new body after a change.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { startApiServer } from '../helpers.ts';

const TOKEN = 'list-test-token-0123456789';

/** A GET as sent, with the body as it came (node:http does not decompress). */
function get(port: number, headers: Record<string, string>) {
  return new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }>(
    (resolve, reject) => {
      const req = request(
        { port, host: '127.0.0.1', path: '/api/plugins', headers: { authorization: `Bearer ${TOKEN}`, ...headers } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (d: Buffer) => chunks.push(d));
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
        },
      );
      req.on('error', reject);
      req.end();
    },
  );
}

test('the plugin list goes gzipped where accepted, with its own ETag, and the same JSON', async (t) => {
  const { manager, port } = await startApiServer(t, TOKEN);

  const plain = await get(port, {});
  assert.equal(plain.status, 200);
  assert.equal(plain.headers['content-encoding'], undefined);
  assert.deepEqual(JSON.parse(plain.body.toString()), JSON.parse(JSON.stringify(manager.list())));

  const zipped = await get(port, { 'accept-encoding': 'gzip, deflate, br' });
  assert.equal(zipped.status, 200);
  assert.equal(zipped.headers['content-encoding'], 'gzip');
  assert.equal(zipped.headers.vary, 'accept-encoding');
  assert.ok(zipped.body.length < plain.body.length / 3, `${zipped.body.length} of ${plain.body.length} bytes`);
  assert.deepEqual(gunzipSync(zipped.body), plain.body);
  assert.notEqual(zipped.headers.etag, plain.headers.etag, 'each coding has its own ETag');

  for (const refused of ['gzip;q=0', 'gzip;q=0, *', 'identity', 'br']) {
    const res = await get(port, { 'accept-encoding': refused });
    assert.equal(res.headers['content-encoding'], undefined, refused);
  }
  assert.equal((await get(port, { 'accept-encoding': '*' })).headers['content-encoding'], 'gzip');

  // a poll that changed nothing: 304 for the representation it has, a body for the other
  const etag = zipped.headers.etag as string;
  assert.equal((await get(port, { 'accept-encoding': 'gzip', 'if-none-match': etag })).status, 304);
  assert.equal((await get(port, { 'accept-encoding': 'gzip', 'if-none-match': `"x", ${etag}` })).status, 304);
  assert.equal((await get(port, { 'if-none-match': etag })).status, 200);

  // a change makes a new list, in both codings
  await manager.disable(manager.list()[0]!.id, { force: true });
  const after = await get(port, { 'accept-encoding': 'gzip', 'if-none-match': etag });
  assert.equal(after.status, 200);
  assert.equal(JSON.parse(gunzipSync(after.body).toString())[0].enabled, false);
  assert.equal(JSON.parse((await get(port, {})).body.toString())[0].enabled, false);
});
