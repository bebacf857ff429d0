/**
 * Validates a plugin folder, layer by layer, and returns every finding at
 * once: manifest schema; structure (entry point inside, no links, no
 * special files); the checksum of every file against the release
 * statement; the signature and the signer's trust (key known and not
 * revoked, publisher allowed, id in the key's namespaces); revoked
 * releases; rollback; engine and dependency ranges; the import scanner and
 * scanner hooks.
 */

import { join } from 'node:path';
import semver from 'semver';
import type { StateStore } from '../store/types.ts';
import {
  type FileEntry,
  hashFiles,
  listPluginFiles,
  PluginFileRefused,
  readPluginFileSync,
  releaseDigest,
} from './files.ts';
import { type Finding, finding, hasErrors } from './findings.ts';
import { checkRollback, keyRevokedFinding, type RollbackCheck, releaseRevocation } from './guards.ts';
import { componentNames, type PluginManifest, readManifest } from './manifest.ts';
import { runScanners, type ScannerHook, scanImports } from './scanner.ts';
import {
  type DsseEnvelope,
  loadKey,
  namespaceAllows,
  parseEnvelope,
  type ReleaseStatement,
  SIGNATURE_FILE,
  verifyEnvelopeSignature,
} from './signing.ts';

export interface TrustPolicy {
  /** Accept releases with no valid signature (checksums still apply when a statement is there). */
  allowUnsigned: boolean;
  /** When not empty, only these publishers' keys are accepted. */
  trustedPublishers: readonly string[];
  /** Every file must match a recorded sha256. */
  requireChecksum: boolean;
}

export interface ValidationOptions {
  policy: TrustPolicy;
  /** The trust store, revocations and rollback state. Without it no key is trusted. */
  store?: StateStore;
  /** The DataBridge version engine ranges are checked against. */
  engineVersion: string;
  /** Installed plugins (id → version), for dependency ranges. */
  installed?: ReadonlyMap<string, string>;
  /** Component type → the plugin that provides it, to find clashes before anything moves. */
  components?: ReadonlyMap<string, string>;
  /**
   * Check the release against the highest version installed before: `true`
   * or `install` for an install or upgrade, `load` for a folder found in the
   * plugin directory (start, watcher, reload), where the version installed
   * last (a forced downgrade) may load again.
   */
  checkRollback?: boolean | RollbackCheck;
  /** Allow installing below the highest version seen (a rollback stays a warning). */
  force?: boolean;
  /** Run the import scanner and the hooks. Default true. */
  scan?: boolean;
  scanners?: readonly ScannerHook[];
  /** Signature and trust only (`plugin verify`). */
  signatureOnly?: boolean;
  /**
   * How an unmet or missing dependency counts: an `error` for validate and
   * install (refused, naming it), a `warning` for a folder loaded from the
   * plugin directory (the registry then holds it in `error` until the
   * dependency is there). Default `warning`.
   */
  dependencies?: 'error' | 'warning';
}

/**
 * The store's per-release record (keyed by digest, beside the scan results)
 * that an operator installed this release unsigned with `--allow-unsigned`:
 * every later load honours it, as the policy flag did at install.
 */
export const UNSIGNED_ACCEPTED = 'unsigned-accepted';

/** Who accepted a release without a trusted signature, and when. */
export interface UnsignedAcceptance {
  actor: string;
  at: string;
}

export interface ValidationReport {
  valid: boolean;
  findings: Finding[];
  manifest: PluginManifest | null;
  files: FileEntry[];
  /** sha256 over the file list: the release's identity. */
  digest: string | null;
  statement: ReleaseStatement | null;
  /** Who signed it, when a trusted signature verified. */
  signer: { keyId: string; publisher: string } | null;
  /** Set when the release has no trusted signature and an operator accepted it so at install. */
  acceptedUnsigned?: UnsignedAcceptance | null;
}

/** The most signature.dsse.json may hold: a statement of MAX_PLUGIN_FILES entries and a few signatures. */
const MAX_SIGNATURE_BYTES = 4 * 1024 * 1024;

/** A report for a folder that could not be read through: its findings, nothing verified. */
function refusedReport(manifest: PluginManifest | null, findings: Finding[]): ValidationReport {
  return { valid: false, findings, manifest, files: [], digest: null, statement: null, signer: null };
}

