/**
 * cluster.propagation_vs_local: the time from an install accepted on node A
 * (its install call returned: the release is in the database and the
 * notification sent) to the plugin active on node B, over the time of the
 * same install on a node on its own (SQLite), measured in one run. B fetches
 * the bundle, verifies and loads it as any install, so the goal (≤ 2) says
 * the cluster adds little beyond that one install. Needs PostgreSQL's
 * binaries (test/pg.ts starts a private server).
 */

import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPluginManager, type PluginManager } from '../src/index.ts';
import { packPlugin } from '../src/plugin/bundle.ts';
import { signPluginDir } from '../src/plugin/release.ts';
import { generateSigningKey, loadKey } from '../src/plugin/signing.ts';
import { PG_MISSING, startPostgres } from '../test/pg.ts';
import { makePlugin, upperCode } from '../test/plugin-fixtures.ts';
import { type BenchResult, median } from './types.ts';

const ROUNDS = 9;

export async function clusterBench(): Promise<BenchResult[]> {
  if (PG_MISSING) throw new Error(`the cluster benchmark needs PostgreSQL: ${PG_MISSING}`);
  const root = mkdtempSync(join(tmpdir(), 'databridge-bench-cluster-'));
  // a root host runs sandboxes as uid 65534, which must read the plugins' folders in here
  chmodSync(root, 0o755);
  const server = await startPostgres();
  const managers: PluginManager[] = [];
  try {
    const key = generateSigningKey();
    const url = server.createDatabase('bench');
    const open = async (name: string, store?: string) => {
      const m = await createPluginManager({
        dataDir: join(root, name, 'data'),
        pluginDir: join(root, name, 'plugins'),
        logLevel: false,
        ...(store ? { store } : {}),
      });
      managers.push(m);
      return m;
    };
    const local = await open('local');
    const a = await open('a', url);
    const b = await open('b', url);
    for (const m of [local, a]) {
      await m.trust.addKey({ publisher: 'acme', publicKeyPem: key.publicKeyPem, namespaces: ['acme.*'] });
    }
    const bundle = async (version: string) => {
      const dir = makePlugin(join(root, 'src', version), { id: 'acme.bench', version, code: upperCode('Bench') });
      await signPluginDir(dir, loadKey(key.privateKeyPem, 'private'));
      const file = join(root, `${version}.tgz`);
      await packPlugin(dir, file);
      return readFileSync(file);
    };
    const activeOn = (m: PluginManager, version: string) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (
            m.registry.has('acme.bench') &&
            m.get('acme.bench').version === version &&
            m.get('acme.bench').status === 'active'
          ) {
            stop();
            resolve();
          }
        };
        const stop = m.on(check);
        check();
      });
    const single: number[] = [];
    const propagation: number[] = [];
    const endToEnd: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const version = `1.0.${i}`;
      const bytes = await bundle(version);
      let t0 = performance.now();
      await local.install(bytes);
      single.push(performance.now() - t0);
      const onB = activeOn(b, version);
      const start = performance.now();
      await a.install(bytes);
      t0 = performance.now();
      await onB;
      propagation.push(performance.now() - t0);
      endToEnd.push(performance.now() - start);
    }
    // the first round starts sandboxes and warms caches on every node: left out
    const s = median(single.slice(1));
    const p = median(propagation.slice(1));
    const e = median(endToEnd.slice(1));
    return [
      {
        name: 'cluster.propagation_vs_local',
        value: Number((p / s).toFixed(2)),
        unit: 'ratio',
        detail: `install accepted on A → active on B ${p.toFixed(0)} ms vs the same install on one node ${s.toFixed(0)} ms (median of ${ROUNDS - 1}; from the install's start on A to active on B: ${e.toFixed(0)} ms, ${(e / s).toFixed(2)}×). B verifies the release itself but reuses the component description A stored by digest, so its sandbox starts on first use; goal ≤ 2`,
      },
    ];
  } finally {
    for (const m of managers) await m.shutdown();
    server.destroy();
    rmSync(root, { recursive: true, force: true });
  }
}
