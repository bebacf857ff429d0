/**
 * Installing a resolved set: the whole set or nothing. Every release is
 * downloaded and verified first, each exactly as a local bundle is
 * (`manager.validate`, the same checks as install: archive rules,
 * checksums, signature, trusted publisher and namespace, revocations,
 * rollback), with the set's other members taken as installed; its manifest
 * must be the release the catalog named, and its dependencies must be met
 * by the set or what is installed. Only then do members move in, through
 * the same installer as a local bundle, dependencies first, each install
 * checking again that the bundle is the release named (a set of one is
 * verified by its install alone, which refuses it whole); should one still
 * be refused (a change that raced this one), those already moved in are put
 * back as they were.
 */

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import semver from 'semver';
import { createError, isDataBridgeError } from '../errors.ts';
import { brokenDependents } from '../plugin/dependents.ts';
import { type Finding, finding } from '../plugin/findings.ts';
import { otherRelease, PREVIOUS } from '../plugin/installer.ts';
import type { PluginManager } from '../plugin/manager.ts';
import { componentNames } from '../plugin/manifest.ts';
import type { ValidationReport } from '../plugin/validator.ts';
import type { CatalogClient } from './client.ts';
import type { SetMember } from './resolve.ts';

/** One member the set installed. */
export interface InstalledMember {
  id: string;
  version: string;
  /** install, upgrade, downgrade or reinstall. */
  action: string;
  previous: string | null;
  catalog: string;
  signer: { keyId: string; publisher: string } | null;
}

export interface SetInstallOptions {
  force?: boolean;
  actor?: string;
}

function refuseSet(findings: Finding[]): never {
  const errors = findings.filter((f) => f.severity === 'error');
  const codes = [...new Set(errors.map((f) => f.code))];
  const conflict =
    codes.length > 0 &&
    codes.every((c) => c === 'VERSION_ROLLBACK' || c === 'VERSION_CONFLICT' || c === 'DEPENDENT_BROKEN');
  throw createError(conflict ? 'INSTALL_CONFLICT' : 'INSTALL_REFUSED', { codes }, { details: { findings } });
}

/** A member's finding, its message naming the release (one answer may hold several members' findings). */
function about(member: SetMember, f: Finding): Finding {
  return { ...f, message: `${member.id}@${member.version}: ${f.message}` };
}

/** Downloads, verifies and installs every member that has a release to install. */
export async function installSet(
  manager: PluginManager,
  client: CatalogClient,
  members: readonly SetMember[],
  options: SetInstallOptions = {},
): Promise<InstalledMember[]> {
  const moving = members.filter((m) => m.release !== null);
  if (!moving.length) return [];
  const bundles = await Promise.all(moving.map((m) => client.tarball(m.release!, m.catalog!)));
  const versions = new Map(members.map((m) => [m.id, m.version]));
  const installedNow = manager.list().filter((p) => p.source !== 'builtin');
  const installedVersions = new Map(installedNow.map((p) => [p.id, p.version]));
  const findings: Finding[] = [];
  const signers = new Map<string, InstalledMember['signer']>();
  // a set of one is verified by the install itself, which refuses it whole, the release it must be
  // included: verifying it twice doubled the cost of the commonest install by name, and reading its
  // manifest beforehand cost another gunzip and tar parse of the bundle
  const reports = moving.length > 1 ? await validateMembers(manager, bundles, versions, options.force) : [];
  reports.forEach((report, i) => {
    const m = moving[i]!;
    findings.push(...report.findings.filter((f) => f.severity === 'error').map((f) => about(m, f)));
    signers.set(m.id, report.signer);
    const manifest = report.manifest;
    if (!manifest) return;
    findings.push(...otherRelease(manifest, m).map((f) => about(m, f)));
    for (const [dep, range] of Object.entries(manifest.dependencies ?? {})) {
      if (dep.startsWith('builtin.')) continue;
      const have = versions.get(dep) ?? installedVersions.get(dep);
      if (have === undefined || !semver.satisfies(have, range, { includePrerelease: true })) {
        findings.push(
          about(
            m,
            finding(
              'DEPENDENCY_MISSING',
              have === undefined
                ? `needs ${dep} ${range}, which neither the set nor this host has (the catalog's metadata did not name it)`
                : `needs ${dep} ${range}; the set has ${have}`,
              { path: 'manifest.json', pointer: `/dependencies/${dep}` },
            ),
          ),
        );
      }
    }
  });
  // two members providing one component: each verifies against what is installed, not against the other
  const providers = new Map<string, string>();
  reports.forEach((report, i) => {
    const m = moving[i]!;
    const manifest = report.manifest;
    if (!manifest) return;
    for (const kind of ['processors', 'controllerServices', 'reportingTasks'] as const) {
      componentNames(manifest.provides?.[kind]).forEach((name, at) => {
        const other = providers.get(name);
        if (other && other !== m.id) {
          findings.push(
            about(
              m,
              finding('COMPONENT_CONFLICT', `"${name}" is also provided by ${other}, in the same set`, {
                path: 'manifest.json',
                pointer: `/provides/${kind}/${at}`,
              }),
            ),
          );
        } else providers.set(name, m.id);
      });
    }
  });
  if (!options.force) {
    const together = new Set(members.map((m) => m.id));
    for (const m of moving)
      findings.push(...brokenDependents(m.id, m.version, installedNow, together).map((f) => about(m, f)));
  }
  if (findings.length) refuseSet(findings);

  const together = new Set(members.map((m) => m.id));
  const done: InstalledMember[] = [];
  for (const [i, m] of moving.entries()) {
    try {
      const { outcome } = await manager.install(bundles[i]!, {
        force: options.force,
        actor: options.actor,
        together,
        release: { id: m.id, version: m.version },
      });
      const signature = manager.signatureOf(m.id);
      done.push({
        id: m.id,
        version: m.version,
        action: outcome.action,
        previous: m.installed,
        catalog: m.catalog!,
        signer:
          signers.get(m.id) ??
          (signature?.state === 'trusted' && signature.keyId && signature.publisher
            ? { keyId: signature.keyId, publisher: signature.publisher }
            : null),
      });
    } catch (err) {
      await undo(manager, done, options.actor);
      if (isDataBridgeError(err)) {
        const inner = (err.details as { findings?: Finding[] } | null)?.findings;
        if (inner) refuseSet(inner.map((f) => about(m, f)));
      }
      throw err;
    }
  }
  return done;
}

/** Verifies every member of a set as an install would, the set's other members taken as installed. */
async function validateMembers(
  manager: PluginManager,
  bundles: readonly Buffer[],
  versions: ReadonlyMap<string, string>,
  force: boolean | undefined,
): Promise<ValidationReport[]> {
  const work = await mkdtemp(join(tmpdir(), 'databridge-catalog-'));
  try {
    return await Promise.all(
      bundles.map(async (bytes, i) => {
        const file = join(work, `${i}.tgz`);
        await writeFile(file, bytes);
        return manager.validate(file, { force, assume: versions });
      }),
    );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Puts back what a set moved in before one of its members was refused, last first. */
async function undo(
  manager: PluginManager,
  done: readonly InstalledMember[],
  actor: string | undefined,
): Promise<void> {
  for (const m of [...done].reverse()) {
    try {
      if (m.previous === null) await manager.uninstall(m.id, { force: true, actor });
      else await manager.install(join(manager.config.pluginDir, PREVIOUS, m.id), { force: true, actor });
    } catch (err) {
      manager.log.error({ plugin: m.id, err: (err as Error).message }, 'catalog: putting a set member back failed');
    }
  }
}
