/**
 * Resolving a dependency set: every plugin asked for, and every plugin their
 * releases depend on, each at the highest catalog version satisfying every
 * range the set puts on it; a dependency already installed is kept when it
 * satisfies them all. Picks are revisited until nothing changes (a newer
 * pick may bring other ranges); there is no backtracking to older versions
 * of a plugin already picked, so a set that only an older pick would make
 * consistent is CATALOG_UNRESOLVED, naming the plugin and the ranges.
 */

import semver from 'semver';
import { createError } from '../errors.ts';
import type { CatalogEntry, CatalogRelease } from './client.ts';
import type { PluginSpec } from './names.ts';

/** A plugin installed here, as the resolver sees it. */
export interface InstalledPlugin {
  id: string;
  version: string;
  dependencies: Readonly<Record<string, string>>;
}

/** One plugin of a resolved set. */
export interface SetMember {
  id: string;
  version: string;
  /** The release to download; null when the installed version is kept. */
  release: CatalogRelease | null;
  /** The catalog it comes from (null when kept). */
  catalog: string | null;
  /** The version installed now, if any. */
  installed: string | null;
  /** Asked for by name, or needed by another member. */
  requested: boolean;
}

export interface ResolvedSet {
  /** Every member, dependencies before their dependents. */
  members: SetMember[];
}

const MAX_ROUNDS = 100;
/** The most plugins one set may hold: a catalog's metadata cannot make a resolution fan out without end. */
export const MAX_SET_MEMBERS = 256;

/**
 * Resolves `roots` against the catalogs (`lookup`) and what is installed.
 *
 * @example
 * const set = await resolveSet([{ id: 'acme.report', range: '^2' }], installed, (id) => client.entry(id));
 */
export async function resolveSet(
  roots: readonly PluginSpec[],
  installed: ReadonlyMap<string, InstalledPlugin>,
  lookup: (id: string) => Promise<CatalogEntry>,
): Promise<ResolvedSet> {
  const rootIds = new Set(roots.map((r) => r.id));
  const picks = new Map<string, SetMember & { dependencies: Readonly<Record<string, string>> }>();
  const entries = new Map<string, CatalogEntry>();
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const constraints = new Map<string, { range: string; from: string }[]>();
    const add = (id: string, range: string, from: string) => {
      // built-in plugins come with DataBridge, never from a catalog
      if (id.startsWith('builtin.')) return;
      const list = constraints.get(id) ?? [];
      list.push({ range, from });
      constraints.set(id, list);
    };
    for (const r of roots) add(r.id, r.range, 'the request');
    for (const p of picks.values())
      for (const [dep, range] of Object.entries(p.dependencies)) add(dep, range, `${p.id}@${p.version}`);
    for (const id of [...picks.keys()]) if (!constraints.has(id)) picks.delete(id);
    // the cap holds across rounds too: a catalog cannot cycle through ever new packuments
    if (constraints.size > MAX_SET_MEMBERS || entries.size > 2 * MAX_SET_MEMBERS) {
      throw createError('CATALOG_UNRESOLVED', {
        id: roots[0]?.id ?? '?',
        ranges: [`the dependencies named grew past ${MAX_SET_MEMBERS} plugins`],
      });
    }

    const fits = (version: string, id: string) =>
      constraints.get(id)!.every((c) => semver.satisfies(version, c.range, { includePrerelease: false }));
    const open = [...constraints.keys()].filter((id) => {
      const pick = picks.get(id);
      return !pick || !fits(pick.version, id);
    });
    if (open.length === 0) break;
    // the packuments of a round are asked for together
    await Promise.all(
      open
        .filter(
          (id) => !entries.has(id) && (rootIds.has(id) || !installed.has(id) || !fits(installed.get(id)!.version, id)),
        )
        .map(async (id) => entries.set(id, await lookup(id))),
    );
    for (const id of open) {
      const have = installed.get(id);
      if (!rootIds.has(id) && have && fits(have.version, id)) {
        picks.set(id, {
          id,
          version: have.version,
          release: null,
          catalog: null,
          installed: have.version,
          requested: false,
          dependencies: have.dependencies,
        });
        continue;
      }
      const entry = entries.get(id) ?? (await lookup(id));
      entries.set(id, entry);
      const release = entry.releases.find((r) => fits(r.version, id));
      if (!release) {
        const ranges = constraints.get(id)!.map((c) => `${c.range} (${c.from})`);
        throw createError(
          'CATALOG_UNRESOLVED',
          { id, ranges },
          {
            details: { id, ranges: constraints.get(id), available: entry.releases.slice(0, 10).map((r) => r.version) },
          },
        );
      }
      picks.set(id, {
        id,
        version: release.version,
        release,
        catalog: entry.catalog,
        installed: have?.version ?? null,
        requested: rootIds.has(id),
        dependencies: release.dependencies,
      });
    }
    if (round === MAX_ROUNDS - 1) {
      throw createError('CATALOG_UNRESOLVED', { id: roots[0]?.id ?? '?', ranges: ['the picks did not settle'] });
    }
  }
  return { members: dependencyFirst([...picks.values()]).map(({ dependencies: _d, ...m }) => m) };
}

/** Orders members so each comes after the members it depends on (a cycle keeps its order). */
function dependencyFirst<T extends { id: string; dependencies: Readonly<Record<string, string>> }>(items: T[]): T[] {
  const byId = new Map(items.map((i) => [i.id, i]));
  const out: T[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (item: T) => {
    if (state.has(item.id)) return;
    state.set(item.id, 'visiting');
    for (const dep of Object.keys(item.dependencies).sort()) {
      const d = byId.get(dep);
      if (d) visit(d);
    }
    state.set(item.id, 'done');
    out.push(item);
  };
  for (const item of [...items].sort((a, b) => a.id.localeCompare(b.id))) visit(item);
  return out;
}
