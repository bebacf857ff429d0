/**
 * The catalog's HTTP as a registry on the wire sees it: credentials, where
 * they go on a redirect, proxies and TLS settings from `.npmrc`, compressed
 * answers, the size cap, the deadline and the integrity check. The servers
 * here are small stand-ins on loopback (a redirecting mirror, a proxy, an
 * HTTPS registry with its own certificate) that record what they are sent;
 * what a real registry serves is tested against Verdaccio beside this.
 */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { CatalogClient } from '../../src/catalog/client.ts';
import { matchesIntegrity } from '../../src/catalog/registry-http.ts';
import { isDataBridgeError } from '../../src/errors.ts';
import { tempDir } from '../helpers.ts';

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
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        key,
        '-out',
        cert,
      ],
      { stdio: 'ignore' },
    );
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
    assert.match(err.message, /with more than 67108864 bytes/);
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
    assert.match(err.message, /cannot be reached \(ETIMEDOUT\)/);
    assert.ok(Date.now() - t0 < 10_000);
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