/** Validates the plugin in `dir`. Never throws for bad input: problems are findings. */
export async function validatePluginDir(dir: string, options: ValidationOptions): Promise<ValidationReport> {
  const findings: Finding[] = [];
  const { manifest, findings: manifestFindings } = readManifest(dir);
  findings.push(...manifestFindings);

  const listing = await listPluginFiles(dir, [SIGNATURE_FILE]);
  findings.push(...listing.findings);
  if (manifest && !listing.files.includes(manifest.entryPoint)) {
    findings.push(
      finding('STRUCTURE_INVALID', `the entry point ${manifest.entryPoint} is not a file of the plugin`, {
        path: 'manifest.json',
        pointer: '/entryPoint',
      }),
    );
  }
  let files: FileEntry[];
  try {
    files = await hashFiles(dir, listing.files);
  } catch (err) {
    if (!(err instanceof PluginFileRefused)) throw err;
    // a pipe or a file past the size bound, put there since the listing: nothing more is read
    findings.push(finding('STRUCTURE_INVALID', err.message, { path: err.path }));
    return refusedReport(manifest, findings);
  }
  const digest = listing.findings.length === 0 ? releaseDigest(files) : null;

  // the release statement and its signatures
  let envelope: DsseEnvelope | null = null;
  let statement: ReleaseStatement | null = null;
  let text: string | null = null;
  try {
    text = readPluginFileSync(join(dir, SIGNATURE_FILE), MAX_SIGNATURE_BYTES);
  } catch (err) {
    if (err instanceof PluginFileRefused) {
      findings.push(finding('SIGNATURE_INVALID', `${SIGNATURE_FILE}: ${err.message}`, { path: SIGNATURE_FILE }));
      return refusedReport(manifest, findings);
    }
    text = null;
  }
  if (text !== null) {
    const parsed = parseEnvelope(text);
    if ('findings' in parsed) findings.push(...parsed.findings);
    else ({ envelope, statement } = parsed);
  }
  if (statement) findings.push(...compareFiles(statement, files));
  if (statement && manifest) {
    for (const field of ['id', 'version', 'publisher'] as const) {
      if (statement[field] !== manifest[field]) {
        findings.push(
          finding(
            'SIGNATURE_INVALID',
            `the signed statement says ${field} "${statement[field]}", the manifest "${manifest[field]}"`,
            {
              path: SIGNATURE_FILE,
            },
          ),
        );
      }
    }
  }
  if (!statement && text === null && options.policy.requireChecksum) {
    findings.push(
      finding('CHECKSUM_MISSING', `no ${SIGNATURE_FILE}: no recorded checksums (run databridge plugin sign)`, {
        path: SIGNATURE_FILE,
      }),
    );
  }

  let signer: ValidationReport['signer'] = null;
  const signatureFindings: Finding[] = [];
  if (envelope && envelope.signatures.length > 0 && manifest) {
    for (const sig of envelope.signatures) {
      const result = await checkSignature(envelope, sig, manifest, options);
      if ('signer' in result) {
        signer = result.signer;
        break;
      }
      signatureFindings.push(...result.findings);
    }
  }
  let allowUnsigned = options.policy.allowUnsigned;
  let acceptedUnsigned: UnsignedAcceptance | null = null;
  if (!signer && digest && options.store) {
    acceptedUnsigned =
      ((await options.store.getScanResult(digest, UNSIGNED_ACCEPTED)) as UnsignedAcceptance | undefined) ?? null;
    if (acceptedUnsigned) allowUnsigned = true;
  }
  if (!signer) {
    if (signatureFindings.length) findings.push(...signatureFindings);
    else if (text === null || envelope?.signatures.length === 0) {
      findings.push(
        finding(
          'SIGNATURE_MISSING',
          options.policy.allowUnsigned
            ? 'the release is not signed (allowed by policy)'
            : acceptedUnsigned
              ? `the release is not signed (accepted at install by ${acceptedUnsigned.actor}, ${acceptedUnsigned.at})`
              : 'the release is not signed',
          {
            path: SIGNATURE_FILE,
            severity: allowUnsigned ? 'warning' : 'error',
          },
        ),
      );
    }
  }
  if (!signer && allowUnsigned) {
    // policy lets an unsigned release in; trust findings stay, but as warnings
    for (const f of findings) if (f.code === 'PUBLISHER_UNTRUSTED') f.severity = 'warning';
  }

  if (manifest && !options.signatureOnly) {
    const revoked = options.store && (await releaseRevocation(options.store, manifest));
    if (revoked) findings.push(revoked);
    const engines = manifest.engines?.databridge;
    if (
      engines &&
      semver.validRange(engines) &&
      !semver.satisfies(options.engineVersion, engines, { includePrerelease: true })
    ) {
      findings.push(
        finding('ENGINE_INCOMPATIBLE', `needs DataBridge ${engines}; this is ${options.engineVersion}`, {
          path: 'manifest.json',
          pointer: '/engines/databridge',
        }),
      );
    }
    const severity = options.dependencies ?? 'warning';
    for (const [dep, range] of Object.entries(manifest.dependencies ?? {})) {
      const have = options.installed?.get(dep);
      const pointer = `/dependencies/${dep}`;
      if (have === undefined) {
        findings.push(
          finding('DEPENDENCY_MISSING', `needs ${dep} ${range}, which is not installed`, {
            path: 'manifest.json',
            pointer,
            severity,
          }),
        );
      } else if (semver.validRange(range) && !semver.satisfies(have, range, { includePrerelease: true })) {
        findings.push(
          finding('DEPENDENCY_MISSING', `needs ${dep} ${range}; ${have} is installed`, {
            path: 'manifest.json',
            pointer,
            severity,
          }),
        );
      }
    }
    for (const kind of ['processors', 'controllerServices', 'reportingTasks'] as const) {
      componentNames(manifest.provides[kind]).forEach((name, i) => {
        const owner = options.components?.get(name);
        if (owner !== undefined && owner !== manifest.id) {
          findings.push(
            finding('COMPONENT_CONFLICT', `"${name}" is already provided by ${owner}`, {
              path: 'manifest.json',
              pointer: `/provides/${kind}/${i}`,
            }),
          );
        }
      });
    }
    if (options.checkRollback && options.store && digest) {
      const at = options.checkRollback === 'load' ? 'load' : 'install';
      findings.push(...(await checkRollback(options.store, { ...manifest, digest }, { at, force: options.force })));
    }
    if (options.scan !== false && !hasErrors(listing.findings)) {
      findings.push(...(await scanImports(dir, files, manifest, options.store)).findings);
      if (options.scanners?.length) findings.push(...(await runScanners(options.scanners, dir, manifest)));
    }
  }
  return { valid: !hasErrors(findings), findings, manifest, files, digest, statement, signer, acceptedUnsigned };
}

