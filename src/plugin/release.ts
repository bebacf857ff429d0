/** Writing a plugin folder's release statement: `databridge plugin sign` and `pack`. */

import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { VERSION } from '../version.ts';
import { hashFiles, listPluginFiles } from './files.ts';
import { type Finding, finding } from './findings.ts';
import { readManifest } from './manifest.ts';
import {
  createEnvelope,
  keyIdOf,
  parseEnvelope,
  type ReleaseStatement,
  SIGNATURE_FILE,
  STATEMENT_TYPE,
  verifyEnvelopeSignature,
} from './signing.ts';
import { validatePluginDir } from './validator.ts';

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

/**
 * The signature `pack` ships. A signature that still covers every file
 * exactly is kept as it is (when `key` is given, only if that key made it):
 * packing a signed release, such as a tracked example, changes nothing in its
 * folder. Otherwise the folder is signed with `key`; without a key, a folder
 * that was never signed is checksummed, and a signed one whose files have
 * changed is refused (a fresh unsigned statement would silently drop the
 * author's signature).
 */
export async function signForPack(
  dir: string,
  key?: KeyObject,
): Promise<{ statement: ReleaseStatement | null; keyId: string | null; kept: boolean; findings: Finding[] }> {
  const text = await readFile(join(dir, SIGNATURE_FILE), 'utf8').catch(() => null);
  const parsed = text === null ? null : parseEnvelope(text);
  const envelope = parsed && 'envelope' in parsed ? parsed.envelope : null;
  if (envelope && envelope.signatures.length > 0) {
    const report = await validatePluginDir(dir, {
      // the files against the statement only: who trusts the key is the installing node's business
      policy: { allowUnsigned: true, trustedPublishers: [], requireChecksum: true },
      engineVersion: VERSION,
      signatureOnly: true,
      scan: false,
    });
    const broken = report.findings.filter((f) => f.severity === 'error');
    const mine = key
      ? envelope.signatures.find(
          (s) => s.keyid === keyIdOf(key) && verifyEnvelopeSignature(envelope, s, createPublicKey(key)),
        )
      : envelope.signatures[0];
    if (report.statement && broken.length === 0 && mine)
      return { statement: report.statement, keyId: mine.keyid, kept: true, findings: [] };
    if (!key) {
      return {
        statement: null,
        keyId: null,
        kept: false,
        findings: [
          ...broken,
          finding(
            'SIGNATURE_INVALID',
            'the files no longer match their signature: pack with --key to sign them again (nothing was written)',
            { path: SIGNATURE_FILE },
          ),
        ],
      };
    }
  }
  return { ...(await signPluginDir(dir, key)), kept: false };
}
