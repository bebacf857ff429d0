/**
 * The trust guards a release meets at install, at every load (start, watcher,
 * reload) and while it runs: the rollback guard (the highest version and its
 * digest per plugin id in the state store) and the revocation lists. One
 * copy of each check: the validator, the installer's re-check inside its
 * lock and the manager's check of running plugins all call these.
 */

import semver from 'semver';
import type { PluginStateRecord, RevokedRelease, StateStore, TrustedKey } from '../store/types.ts';
import { type Finding, finding } from './findings.ts';
import { SIGNATURE_FILE } from './signing.ts';

/** Where a release is being checked: an install (or upgrade), or a load of what is in the plugin folder. */
export type RollbackCheck = 'install' | 'load';

export interface RollbackOptions {
  /** Install below the highest version seen (the finding stays, as a warning). */
  force?: boolean;
  /** `load`: the folder's release is checked against what was installed; messages say what was found. */
  at?: RollbackCheck;
  /**
   * At a load, the digest the version last installed was installed with
   * (the install history's), when that version is below the highest: a
   * forced downgrade loads again at the next start, with those bytes only.
   */
  installedDigest?: string | null;
}

const AT_VERSION = { path: 'manifest.json', pointer: '/version' } as const;

const short = (digest: string | null | undefined) => (digest ? `${digest.slice(0, 12)}…` : 'unknown');

/**
 * The rollback guard: a version below the highest installed is refused (a
 * warning when forced), the same version with other bytes always. At a load,
 * the version the operator installed last may be below the highest (a forced
 * downgrade): it loads, but only with the bytes it was installed with.
 */
export function rollbackFindings(
  state: PluginStateRecord | undefined,
  release: { version: string; digest: string },
  options: RollbackOptions = {},
): Finding[] {
  const highest = state?.highestVersion;
  if (!state || !highest || !semver.valid(highest) || !semver.valid(release.version)) return [];
  const load = options.at === 'load';
  const { version, digest } = release;
  if (semver.lt(version, highest)) {
    if (load && state.version === version) {
      const installed = options.installedDigest;
      if (!installed || installed === digest) return [];
      return [
        finding(
          'VERSION_CONFLICT',
          `the plugin folder holds ${version} with other bytes (digest ${short(digest)}) than the ${version} installed (${short(installed)})`,
          AT_VERSION,
        ),
      ];
    }
    const forced = options.force ? ' (forced)' : '';
    return [
      finding(
        'VERSION_ROLLBACK',
        load
          ? `the plugin folder holds ${version}, below ${highest}, the highest installed: a lower version put in place by hand is not loaded (install it with force to downgrade)`
          : `${version} is below ${highest}, the highest installed${forced}`,
        { ...AT_VERSION, severity: options.force && !load ? 'warning' : 'error' },
      ),
    ];
  }
  if (semver.eq(version, highest) && state.highestDigest && state.highestDigest !== digest) {
    return [
      finding(
        'VERSION_CONFLICT',
        load
          ? `the plugin folder holds ${version} with other bytes (digest ${short(digest)}) than the ${version} installed (${short(state.highestDigest)})`
          : `${version} was installed before with other bytes; publish a new version`,
        AT_VERSION,
      ),
    ];
  }
  return [];
}

/** The rollback guard for a release in a folder, reading the state store (and, at a load, the install history). */
export async function checkRollback(
  store: StateStore,
  release: { id: string; version: string; digest: string },
  options: Omit<RollbackOptions, 'installedDigest'> = {},
): Promise<Finding[]> {
  const state = await store.getPluginState(release.id);
  let installedDigest: string | null = null;
  if (
    options.at === 'load' &&
    state?.version === release.version &&
    state.highestVersion &&
    semver.valid(release.version) &&
    semver.valid(state.highestVersion) &&
    semver.lt(release.version, state.highestVersion)
  ) {
    const history = await store.installHistory(release.id);
    installedDigest =
      history.filter((h) => h.action !== 'uninstall' && h.version === release.version).at(-1)?.digest ?? null;
  }
  return rollbackFindings(state, release, { ...options, installedDigest });
}

/** KEY_REVOKED for a signing key the trust store holds as revoked. */
export function keyRevokedFinding(key: TrustedKey): Finding {
  return finding(
    'KEY_REVOKED',
    `key ${key.keyId.slice(0, 16)}… of ${key.publisher} was revoked: ${key.revokedReason ?? 'no reason given'}`,
    { path: SIGNATURE_FILE },
  );
}

/** RELEASE_REVOKED for a revoked id and version. */
export function releaseRevokedFinding(revoked: RevokedRelease): Finding {
  return finding('RELEASE_REVOKED', `${revoked.pluginId}@${revoked.version} was revoked: ${revoked.reason}`, {
    ...AT_VERSION,
  });
}

/** The revocation of one release (id and version), if the lists hold one. */
export async function releaseRevocation(
  store: StateStore,
  release: { id: string; version: string },
): Promise<Finding | null> {
  const revoked = (await store.listRevokedReleases()).find(
    (r) => r.pluginId === release.id && r.version === release.version,
  );
  return revoked ? releaseRevokedFinding(revoked) : null;
}

/**
 * What the revocation lists say of a release that runs: its id and version
 * revoked, or the key that signed it. Empty when it may go on.
 */
export async function revocationFindings(
  store: StateStore,
  release: { id: string; version: string; keyId: string | null },
): Promise<Finding[]> {
  const out: Finding[] = [];
  const key = release.keyId ? await store.getTrustedKey(release.keyId) : undefined;
  if (key?.revokedAt) out.push(keyRevokedFinding(key));
  const revoked = await releaseRevocation(store, release);
  if (revoked) out.push(revoked);
  return out;
}

/** A short fingerprint of the revocation lists: a change means running plugins are checked again. */
export async function revocationsFingerprint(store: StateStore): Promise<string> {
  const [keys, releases] = await Promise.all([store.listTrustedKeys(), store.listRevokedReleases()]);
  const revokedKeys = keys
    .filter((k) => k.revokedAt)
    .map((k) => k.keyId)
    .sort();
  const revokedReleases = releases.map((r) => `${r.pluginId}@${r.version}`).sort();
  return JSON.stringify([revokedKeys, revokedReleases]);
}
