/** Plugin releases as catalog packages, for the catalog tests. */

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writePackageJson } from '../../src/catalog/package-json.ts';
import { packPlugin } from '../../src/plugin/bundle.ts';
import { readManifest } from '../../src/plugin/manifest.ts';
import type { KeyPair } from '../../src/plugin/signing.ts';
import { makePlugin, sign } from '../plugin-fixtures.ts';

export interface ReleaseSpec {
  id: string;
  version: string;
  dependencies?: Record<string, string>;
  /** Signed with this key; unsigned (checksums only) without. */
  key?: KeyPair;
  /** Change a file after signing (a release whose bytes are not what was signed). */
  tamper?: boolean;
  /** More files in the plugin (path → text). */
  files?: Record<string, string>;
  /** The processors it provides (default one named after the id). */
  processors?: string[];
}

/** Makes a plugin folder, its package.json, signs it and packs it as `npm pack` lays a package out. */
export async function makeRelease(root: string, spec: ReleaseSpec): Promise<{ tgz: Buffer; dir: string }> {
  const dir = makePlugin(join(root, `${spec.id}-${spec.version}`), {
    id: spec.id,
    version: spec.version,
    manifest: spec.dependencies ? { dependencies: spec.dependencies } : {},
    files: spec.files,
    processors: spec.processors,
  });
  await writePackageJson(dir, readManifest(dir).manifest!);
  await sign(dir, spec.key);
  if (spec.tamper) writeFileSync(join(dir, 'index.js'), `${readFileSync(join(dir, 'index.js'), 'utf8')}\n// changed\n`);
  const out = join(root, `${spec.id}-${spec.version}.tgz`);
  const { findings } = await packPlugin(dir, out, { prefix: 'package' });
  if (findings.length) throw new Error(JSON.stringify(findings));
  return { tgz: readFileSync(out), dir };
}
