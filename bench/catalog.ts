/**
 * catalog.install_vs_local: installing a signed plugin by name from a
 * loopback Verdaccio (packument, tarball, verification, install) against
 * installing the same `.tgz` from disk, each into a fresh host, median of 10.
 * The detail also gives the registry's own share: the same two GETs
 * (packument and tarball) made bare with `http.get`, from a fresh host in
 * the same state, so what the catalog client adds can be read off.
 * catalog.resolve_ms: resolving a 20-plugin dependency set (a tree of
 * ranges) against the same registry with a fresh client, median of 10.
 */

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCatalog } from '../src/catalog/catalog.ts';
import { CatalogClient } from '../src/catalog/client.ts';
import { resolveSet } from '../src/catalog/resolve.ts';
import { createPluginManager } from '../src/index.ts';
import { startRegistry } from '../test/catalog/registry.ts';
import { makeRelease } from '../test/catalog/releases.ts';
import { newKey } from '../test/plugin-fixtures.ts';
import { type BenchResult, median } from './types.ts';

const RUNS = 10;
const SET = 20;

export async function catalogBench(): Promise<BenchResult[]> {
  const root = mkdtempSync(join(tmpdir(), 'databridge-bench-catalog-'));
  const cleanups: (() => unknown)[] = [];
  try {
    const registry = await startRegistry(
      { after: (fn: () => unknown) => void cleanups.push(fn) },
      mkdtempSync(join(root, 'reg-')),
    );
    const key = newKey();
    const work = join(root, 'work');
    mkdirSync(work);
    // ~40 KiB of code, as the trust group's plugins
    const filler = Array.from({ length: 400 }, (_, i) => `// helper ${i}: ${'x'.repeat(80)}`).join('\n');
    const one = await makeRelease(work, { id: 'bench.single', version: '1.0.0', key, files: { 'lib.js': filler } });
    await registry.publish(one.tgz);
    const bundle = join(root, 'single.tgz');
    writeFileSync(bundle, one.tgz);
    for (let i = 0; i < SET; i++) {
      const deps: Record<string, string> = {};
      for (const child of [2 * i + 1, 2 * i + 2]) if (child < SET) deps[`bench.set-${child}`] = '^1.0.0';
      for (const version of ['1.0.0', '1.1.0']) {
        await registry.publish(
          (await makeRelease(work, { id: `bench.set-${i}`, version, key, dependencies: deps })).tgz,
        );
      }
    }

    const host = async (n: number, kind: string) => {
      const dir = join(root, `${kind}-${n}`);
      const manager = await createPluginManager({
        dataDir: join(dir, 'data'),
        pluginDir: join(dir, 'plugins'),
        logLevel: false,
      });
      await manager.trust.addKey({ publisher: 'acme', publicKeyPem: key.publicKeyPem, namespaces: ['bench.*'] });
      return manager;
    };
    const local: number[] = [];
    const byName: number[] = [];
    const bare: number[] = [];
    const agent = new http.Agent({ keepAlive: true });
    const get = (url: string) =>
      new Promise<Buffer>((resolve, reject) =>
        http
          .get(url, { agent, headers: { accept: 'application/json' } }, (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve(Buffer.concat(chunks)));
          })
          .on('error', reject),
      );
    for (let i = 0; i < RUNS; i++) {
      const a = await host(i, 'local');
      let t0 = performance.now();
      await a.install(bundle);
      local.push(performance.now() - t0);
      await a.shutdown();
      const b = await host(i, 'catalog');
      const catalog = createCatalog(b, { catalogs: [registry.url], npmrc: {} });
      t0 = performance.now();
      const done = await catalog.install([{ id: 'bench.single', range: '^1' }]);
      byName.push(performance.now() - t0);
      if (done.installed.length !== 1) throw new Error('the catalog install did not install');
      await b.shutdown();
    }

    // the registry's share: the same two GETs, bare, each from a fresh host in the same state (a loop of
    // its own, so the loop above runs as it always has)
    for (let i = 0; i < RUNS; i++) {
      const c = await host(i, 'bare');
      const t0 = performance.now();
      const packument = JSON.parse((await get(`${registry.url}@bench%2fdatabridge-single`)).toString('utf8'));
      const tgz = await get(packument.versions['1.0.0'].dist.tarball);
      bare.push(performance.now() - t0);
      if (!tgz.equals(one.tgz)) throw new Error('the bare GET did not read the published tarball');
      await c.shutdown();
    }

    const resolves: number[] = [];
    let members = 0;
    for (let i = 0; i < RUNS; i++) {
      const client = new CatalogClient({ catalogs: [registry.url], npmrc: {} });
      const t0 = performance.now();
      const set = await resolveSet([{ id: 'bench.set-0', range: '*' }], new Map(), (id) => client.entry(id));
      resolves.push(performance.now() - t0);
      members = set.members.length;
    }
    if (members !== SET) throw new Error(`resolved ${members} of ${SET}`);
    agent.destroy();
    const l = median(local);
    const c = median(byName);
    const r = median(bare);
    return [
      {
        name: 'catalog.install_vs_local',
        value: Number((c / l).toFixed(3)),
        unit: 'ratio',
        detail: `one signed plugin (~40 KiB) into a fresh host: by name from loopback Verdaccio ${c.toFixed(1)} ms vs the .tgz from disk ${l.toFixed(1)} ms, median of ${RUNS} (goal ≤ 1.5); the registry's two GETs alone (bare http.get) take ${r.toFixed(1)} ms, a floor of ${((l + r) / l).toFixed(2)}`,
      },
      {
        name: 'catalog.resolve_ms',
        value: Math.round(median(resolves)),
        unit: 'ms',
        detail: `a ${SET}-plugin dependency set (a binary tree of ^ ranges, two releases each) from loopback Verdaccio, fresh client, median of ${RUNS}`,
      },
    ];
  } finally {
    for (const fn of cleanups.reverse()) await fn();
    rmSync(root, { recursive: true, force: true });
  }
}