function compareFiles(statement: ReleaseStatement, files: readonly FileEntry[]): Finding[] {
  const out: Finding[] = [];
  const onDisk = new Map(files.map((f) => [f.path, f]));
  const listed = new Set<string>();
  for (const f of statement.files) {
    listed.add(f.path);
    const disk = onDisk.get(f.path);
    if (!disk) out.push(finding('FILE_MISSING', 'listed in the signed statement but not present', { path: f.path }));
    else if (disk.sha256 !== f.sha256 || disk.size !== f.size) {
      out.push(
        finding(
          'CHECKSUM_MISMATCH',
          `sha256 ${disk.sha256.slice(0, 12)}… (${disk.size} B), signed ${f.sha256.slice(0, 12)}… (${f.size} B)`,
          { path: f.path },
        ),
      );
    }
  }
  for (const f of files)
    if (!listed.has(f.path))
      out.push(finding('FILE_UNLISTED', 'present but not in the signed statement', { path: f.path }));
  return out;
}

async function checkSignature(
  envelope: DsseEnvelope,
  sig: { keyid: string; sig: string },
  manifest: PluginManifest,
  options: ValidationOptions,
): Promise<{ signer: { keyId: string; publisher: string } } | { findings: Finding[] }> {
  const at = { path: SIGNATURE_FILE };
  const key = options.store ? await options.store.getTrustedKey(sig.keyid) : undefined;
  if (!key)
    return {
      findings: [
        finding(
          'PUBLISHER_UNTRUSTED',
          `signed by key ${sig.keyid.slice(0, 16)}…, which the trust store does not hold`,
          at,
        ),
      ],
    };
  if (!verifyEnvelopeSignature(envelope, sig, loadKey(key.publicKey, 'public'))) {
    return {
      findings: [finding('SIGNATURE_INVALID', `the signature by key ${sig.keyid.slice(0, 16)}… does not verify`, at)],
    };
  }
  if (key.revokedAt) return { findings: [keyRevokedFinding(key)] };
  const out: Finding[] = [];
  if (key.publisher !== manifest.publisher) {
    out.push(
      finding(
        'PUBLISHER_UNTRUSTED',
        `the key belongs to ${key.publisher}, but the manifest names ${manifest.publisher}`,
        at,
      ),
    );
  }
  if (options.policy.trustedPublishers.length && !options.policy.trustedPublishers.includes(key.publisher)) {
    out.push(
      finding(
        'PUBLISHER_UNTRUSTED',
        `publisher ${key.publisher} is not among the trusted publishers of this policy`,
        at,
      ),
    );
  }
  if (!key.namespaces.some((ns) => namespaceAllows(ns, manifest.id))) {
    out.push(
      finding(
        'NAMESPACE_FORBIDDEN',
        `${key.publisher}'s key may sign ${key.namespaces.join(', ')}, not ${manifest.id}`,
        {
          path: 'manifest.json',
          pointer: '/id',
        },
      ),
    );
  }
  return out.length ? { findings: out } : { signer: { keyId: key.keyId, publisher: key.publisher } };
}
