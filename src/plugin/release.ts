/** Writing a plugin folder's release statement: `databridge plugin sign` and `pack`. */

import type { KeyObject } from 'node:crypto';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashFiles, listPluginFiles } from './files.ts';
import type { Finding } from './findings.ts';
import { readManifest } from './manifest.ts';
import { createEnvelope, keyIdOf, type ReleaseStatement, SIGNATURE_FILE, STATEMENT_TYPE } from './signing.ts';

/**
 * Hashes every file of the folder and writes signature.dsse.json: signed
 * with `key`, or unsigned (checksums only) without one.
 */
export async function signPluginDir(
  dir: string,
  key?: KeyObject,
): Promise<{ statement: ReleaseStatement | null; keyId: string | null; findings: Finding[] }> {
  const { manifest, findings } = readManifest(dir);
  const listing = await listPluginFiles(dir, [SIGNATURE_FILE]);
  const all = [...findings, ...listing.findings].filter((f) => f.severity === 'error');
  if (!manifest || all.length) return { statement: null, keyId: null, findings: all };
  const statement: ReleaseStatement = {
    _type: STATEMENT_TYPE,
    id: manifest.id,
    version: manifest.version,
    publisher: manifest.publisher,
    engines: manifest.engines?.databridge ?? null,
    issuedAt: new Date().toISOString(),
    files: await hashFiles(dir, listing.files),
  };
  const envelope = createEnvelope(statement, key);
  const target = join(dir, SIGNATURE_FILE);
  await writeFile(`${target}.tmp`, `${JSON.stringify(envelope, null, 2)}\n`);
  await rename(`${target}.tmp`, target);
  return { statement, keyId: key ? keyIdOf(key) : null, findings: [] };
}
