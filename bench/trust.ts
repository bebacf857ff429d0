/**
 * trust.hash_vs_openssl: our checksum verification of a large plugin
 * (streamed 1 MiB reads) against `openssl dgst -sha256` on the same files.
 * trust.coldstart_vs_hash: starting a manager over 200 signed plugins
 * (validate, verify, register) against merely hashing their bytes.
 */

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPluginManager } from '../src/index.ts';
import { hashFiles, listPluginFiles } from '../src/plugin/files.ts';
import { signPluginDir } from '../src/plugin/release.ts';
import { generateSigningKey, loadKey } from '../src/plugin/signing.ts';
import { type BenchResult, median } from './types.ts';

function timed<T>(fn: () => T): [T, number] {
  const t0 = performance.now();
  const out = fn();
  return [out, performance.now() - t0];
}

async function timedAsync<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const out = await fn();
  return [out, performance.now() - t0];
}

async function hashVsOpenssl(root: string): Promise<BenchResult> {
  const dir = join(root, 'large');
  mkdirSync(dir);
  const fileCount = 12;
  const size = 16 * 1024 * 1024;
  for (let i = 0; i < fileCount; i++) writeFileSync(join(dir, `blob-${i}.bin`), randomBytes(size));
  const files = readdirSync(dir).sort();
  // warm the page cache for both
  execFileSync('openssl', ['dgst', '-sha256', ...files], { cwd: dir });
  const ours: number[] = [];
  const theirs: number[] = [];
  for (let i = 0; i < 5; i++) {
    ours.push((await timedAsync(() => hashFiles(dir, files)))[1]);
    theirs.push(timed(() => execFileSync('openssl', ['dgst', '-sha256', ...files], { cwd: dir }))[1]);
  }
  const o = median(ours);
  const s = median(theirs);
  const mb = (fileCount * size) / 1024 / 1024;
  return {
    name: 'trust.hash_vs_openssl',
    value: Number((s / o).toFixed(3)),
    unit: 'ratio',
    detail: `${mb} MiB in ${fileCount} files: ${(mb / (o / 1000)).toFixed(0)} MiB/s ours vs ${(mb / (s / 1000)).toFixed(0)} MiB/s openssl (goal ≥ 0.5)`,
  };
}

/** A plugin of realistic size: a manifest and ~40 KiB of bundled code. */
function pluginCode(name: string): string {
  const filler = Array.from(
    { length: 400 },
    (_, i) => `export function helper${i}(x) { return String(x).split('').reverse().join('') + ${i}; }`,
  ).join('\n');
  return `${filler}
export default { processors: { ${name}: () => ({
  getInfo: () => ({ name: '${name}', version: '1.0.0', description: 'bench', tags: [], properties: [], relationships: [{ name: 'success' }] }),
  onTrigger(ctx, session) { const ff = session.get(); if (ff) { session.transfer(ff, 'success'); session.commit(); } },
}) } };
`;
}

async function coldStart(root: string): Promise<BenchResult[]> {
  const pluginDir = join(root, 'plugins');
  const dataDir = join(root, 'data');
  const key = generateSigningKey();
  const priv = loadKey(key.privateKeyPem, 'private');
  const N = 200;
  for (let i = 0; i < N; i++) {
    const id = `bench.plugin-${i}`;
    const name = `BenchProc${i}`;
    const dir = join(pluginDir, id);
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'manifest.json'),
      JSON.stringify({
        id,
        name: id,
        version: '1.0.0',
        publisher: 'bench',
        type: 'processor',
        entryPoint: 'index.js',
        provides: { processors: [name] },
      }),
    );
    writeFileSync(join(dir, 'index.js'), pluginCode(name));
    await signPluginDir(dir, priv);
  }
  const setup = await createPluginManager({ dataDir, pluginDir, logLevel: false, autoLoad: false });
  await setup.trust.addKey({ publisher: 'bench', publicKeyPem: key.publicKeyPem, namespaces: ['bench.*'] });
  await setup.shutdown();
  // a first start, as after installing them: the import scan is kept by file digest from then on
  await (await createPluginManager({ dataDir, pluginDir, logLevel: false })).shutdown();

  const starts: number[] = [];
  const hashes: number[] = [];
  let active = 0;
  for (let i = 0; i < 3; i++) {
    // a fresh process each time: nothing is reused from an earlier start but the state store
    const child = JSON.parse(
      execFileSync(process.execPath, [join(import.meta.dirname, 'coldstart-child.ts'), dataDir, pluginDir], {
        encoding: 'utf8',
      }),
    ) as { ms: number; active: number };
    active = child.active;
    starts.push(child.ms);
    hashes.push(
      (
        await timedAsync(async () => {
          for (const name of readdirSync(pluginDir)) {
            const d = join(pluginDir, name);
            await hashFiles(d, (await listPluginFiles(d)).files);
          }
        })
      )[1],
    );
  }
  if (active !== N) throw new Error(`only ${active} of ${N} plugins loaded`);
  const s = median(starts);
  const h = median(hashes);
  return [
    {
      name: 'trust.coldstart_vs_hash',
      value: Number((s / h).toFixed(3)),
      unit: 'ratio',
      detail: `${N} signed plugins (~40 KiB code each; import scan and components cached by digest since install; sandboxes start on first use): start ${s.toFixed(0)} ms vs hashing ${h.toFixed(0)} ms (goal ≤ 3)`,
    },
    {
      name: 'trust.coldstart_ms',
      value: Math.round(s),
      unit: 'ms',
      detail: `createPluginManager over ${N} signed plugins, median of 3`,
    },
  ];
}

export async function trustBench(): Promise<BenchResult[]> {
  const root = mkdtempSync(join(tmpdir(), 'databridge-bench-trust-'));
  try {
    return [await hashVsOpenssl(root), ...(await coldStart(root))];
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
