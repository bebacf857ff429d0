/**
 * Property migrations: a flow made with an older version of a plugin is
 * brought up to the version that runs it, by the steps its processors
 * declare (`ProcessorInfo.migrations`). Data, not code: the host applies
 * them before any plugin code sees the properties, and the flow's findings
 * say what changed.
 */

import semver from 'semver';
import type { PropertyMigration } from '../sdk/index.ts';

export interface Migrated {
  properties: Record<string, string>;
  /** The migrations applied, oldest first. */
  applied: PropertyMigration[];
}

/**
 * Applies every migration newer than `from` and no newer than `to`, oldest
 * first. A `from` that is not a version, or is not older, changes nothing.
 */
export function migrateProperties(
  properties: Readonly<Record<string, string>>,
  migrations: readonly PropertyMigration[] | undefined,
  from: string | undefined,
  to: string,
): Migrated {
  const out = { ...properties };
  if (!migrations?.length || !from || !semver.valid(from) || !semver.lt(from, to)) {
    return { properties: out, applied: [] };
  }
  const due = migrations
    .filter((m) => semver.valid(m.version) && semver.gt(m.version, from) && semver.lte(m.version, to))
    .sort((a, b) => semver.compare(a.version, b.version));
  for (const m of due) {
    for (const [oldName, newName] of Object.entries(m.rename ?? {})) {
      if (!(oldName in out)) continue;
      if (!(newName in out)) out[newName] = out[oldName]!;
      delete out[oldName];
    }
    for (const [name, map] of Object.entries(m.values ?? {})) {
      const value = out[name];
      if (value !== undefined && Object.hasOwn(map, value)) out[name] = map[value]!;
    }
    for (const name of m.remove ?? []) delete out[name];
    for (const [name, value] of Object.entries(m.add ?? {})) if (!(name in out)) out[name] = value;
  }
  return { properties: out, applied: due };
}

/** One line for people: `1.0.0 → 2.0.0: renamed Case → Mode; …`. */
export function describeMigrations(from: string, to: string, applied: readonly PropertyMigration[]): string {
  const steps = applied.map((m) => {
    const parts: string[] = [];
    for (const [a, b] of Object.entries(m.rename ?? {})) parts.push(`renamed "${a}" to "${b}"`);
    for (const name of Object.keys(m.values ?? {})) parts.push(`mapped the values of "${name}"`);
    for (const name of m.remove ?? []) parts.push(`removed "${name}"`);
    for (const name of Object.keys(m.add ?? {})) parts.push(`added "${name}"`);
    return `${m.version}: ${m.description ?? (parts.join(', ') || 'no change')}`;
  });
  return `properties migrated from ${from} to ${to} (${steps.join('; ')})`;
}
