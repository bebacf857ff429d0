/**
 * The catalog's HTTP as a registry on the wire sees it: credentials, where
 * they go on a redirect, proxies and TLS settings from `.npmrc`, compressed
 * answers, the size cap, the deadline and the integrity check. The servers
 * here are small stand-ins on loopback (a redirecting mirror, a proxy, an
 * HTTPS registry with its own certificate) that record what they are sent;
 * what a real registry serves is tested against Verdaccio beside this.
 */

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { CatalogClient } from '../../src/catalog/client.ts';
import { matchesIntegrity } from '../../src/catalog/registry-http.ts';
import { isDataBridgeError } from '../../src/errors.ts';
import { selfSignedCert, tempDir } from '../helpers.ts';

interface Seen {
  url: string;
  headers: IncomingHttpHeaders;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, self: string) => void;

/** A server on `host` answering with `handler`, closed after the test; `seen` records every request. */
async function serve(
  t: TestContext,
  handler: Handler,
  options: { host?: string; tls?: { key: string; cert: string } } = {},
): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const host = options.host ?? '127.0.0.1';
  let self = '';
  const listener: http.RequestListener = (req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    handler(req, res, self);
  };
  const server = options.tls ? https.createServer(options.tls, listener) : http.createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  self = `${options.tls ? 'https' : 'http'}://${host}:${(server.address() as AddressInfo).port}/`;
  t.after(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: self, seen };
}

/** A TCP server that answers each connection with `answer` (what a broken or hostile HTTP server writes). */
async function serveRaw(t: TestContext, answer: (socket: Socket) => void): Promise<string> {
  const server = createServer((socket) => {
    socket.once('data', () => answer(socket));
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

const TARBALL = Buffer.from('not really a tarball, but bytes with an integrity');
const sri = (algorithm: string, bytes: Buffer) =>
  `${algorithm}-${createHash(algorithm).update(bytes).digest('base64')}`;

/** A packument for acme.tool 1.0.0 whose tarball is at `tarballBase`. */
function packument(tarballBase: string, integrity = sri('sha512', TARBALL)): string {
  return JSON.stringify({
    name: '@acme/databridge-tool',
    'dist-tags': { latest: '1.0.0' },
    versions: {
      '1.0.0': {
        name: '@acme/databridge-tool',
        version: '1.0.0',
        keywords: ['databridge-plugin'],
        databridge: { id: 'acme.tool', publisher: 'acme' },
        dist: { tarball: `${tarballBase}tool-1.0.0.tgz`, integrity },
      },
    },
  });
}

/** A registry serving acme.tool: its packument (gzipped when `gzip`) and its tarball. */
const registry =
  (options: { gzip?: boolean; integrity?: string; tarball?: Buffer } = {}): Handler =>
  (req, res, self) => {
    if (req.url === '/@acme%2fdatabridge-tool') {
      const body = Buffer.from(packument(self, options.integrity));
      if (options.gzip) res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end(options.gzip ? gzipSync(body) : body);
    } else if (req.url === '/tool-1.0.0.tgz') res.end(options.tarball ?? TARBALL);
    else res.writeHead(404).end('{}');
  };

/** The coded error `promise` rejects with. */
async function refusal(promise: Promise<unknown>): Promise<{ code: string; message: string; details: unknown }> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isDataBridgeError(err), `not a coded error: ${String(err)}`);
    return err;
  }
  assert.fail('no error');
}

