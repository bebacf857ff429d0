/**
 * Install and uninstall. A bundle is checked header by header, written into
 * a fresh staging folder, validated there, and moved in with renames
 * recorded in an intent file first: a crash at any point leaves either the
 * old plugin or the new one (`recoverInstalls` finishes or undoes the move
 * at the next start), never a mix. The previous version is kept in
 * `.previous/` for rollback.
 */

import { randomUUID } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import semver from 'semver';
import { createError } from '../errors.ts';
import type { InstallRecord, StateStore } from '../store/types.ts';
import { type BundleLimits, readBundle, writeEntries } from './bundle.ts';
import { brokenDependents, type DependentView } from './dependents.ts';
import { listPluginFiles, readPluginFileSync } from './files.ts';
import { errorCodes, type Finding, finding, hasErrors } from './findings.ts';
import { rollbackFindings } from './guards.ts';
import { MAX_MANIFEST_BYTES } from './manifest.ts';
import type { ValidationReport } from './validator.ts';

export const STAGING = '.staging';
export const PREVIOUS = '.previous';
const TRASH = '.trash';

/** Folder names in the plugin directory that are not plugins. */
export function isReservedName(name: string): boolean {
  return name.startsWith('.');
}

interface Intent {
  id: string;
  staged: string;
  target: string;
  previous: string | null;
}

