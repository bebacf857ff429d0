/** Builds plugin folders, keys and (hostile) bundles for tests. */

import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { createPluginManager, type PluginManager } from '../src/index.ts';
import { signPluginDir } from '../src/plugin/release.ts';
import { generateSigningKey, type KeyPair, loadKey } from '../src/plugin/signing.ts';

/** A processor plugin's code that upper-cases content, providing `name`. */
export function upperCode(name: string): string {
  return `export default { processors: { ${name}: () => ({
  getInfo: () => ({ name: '${name}', version: '1.0.0', description: 'upper', tags: [], properties: [], relationships: [{ name: 'success' }] }),
  async onTrigger(ctx, session) {
    for (let ff = session.get(); ff; ff = session.get()) {
      session.transfer(session.write(ff, new TextDecoder().decode(await session.read(ff)).toUpperCase()), 'success');
    }
    session.commit();
  },
}) } };\n`;
}

/** The processor type a fixture plugin provides by default: `acme.csv-tools` → `CsvTools`. */
export function componentOf(id: string): string {
  return id
    .split('.')
    .pop()!
    .split(/[-_]/)
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join('');
}

export interface PluginSpec {
  id?: string;
  version?: string;
  publisher?: string;
  code?: string;
  processors?: string[];
  manifest?: Record<string, unknown>;
  files?: Record<string, string>;
}

/** Writes a plugin folder `<parent>/<id>` and returns its path. */
export function makePlugin(parent: string, spec: PluginSpec = {}): string {
  const id = spec.id ?? 'acme.upper';
  const component = spec.processors?.[0] ?? componentOf(id);
  const dir = join(parent, id);
  mkdirSync(dir, { recursive: true });
  const manifest = {
    id,
    name: id,
    version: spec.version ?? '1.0.0',
    publisher: spec.publisher ?? 'acme',
    type: 'processor',
    entryPoint: 'index.js',
    provides: { processors: spec.processors ?? [component] },
    engines: { databridge: '>=0.1.0' },
    ...spec.manifest,
  };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2));
  writeFileSync(join(dir, 'index.js'), spec.code ?? upperCode(component));
  for (const [name, content] of Object.entries(spec.files ?? {})) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  return dir;
}

export async function sign(dir: string, key?: KeyPair): Promise<void> {
  const r = await signPluginDir(dir, key ? loadKey(key.privateKeyPem, 'private') : undefined);
  if (!r.statement) throw new Error(`signing failed: ${JSON.stringify(r.findings)}`);
}

export function newKey(): KeyPair {
  return generateSigningKey();
}

export async function trustKey(
  manager: PluginManager,
  key: KeyPair,
  publisher = 'acme',
  namespaces = [`${publisher}.*`],
): Promise<void> {
  await manager.trust.addKey({ publisher, publicKeyPem: key.publicKeyPem, namespaces });
}

/**
 * Prepares a state store before a manager loads its plugins: opens one that
 * loads nothing, runs `setup` on it (trust keys, make namespaces), shuts it.
 */
export async function beforeLoad(
  dirs: { dataDir: string; pluginDir: string },
  setup: (manager: PluginManager) => Promise<unknown>,
): Promise<void> {
  const manager = await createPluginManager({ ...dirs, logLevel: false, autoLoad: false });
  try {
    await setup(manager);
  } finally {
    await manager.shutdown();
  }
}

/** Every file under a folder with its sha256: to check nothing changed. */
export function treeDigest(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, rel: string) => {
    let names: string[];
    try {
      names = readdirSync(d).sort();
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(d, n);
      const r = rel ? `${rel}/${n}` : n;
      if (statSync(p).isDirectory()) walk(p, r);
      else out[r] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir, '');
  return out;
}

export interface TarEntry {
  path: string;
  /** `x`: a PAX header for the entry after it (its `data` the records; see `paxPath`). */
  type?: '0' | '1' | '2' | '3' | '4' | '5' | '6' | 'x';
  mode?: number;
  data?: string | Buffer;
  linkpath?: string;
}

/** A PAX header giving the next entry `path`, however long: ustar alone holds at most 255 bytes. */
export function paxPath(path: string): TarEntry {
  const record = (len: number) => `${len} path=${path}\n`;
  let len = Buffer.byteLength(record(0));
  while (Buffer.byteLength(record(len)) !== len) len = Buffer.byteLength(record(len));
  return { path: 'PaxHeader', type: 'x', data: record(len) };
}

/** A raw ustar archive, gzipped: lets tests make what tar itself would refuse to. */
export function craftTgz(entries: readonly TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const data = Buffer.from(e.data ?? '');
    const h = Buffer.alloc(512);
    const put = (s: string, at: number, len: number) => h.write(s, at, len, 'utf8');
    const octal = (n: number, len: number) => n.toString(8).padStart(len - 1, '0');
    let name = e.path;
    let prefix = '';
    if (Buffer.byteLength(name) > 100) {
      const cut = name.lastIndexOf('/', 155);
      prefix = name.slice(0, cut);
      name = name.slice(cut + 1);
    }
    put(name, 0, 100);
    put(`${octal(e.mode ?? (e.type === '5' ? 0o755 : 0o644), 8)}\0`, 100, 8);
    put('0000000\0', 108, 8);
    put('0000000\0', 116, 8);
    put(`${octal(e.type === '5' ? 0 : data.length, 12)}\0`, 124, 12);
    put('00000000000\0', 136, 12);
    put('        ', 148, 8);
    put(e.type ?? '0', 156, 1);
    put(e.linkpath ?? '', 157, 100);
    put('ustar\0', 257, 6);
    put('00', 263, 2);
    put(prefix, 345, 155);
    let sum = 0;
    for (const b of h) sum += b;
    put(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
    blocks.push(h);
    if (e.type !== '5' && data.length) {
      blocks.push(data, Buffer.alloc((512 - (data.length % 512)) % 512));
    }
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}

/** A crafted bundle of a valid plugin's files plus `extra` entries. */
export function craftPluginTgz(dir: string, extra: readonly TarEntry[]): Buffer {
  const entries: TarEntry[] = [];
  const walk = (d: string, rel: string) => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      const r = rel ? `${rel}/${n}` : n;
      if (statSync(p).isDirectory()) walk(p, r);
      else entries.push({ path: r, data: readFileSync(p) });
    }
  };
  walk(dir, '');
  return craftTgz([...entries, ...extra]);
}