describe('the catalog’s HTTP: credentials, redirects, proxies, TLS and limits', () => {
  test('credentials go to the registry; a redirect that leaves its host drops them, one that stays keeps them', async (t) => {
    const mirror = await serve(t, registry(), { host: '127.0.0.2' });
    const main = await serve(t, (req, res) => {
      if (req.url === '/@acme%2fdatabridge-tool') res.writeHead(302, { location: '/moved' }).end();
      else
        res.writeHead(301, { location: `${mirror.url}${req.url === '/moved' ? '@acme%2fdatabridge-tool' : ''}` }).end();
    });
    const npmrc = { [`${main.url.replace(/^http:/, '')}:_authToken`]: 'sekrit' };
    const client = new CatalogClient({ catalogs: [main.url], npmrc });
    const entry = await client.entry('acme.tool');
    assert.equal(entry.releases[0]?.version, '1.0.0');
    assert.deepEqual(
      main.seen.map((s) => [s.url, s.headers.authorization]),
      [
        ['/@acme%2fdatabridge-tool', 'Bearer sekrit'],
        ['/moved', 'Bearer sekrit'],
      ],
    );
    assert.deepEqual(
      mirror.seen.map((s) => [s.url, s.headers.authorization]),
      [['/@acme%2fdatabridge-tool', undefined]],
    );
    // the tarball is on the mirror's host: no credentials there either
    assert.deepEqual(await client.tarball(entry.releases[0]!, entry.catalog), TARBALL);
    assert.equal(mirror.seen.at(-1)?.headers.authorization, undefined);
  });

  test('a redirect loop or a redirect to another scheme: CATALOG_UNAVAILABLE saying so', async (t) => {
    const loop = await serve(t, (_req, res) => res.writeHead(302, { location: '/again' }).end());
    let err = await refusal(new CatalogClient({ catalogs: [loop.url] }).entry('acme.tool'));
    assert.equal(err.code, 'CATALOG_UNAVAILABLE');
    assert.match(err.message, /redirected .* more than 10 times/);
    assert.equal(loop.seen.length, 11);
    const elsewhere = await serve(t, (_req, res) => res.writeHead(302, { location: 'file:///etc/passwd' }).end());
    err = await refusal(new CatalogClient({ catalogs: [elsewhere.url] }).entry('acme.tool'));
    assert.equal(err.code, 'CATALOG_UNAVAILABLE');
    assert.match(err.message, /to a file: address/);
  });

  test('a proxy in .npmrc carries every request; noproxy sends a host direct', async (t) => {
    const target = await serve(t, registry());
    const proxy = await serve(t, (req, res) => {
      // a forward proxy is sent the whole address
      http.get(req.url ?? '', (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
    });
    const proxied = new CatalogClient({ catalogs: [target.url], npmrc: { proxy: proxy.url } });
    const entry = await proxied.entry('acme.tool');
    assert.deepEqual(await proxied.tarball(entry.releases[0]!, entry.catalog), TARBALL);
    assert.deepEqual(
      proxy.seen.map((s) => s.url),
      [`${target.url}@acme%2fdatabridge-tool`, `${target.url}tool-1.0.0.tgz`],
    );
    const direct = new CatalogClient({ catalogs: [target.url], npmrc: { proxy: proxy.url, noproxy: '127.0.0.1' } });
    await direct.entry('acme.tool');
    assert.equal(proxy.seen.length, 2);
    assert.equal(target.seen.length, 3);
  });

  test('an HTTPS registry with its own certificate: refused until .npmrc trusts it (cafile), or strict-ssl=false', async (t) => {
    const dir = tempDir(t);
    const { cert, key } = selfSignedCert(dir, '/CN=127.0.0.1', ['-addext', 'subjectAltName=IP:127.0.0.1']);
    const secure = await serve(t, registry(), {
      tls: { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') },
    });
    const err = await refusal(new CatalogClient({ catalogs: [secure.url] }).entry('acme.tool'));
    assert.equal(err.code, 'CATALOG_UNAVAILABLE');
    assert.match(err.message, /TLS certificate is not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT\).*cafile/);
    const trusted = await new CatalogClient({ catalogs: [secure.url], npmrc: { cafile: cert } }).entry('acme.tool');
    assert.equal(trusted.releases[0]?.version, '1.0.0');
    const lax = await new CatalogClient({ catalogs: [secure.url], npmrc: { 'strict-ssl': 'false' } }).entry(
      'acme.tool',
    );
    assert.equal(lax.releases[0]?.version, '1.0.0');
    const missing = await refusal(
      new CatalogClient({ catalogs: [secure.url], npmrc: { cafile: join(dir, 'none.pem') } }).entry('acme.tool'),
    );
    assert.equal(missing.code, 'CATALOG_UNAVAILABLE');
    assert.match(missing.message, /cafile .*none\.pem in \.npmrc cannot be read/);
  });

  test('a gzipped packument is read; one that is not JSON, or past the cap, is CATALOG_UNAVAILABLE', async (t) => {
    const zipped = await serve(t, registry({ gzip: true }));
    assert.equal((await new CatalogClient({ catalogs: [zipped.url] }).entry('acme.tool')).releases.length, 1);
    const garbled = await serve(t, (_req, res) => res.end('<html>a captive portal</html>'));
    let err = await refusal(new CatalogClient({ catalogs: [garbled.url] }).entry('acme.tool'));
    assert.equal(err.code, 'CATALOG_UNAVAILABLE');
    assert.match(err.message, /with what is not JSON/);
    // a gzip bomb: 200 MiB of zeros in a few hundred KiB, past the packument cap once inflated
    const bomb = gzipSync(Buffer.alloc(200 * 1024 * 1024));
    const bombing = await serve(t, (_req, res) => res.writeHead(200, { 'content-encoding': 'gzip' }).end(bomb));
    err = await refusal(new CatalogClient({ catalogs: [bombing.url] }).entry('acme.tool'));
    assert.equal(err.code, 'CATALOG_UNAVAILABLE');
    assert.match(err.message, /with more than 8388608 bytes/);
  });

  test('a tarball past the largest bundle, or not the bytes published: refused before anything is read', async (t) => {
    const big = await serve(t, registry({ tarball: Buffer.alloc(64 * 1024, 1) }));
    const client = new CatalogClient({ catalogs: [big.url], maxTarballBytes: 16 * 1024 });
    const entry = await client.entry('acme.tool');
    let err = await refusal(client.tarball(entry.releases[0]!, entry.catalog));
    assert.equal(err.code, 'INSTALL_REFUSED');
    assert.match(JSON.stringify(err.details), /ARCHIVE_TOO_LARGE/);
    const swapped = await serve(t, registry({ tarball: Buffer.from('other bytes') }));
    const other = new CatalogClient({ catalogs: [swapped.url] });
    const e2 = await other.entry('acme.tool');
    err = await refusal(other.tarball(e2.releases[0]!, e2.catalog));
    assert.equal(err.code, 'INSTALL_REFUSED');
    assert.match(JSON.stringify(err.details), /CHECKSUM_MISMATCH/);
  });

  test('a registry that takes the connection and never answers: CATALOG_UNAVAILABLE once the deadline passes', async (t) => {
    const silent = await serve(t, () => {});
    const t0 = Date.now();
    const err = await refusal(new CatalogClient({ catalogs: [silent.url], timeoutMs: 300 }).entry('acme.tool'));
    assert.equal(err.code, 'CATALOG_UNAVAILABLE');
    assert.match(err.message, /did not answer .* within 300 ms/);
    assert.ok(Date.now() - t0 < 10_000);
  });

  test('an answer Node drops without an event (HTTP 101, a connection closed unanswered): refused, never pending', async (t) => {
    // a raw answer on the socket: 101 Switching Protocols to a plain GET
    const raw = await serveRaw(t, (socket) =>
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n'),
    );
    let err = await refusal(new CatalogClient({ catalogs: [raw], timeoutMs: 60_000 }).entry('acme.tool'));
    assert.equal(err.code, 'CATALOG_UNAVAILABLE');
    assert.match(err.message, /switching protocols \(HTTP 101\)/);
    const hangup = await serveRaw(t, (socket) => socket.end());
    err = await refusal(new CatalogClient({ catalogs: [hangup], timeoutMs: 60_000 }).entry('acme.tool'));
    assert.equal(err.code, 'CATALOG_UNAVAILABLE');
  });

  test('a tarball named on another registry’s host is fetched without that registry’s credentials', async (t) => {
    const other = await serve(t, registry(), { host: '127.0.0.2' });
    const hostile = await serve(t, (req, res) => {
      if (req.url === '/@acme%2fdatabridge-tool') res.end(packument(other.url));
      else res.writeHead(404).end('{}');
    });
    // the user has a token for the other registry (a scope's), and one for the hostile catalog
    const npmrc = {
      '@corp:registry': other.url,
      [`${other.url.replace(/^http:/, '')}:_authToken`]: 'CORP_TOKEN',
      [`${hostile.url.replace(/^http:/, '')}:_authToken`]: 'OWN_TOKEN',
    };
    const client = new CatalogClient({ catalogs: [hostile.url], npmrc });
    const entry = await client.entry('acme.tool');
    assert.deepEqual(await client.tarball(entry.releases[0]!, entry.catalog), TARBALL);
    assert.equal(hostile.seen[0]?.headers.authorization, 'Bearer OWN_TOKEN');
    assert.deepEqual(
      other.seen.map((s) => [s.url, s.headers.authorization]),
      [['/tool-1.0.0.tgz', undefined]],
    );
  });

  test('a search reads no more hits than asked for, and asks for at most 8 packuments at once', async (t) => {
    let inFlight = 0;
    let most = 0;
    const names = Array.from({ length: 500 }, (_, i) => ({ package: { name: `@acme/databridge-p${i}` } }));
    const wide = await serve(t, (req, res, self) => {
      if (req.url?.startsWith('/-/v1/search')) return void res.end(JSON.stringify({ objects: names }));
      inFlight++;
      most = Math.max(most, inFlight);
      setTimeout(() => {
        inFlight--;
        const id = `acme.${decodeURIComponent(req.url ?? '').replace('/@acme/databridge-', '')}`;
        res.end(packument(self).replaceAll('acme.tool', id));
      }, 20);
    });
    const hits = await new CatalogClient({ catalogs: [wide.url] }).search('p', 30);
    assert.equal(hits.length, 30);
    assert.equal(wide.seen.filter((s) => !s.url.startsWith('/-/v1/search')).length, 30);
    assert.ok(most <= 8, `${most} packuments were asked for at once`);
    const err = await refusal(new CatalogClient({ catalogs: [wide.url] }).search('p', 1000));
    assert.equal(err.code, 'USAGE');
  });

  test('answers of the wrong shape are read as holding nothing, never dereferenced', async (t) => {
    for (const body of [
      'null',
      '[]',
      '"text"',
      '{"versions":null}',
      '{"versions":{"1.0.0":null,"1.0.1":"x","1.0.2":{"keywords":"databridge-plugin"}}}',
      '{"versions":{"v1.0.0":{"keywords":["databridge-plugin"],"dist":{"tarball":"http://x/t.tgz"}}}}',
      '{"versions":{"1.0.0":{"keywords":["databridge-plugin"],"dist":null,"databridge":7}}}',
      '{"__proto__":{"polluted":true},"versions":{"__proto__":{"keywords":["databridge-plugin"]}}}',
    ]) {
      const odd = await serve(t, (req, res) => (req.url?.startsWith('/-/v1/search') ? res.end(body) : res.end(body)));
      const err = await refusal(new CatalogClient({ catalogs: [odd.url] }).entry('acme.tool'));
      assert.equal(err.code, 'CATALOG_PLUGIN_NOT_FOUND', body);
      assert.deepEqual(await new CatalogClient({ catalogs: [odd.url] }).search('tool'), [], body);
    }
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    // a dist-tag that is not a version is not shown as one
    const tagged = await serve(t, (_req, res, self) =>
      res.end(packument(self).replace('"latest":"1.0.0"', '"latest":{"evil":1}')),
    );
    assert.equal((await new CatalogClient({ catalogs: [tagged.url] }).entry('acme.tool')).latestTag, null);
  });

  test('a large packument is read off the event loop, to the same releases', async (t) => {
    // 1900 releases with long descriptions: about 1.3 MiB, past what is parsed inline
    const versions: Record<string, unknown> = {};
    for (let i = 0; i < 1900; i++) {
      versions[`1.0.${i}`] = {
        keywords: ['databridge-plugin'],
        description: 'd'.repeat(500),
        databridge: { id: 'acme.tool', publisher: 'acme', dependencies: { 'acme.base': '^1' } },
        dist: { tarball: `http://127.0.0.1/t-${i}.tgz`, integrity: sri('sha512', TARBALL) },
      };
    }
    const body = JSON.stringify({ 'dist-tags': { latest: '1.0.1899' }, versions });
    assert.ok(body.length > 1024 * 1024);
    const big = await serve(t, (_req, res) => res.end(body));
    const entry = await new CatalogClient({ catalogs: [big.url] }).entry('acme.tool');
    assert.equal(entry.releases.length, 1900);
    assert.equal(entry.releases[0]?.version, '1.0.1899');
    assert.deepEqual(entry.releases[0]?.dependencies, { 'acme.base': '^1' });
    assert.equal(entry.latestTag, '1.0.1899');
  });

  test('what a catalog may make the host hold is bounded: releases per plugin, bytes per question', async (t) => {
    // 2001 plugin releases of one plugin
    const versions: Record<string, unknown> = {};
    for (let i = 0; i <= 2000; i++)
      versions[`1.0.${i}`] = { keywords: ['databridge-plugin'], dist: { tarball: `http://127.0.0.1/t-${i}.tgz` } };
    const many = await serve(t, (_req, res) => res.end(JSON.stringify({ versions })));
    let err = await refusal(new CatalogClient({ catalogs: [many.url] }).entry('acme.tool'));
    assert.equal(err.code, 'CATALOG_UNAVAILABLE');
    assert.match(err.message, /lists more than 2000 releases of acme\.tool/);
    // 2000 releases each naming 64 dependencies: every bound met, but more to hold than a packument may make the host
    // hold; a release naming 65 is no plugin release and is skipped
    const deps = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`acme.d${i}`, '^1']));
    const heavy: Record<string, unknown> = {
      '2.0.0': {
        keywords: ['databridge-plugin'],
        databridge: { dependencies: deps(65) },
        dist: { tarball: 'http://127.0.0.1/t.tgz' },
      },
    };
    const one = await serve(t, (_req, res) => res.end(JSON.stringify({ versions: heavy })));
    err = await refusal(new CatalogClient({ catalogs: [one.url] }).entry('acme.tool'));
    assert.equal(err.code, 'CATALOG_PLUGIN_NOT_FOUND');
    for (let i = 0; i < 2000; i++)
      heavy[`1.0.${i}`] = {
        keywords: ['databridge-plugin'],
        databridge: { dependencies: deps(64) },
        dist: { tarball: `http://127.0.0.1/t-${i}.tgz` },
      };
    const weighty = await serve(t, (_req, res) => res.end(JSON.stringify({ versions: heavy })));
    err = await refusal(new CatalogClient({ catalogs: [weighty.url] }).entry('acme.tool'));
    assert.equal(err.code, 'CATALOG_UNAVAILABLE');
    assert.match(err.message, /releases of acme\.tool say more than 8 MiB about themselves/);
    // every answer small, but together past what one question may read
    const plenty = await serve(t, (req, res, self) => {
      const id = `acme.${decodeURIComponent(req.url ?? '').replace('/@acme/databridge-', '')}`;
      res.end(packument(self).replaceAll('acme.tool', id));
    });
    const client = new CatalogClient({ catalogs: [plenty.url], maxQuestionBytes: 2000 });
    await client.entry('acme.tool');
    err = await refusal(
      (async () => {
        for (const id of ['acme.a', 'acme.b', 'acme.c', 'acme.d', 'acme.e']) await client.entry(id);
      })(),
    );
    assert.equal(err.code, 'CATALOG_UNAVAILABLE');
    assert.match(err.message, /answers to one question passed 2000 bytes/);
  });

  test('one client’s whole question has a deadline, however many requests it makes', async (t) => {
    // every packument answers in 150 ms, each within the request's deadline, and each names another dependency
    const chain = await serve(t, (req, res, self) => {
      const n = Number(/databridge-c(\d+)/.exec(req.url ?? '')?.[1] ?? 0);
      setTimeout(
        () =>
          res.end(
            packument(self)
              .replaceAll('acme.tool', `acme.c${n}`)
              .replace('"publisher":"acme"', `"publisher":"acme","dependencies":{"acme.c${n + 1}":"^1"}`),
          ),
        150,
      );
    });
    const client = new CatalogClient({ catalogs: [chain.url], timeoutMs: 1000, totalTimeoutMs: 700 });
    const { resolveSet } = await import('../../src/catalog/resolve.ts');
    const err = await refusal(resolveSet([{ id: 'acme.c0', range: '*' }], new Map(), (id) => client.entry(id)));
    assert.equal(err.code, 'CATALOG_UNAVAILABLE');
    assert.match(err.message, /when the time for the whole question ran out/);
    assert.ok(chain.seen.length >= 3 && chain.seen.length <= 6, `${chain.seen.length} packuments asked for`);
  });

  test('SRI integrity: the strongest algorithm named decides, as npm’s ssri does', () => {
    const bytes = Buffer.from('hello');
    const sha512 = sri('sha512', bytes);
    const sha1 = sri('sha1', bytes);
    assert.equal(matchesIntegrity(bytes, sha512), true);
    assert.equal(matchesIntegrity(bytes, sha1), true);
    assert.equal(matchesIntegrity(bytes, `${sha1} ${sha512}`), true);
    assert.equal(matchesIntegrity(bytes, `${sha512}?opt`), true);
    // the sha1 matches, but the sha512 named beside it does not: refused
    assert.equal(matchesIntegrity(bytes, `${sha1} sha512-AAAA`), false);
    // a weaker matching hash does not rescue a stronger one that fails, nor the other way round
    assert.equal(matchesIntegrity(bytes, `${sri('sha256', Buffer.from('x'))} ${sha1}`), false);
    assert.equal(matchesIntegrity(bytes, sri('sha512', Buffer.from('hellO'))), false);
    assert.equal(matchesIntegrity(bytes, 'md5-XUFAKrxLKna5cZ2REBfFkg=='), false);
    assert.equal(matchesIntegrity(bytes, ''), false);
  });
});