async function exists(path: string): Promise<boolean> {
  try {
    await readdir(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Finishes or undoes moves a crash interrupted, and clears staging leftovers.
 * Run before the plugin directory is scanned.
 */
export async function recoverInstalls(pluginDir: string): Promise<string[]> {
  const staging = join(pluginDir, STAGING);
  const notes: string[] = [];
  let names: string[];
  try {
    names = await readdir(staging);
  } catch {
    return notes;
  }
  for (const name of names.filter((n) => n.endsWith('.intent.json'))) {
    try {
      const intent = JSON.parse(await readFile(join(staging, name), 'utf8')) as Intent;
      if (!(await exists(intent.target)) && intent.previous && (await exists(intent.previous))) {
        await rename(intent.previous, intent.target);
        notes.push(`${intent.id}: an interrupted install was undone; the previous version is back`);
      } else notes.push(`${intent.id}: an interrupted install was completed`);
    } catch (err) {
      notes.push(`${name}: could not be read (${(err as Error).message}); removed`);
    }
  }
  await rm(staging, { recursive: true, force: true });
  await rm(join(pluginDir, TRASH), { recursive: true, force: true });
  return notes;
}

/** Copies a plugin folder's regular files into `to` (links and special files are refused first). */
async function copyPluginFolder(from: string, to: string): Promise<Finding[]> {
  const { files, findings } = await listPluginFiles(from);
  if (findings.length) return findings;
  await mkdir(to);
  for (const f of files) {
    await mkdir(dirname(join(to, f)), { recursive: true });
    await copyFile(join(from, f), join(to, f));
  }
  return [];
}

export interface InstallContext {
  pluginDir: string;
  store: StateStore;
  limits: BundleLimits;
  /** Validates a staged folder for install. */
  /** A replica is checked against nothing shared (no rollback guard): the cluster accepted it already. */
  validate(dir: string, options: { force: boolean; replica: boolean }): Promise<ValidationReport>;
  /** Loads the plugin now in `dir` into the registry (registering or replacing it). */
  activate(dir: string, report: ValidationReport): Promise<void>;
  /** Serializes changes to one plugin id. */
  lock<T>(id: string, fn: () => Promise<T>): Promise<T>;
  /** The installed plugins, for the dependents guard. */
  installed(): readonly DependentView[];
}

export interface InstallOptions {
  /** Past the rollback and same-release checks. */
  force?: boolean;
  /**
   * A release the cluster already accepted, applied on this node: validated
   * and verified here as any install, moved in and loaded, but the shared
   * plugin state (written by the node that accepted it) is left alone.
   */
  replica?: boolean;
  /** Plugins installed in the same set: their ranges are the set's business, not the dependents guard's. */
  together?: ReadonlySet<string>;
  /** The release the caller asked for (a catalog's): a bundle whose manifest names another is refused. */
  release?: { id: string; version: string };
}

export interface InstallOutcome {
  id: string;
  version: string;
  digest: string;
  action: InstallRecord['action'];
  findings: Finding[];
}

function refuse(findings: Finding[]): never {
  const codes = errorCodes(findings);
  const conflict =
    codes.length > 0 &&
    codes.every((c) => c === 'VERSION_ROLLBACK' || c === 'VERSION_CONFLICT' || c === 'DEPENDENT_BROKEN');
  throw createError(conflict ? 'INSTALL_CONFLICT' : 'INSTALL_REFUSED', { codes }, { details: { findings } });
}

/**
 * Installs a bundle (file or bytes) or a folder. Throws INSTALL_REFUSED (with
 * every finding) or INSTALL_CONFLICT (rollback, same version with other bytes,
 * or that very release already installed) and leaves everything as it was.
 *
 * `settle` runs inside the plugin's lock once the plugin is in place: what
 * the caller records and answers about the install (history, audit, the
 * plugin as registered) must be done before a racing change to the same
 * plugin (an uninstall) may start, or the answer describes a later state
 * (an install audited as done answered 404 when an uninstall slipped in).
 */
export async function install(
  ctx: InstallContext,
  source: { bundle: string | Buffer } | { folder: string },
  options: InstallOptions,
  settle?: (outcome: InstallOutcome) => Promise<void>,
): Promise<InstallOutcome> {
  const stagingRoot = join(ctx.pluginDir, STAGING);
  const work = join(stagingRoot, randomUUID());
  const staged = join(work, 'plugin');
  // one call: an install ending beside this one may remove the empty staging root in between (below)
  await mkdir(work, { recursive: true });
  try {
    if ('bundle' in source) {
      const { entries, findings } = await readBundle(source.bundle, ctx.limits);
      if (findings.length) refuse(findings);
      await writeEntries(staged, entries);
    } else {
      const findings = await copyPluginFolder(source.folder, staged);
      if (findings.length) refuse(findings);
    }
    const report = await ctx.validate(staged, { force: options.force ?? false, replica: options.replica ?? false });
    const other = otherRelease(report.manifest, options.release);
    if (!report.valid || other.length) refuse([...report.findings, ...other]);
    const manifest = report.manifest!;
    return await ctx.lock(manifest.id, async () => {
      const outcome = await moveIn(ctx, report, staged, stagingRoot, options);
      await settle?.(outcome);
      return outcome;
    });
  } finally {
    await rm(work, { recursive: true, force: true });
    // a refusal leaves no trace: the staging root goes too once no install is using it
    await removeIfEmpty(stagingRoot);
  }
}

/** A finding when a manifest is not the release asked for (a catalog serving another release's bytes under its name). */
export function otherRelease(
  manifest: { id: string; version: string } | null,
  release: InstallOptions['release'],
): Finding[] {
  if (!release || !manifest || (manifest.id === release.id && manifest.version === release.version)) return [];
  return [
    finding(
      'MANIFEST_INVALID',
      `the bundle's manifest says ${manifest.id}@${manifest.version}, not the release asked for`,
      {
        path: 'manifest.json',
      },
    ),
  ];
}

/** Removes a folder only if it is empty (another install may be using it). */
async function removeIfEmpty(dir: string): Promise<void> {
  try {
    await rmdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOENT') throw err;
  }
}

async function moveIn(
  ctx: InstallContext,
  report: ValidationReport,
  staged: string,
  stagingRoot: string,
  options: InstallOptions,
): Promise<InstallOutcome> {
  const manifest = report.manifest!;
  // read inside the lock: a racing install of the same id has finished by now
  const shared = await ctx.store.getPluginState(manifest.id);
  // a replica is checked against nothing shared: the cluster accepted it already
  const state = options.replica ? undefined : shared;
  // the validator's check, again on the state read inside the lock
  const rollback = rollbackFindings(
    state,
    { version: manifest.version, digest: report.digest! },
    { force: options.force },
  );
  if (hasErrors(rollback)) refuse(rollback);
  // inside the lock as well: what is installed now is what the new version must not break
  if (!options.force && !options.replica) {
    const broken = brokenDependents(manifest.id, manifest.version, ctx.installed(), options.together);
    if (broken.length) refuse(broken);
  }
  {
    const installedNow = state?.version ?? null;
    if (
      installedNow === manifest.version &&
      state?.highestDigest === report.digest &&
      !options.force &&
      state.version
    ) {
      throw createError(
        'INSTALL_CONFLICT',
        { codes: ['ALREADY_INSTALLED'] },
        {
          details: {
            findings: [],
            message: `${manifest.id}@${manifest.version} is already installed; --force (force=true in the API) reinstalls it`,
          },
        },
      );
    }
    const action: InstallRecord['action'] =
      installedNow === null
        ? 'install'
        : semver.gt(manifest.version, installedNow)
          ? 'upgrade'
          : semver.lt(manifest.version, installedNow)
            ? 'downgrade'
            : 'reinstall';

    const target = join(ctx.pluginDir, manifest.id);
    const previousDir = join(ctx.pluginDir, PREVIOUS);
    const previous = join(previousDir, manifest.id);
    const hadTarget = await exists(target);
    if (options.replica && hadTarget) {
      // checked inside the lock: this node's own install of a higher version may have just landed
      const here = await installedVersion(target);
      if (here && semver.valid(here) && semver.gt(here, manifest.version)) {
        refuse([
          finding('VERSION_ROLLBACK', `this node runs ${here}, above the cluster's ${manifest.version}`, {
            path: 'manifest.json',
            pointer: '/version',
          }),
        ]);
      }
    }
    const intent: Intent = { id: manifest.id, staged, target, previous: hadTarget ? previous : null };
    const intentFile = join(stagingRoot, `${manifest.id}.intent.json`);
    await writeFile(`${intentFile}.tmp`, JSON.stringify(intent));
    await rename(`${intentFile}.tmp`, intentFile);
    if (hadTarget) {
      await mkdir(previousDir, { recursive: true });
      await rm(previous, { recursive: true, force: true });
      await rename(target, previous);
    }
    await rename(staged, target);
    await rm(intentFile, { force: true });

    const highest =
      state?.highestVersion && semver.gt(state.highestVersion, manifest.version)
        ? state.highestVersion
        : manifest.version;
    if (!options.replica) {
      await ctx.store.savePluginState(manifest.id, {
        version: manifest.version,
        enabled: state?.enabled ?? true,
        highestVersion: highest,
        highestDigest: highest === manifest.version ? report.digest : (state?.highestDigest ?? null),
      });
    }
    // the report was made in staging; the files are the same, now at their place
    await ctx.activate(target, report);
    return { id: manifest.id, version: manifest.version, digest: report.digest!, action, findings: report.findings };
  }
}

/** Removes an installed plugin's folder (kept aside until removed, so a crash leaves no half folder). */
export async function removePluginFolder(pluginDir: string, id: string): Promise<void> {
  const target = join(pluginDir, id);
  const trash = join(pluginDir, TRASH, `${id}-${randomUUID()}`);
  await mkdir(dirname(trash), { recursive: true });
  try {
    await rename(target, trash);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  await rm(trash, { recursive: true, force: true });
  await rm(join(pluginDir, PREVIOUS, id), { recursive: true, force: true });
}

/** The version of the plugin installed in `dir`, if its manifest says. */
async function installedVersion(dir: string): Promise<string | null> {
  try {
    const manifest = JSON.parse(readPluginFileSync(join(dir, 'manifest.json'), MAX_MANIFEST_BYTES)) as {
      version?: unknown;
    };
    return typeof manifest.version === 'string' ? manifest.version : null;
  } catch {
    return null;
  }
}
