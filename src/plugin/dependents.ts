/**
 * The dependents guard: installing or upgrading a plugin must not leave an
 * installed plugin whose dependency range no longer holds. Checked for local
 * and catalog installs alike (a forced install goes past it); plugins
 * installed together in one set are checked by the set's resolution instead.
 */

import semver from 'semver';
import { type Finding, finding } from './findings.ts';

export interface DependentView {
  id: string;
  version: string;
  dependencies: Readonly<Record<string, string>>;
}

/** A finding per installed plugin whose range on `id` would not hold for `version`. */
export function brokenDependents(
  id: string,
  version: string,
  installed: readonly DependentView[],
  together: ReadonlySet<string> = new Set(),
): Finding[] {
  const out: Finding[] = [];
  for (const p of installed) {
    if (p.id === id || together.has(p.id)) continue;
    const range = p.dependencies[id];
    if (range === undefined || semver.satisfies(version, range, { includePrerelease: true })) continue;
    out.push(
      finding('DEPENDENT_BROKEN', `${p.id}@${p.version} needs ${id} ${range}, which ${version} does not satisfy`, {
        path: 'manifest.json',
        pointer: '/version',
      }),
    );
  }
  return out;
}
