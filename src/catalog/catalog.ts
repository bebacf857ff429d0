/**
 * The catalog service: search, info, install by name and range, outdated
 * and update, over one PluginManager. The CLI and the REST routes are thin
 * layers over it. A fresh client per question, so every answer reads the
 * catalogs anew, and each packument once (an update's look for newer
 * releases and its install share one).
 */

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import semver from 'semver';
import { createError } from '../errors.ts';
import type { Finding } from '../plugin/findings.ts';
import type { PluginManager } from '../plugin/manager.ts';
import { CatalogClient, type CatalogClientOptions, type SearchHit } from './client.ts';
import { type InstalledMember, installSet } from './install-set.ts';
import { isPluginId, type PluginSpec } from './names.ts';
import { readNpmrc } from './npmrc.ts';
import { type InstalledPlugin, resolveSet } from './resolve.ts';

export interface CatalogInfo {
  id: string;
  package: string;
  catalog: string;
  description: string;
  latestTag: string | null;
  installed: string | null;
  releases: { version: string; publisher: string | null; deprecated: string | null }[];
  /** The release an install would take now, downloaded and verified here as an install would (nothing installed). */
  check: {
    version: string;
    valid: boolean;
    signer: { keyId: string; publisher: string } | null;
    findings: Finding[];
  };
}

export interface CatalogInstallResult {
  /** What this install moved in, dependencies first. */
  installed: InstalledMember[];
  /** Members of the set that were already installed at a fitting version. */
  kept: { id: string; version: string }[];
}

export interface OutdatedPlugin {
  id: string;
  installed: string;
  latest: string;
  catalog: string;
}

/** What a server is told about catalogs. */
export interface CatalogSettings {
  catalogs: readonly string[];
  /** How often the server looks for updates, in minutes; 0 or absent: never on its own. */
  checkIntervalMinutes?: number;
}

export interface CatalogServiceOptions {
  /** Catalog addresses in order (empty: the public npm registry). */
  catalogs?: readonly string[];
  /** `.npmrc` settings; default read from the user's and the working folder's `.npmrc`. */
  npmrc?: Record<string, string>;
  /** One request's deadline, redirects included. Default 30 s. */
  timeoutMs?: number;
  /** The deadline of one question (a search; an install's resolution and downloads). Default 5 min. */
  totalTimeoutMs?: number;
}

/**
 * Installs and updates plugins from catalogs.
 *
 * @example
 * const catalog = createCatalog(manager, { catalogs: ['http://127.0.0.1:4873/'] });
 * await catalog.install([{ id: 'acme.report', range: '^2' }], { actor: 'ops' });
 */
export class Catalog {
  readonly #manager: PluginManager;
  readonly #client: CatalogClientOptions;

  constructor(manager: PluginManager, options: CatalogServiceOptions = {}) {
    this.#manager = manager;
    this.#client = {
      catalogs: options.catalogs ?? [],
      npmrc: options.npmrc ?? readNpmrc(),
      timeoutMs: options.timeoutMs,
      totalTimeoutMs: options.totalTimeoutMs,
    };
    // the addresses are checked now: a mistyped --catalog is bad usage before anything is asked
    new CatalogClient(this.#client);
  }

  /** The catalog addresses asked, in order. */
  get catalogs(): readonly string[] {
    return new CatalogClient(this.#client).catalogs;
  }

  #installed(): Map<string, InstalledPlugin> {
    return new Map(
      this.#manager
        .list()
        .filter((p) => p.source !== 'builtin')
        .map((p) => [p.id, { id: p.id, version: p.version, dependencies: p.dependencies }]),
    );
  }

  search(text: string, size?: number): Promise<SearchHit[]> {
    return new CatalogClient(this.#client).search(text, size);
  }

  /** A plugin's releases in the catalog, and the verdict on the release an install would take (`range`). */
  async info(id: string, range = '*'): Promise<CatalogInfo> {
    if (!isPluginId(id)) throw createError('USAGE', { message: `"${id}" is not a plugin id (e.g. acme.csv-tools)` });
    const client = new CatalogClient(this.#client);
    const entry = await client.entry(id);
    const release = entry.releases.find((r) => semver.satisfies(r.version, range));
    if (!release) throw createError('CATALOG_UNRESOLVED', { id, ranges: [range] });
    const work = await mkdtemp(join(tmpdir(), 'databridge-catalog-'));
    let report: Awaited<ReturnType<PluginManager['validate']>>;
    try {
      const file = join(work, 'release.tgz');
      // the tarball and the dependencies' packuments are asked for together: neither needs the other
      const [, set] = await Promise.all([
        client.tarball(release, entry.catalog).then((bytes) => writeFile(file, bytes)),
        // an install takes the release's dependencies along from the catalogs: counted as there when they resolve
        resolveSet([{ id, range: release.version }], this.#installed(), (x) => client.entry(x)).catch(() => null),
      ]);
      const assume = set ? new Map(set.members.filter((m) => m.id !== id).map((m) => [m.id, m.version])) : undefined;
      report = await this.#manager.validate(file, assume ? { assume } : {});
    } finally {
      await rm(work, { recursive: true, force: true });
    }
    return {
      id,
      package: entry.package,
      catalog: entry.catalog,
      description: entry.description,
      latestTag: entry.latestTag,
      installed: this.#installed().get(id)?.version ?? null,
      releases: entry.releases.map((r) => ({ version: r.version, publisher: r.publisher, deprecated: r.deprecated })),
      check: { version: release.version, valid: report.valid, signer: report.signer, findings: report.findings },
    };
  }

  /** Resolves and installs `specs` with their dependencies: the whole set or nothing. */
  install(
    specs: readonly PluginSpec[],
    options: { force?: boolean; actor?: string } = {},
  ): Promise<CatalogInstallResult> {
    return this.#install(new CatalogClient(this.#client), specs, options);
  }

  async #install(
    client: CatalogClient,
    specs: readonly PluginSpec[],
    options: { force?: boolean; actor?: string },
  ): Promise<CatalogInstallResult> {
    // the requested plugins' packuments are asked for first (resolving asks for every root's): what is
    // installed is gathered while the catalog answers
    const asked = new Map(specs.map((s) => [s.id, client.entry(s.id)]));
    // handled here, thrown where resolving awaits it (a failure in another root's must not leave it unhandled)
    for (const pending of asked.values()) pending.catch(() => {});
    const installed = this.#installed();
    const set = await resolveSet(specs, installed, (id) => asked.get(id) ?? client.entry(id));
    for (const m of set.members) {
      if (m.requested && m.release && m.installed === m.version && !options.force) {
        throw createError(
          'INSTALL_CONFLICT',
          { codes: ['ALREADY_INSTALLED'] },
          {
            details: {
              findings: [],
              message: `${m.id}@${m.version} is already installed; --force (force=true in the API) reinstalls it`,
            },
          },
        );
      }
    }
    const done = await installSet(this.#manager, client, set.members, options);
    return {
      installed: done,
      kept: set.members.filter((m) => m.release === null).map((m) => ({ id: m.id, version: m.version })),
    };
  }

  /** Installed plugins with a higher release in the catalogs (plugins no catalog has are left out). */
  outdated(): Promise<OutdatedPlugin[]> {
    return this.#outdated(new CatalogClient(this.#client));
  }

  async #outdated(client: CatalogClient): Promise<OutdatedPlugin[]> {
    const out: OutdatedPlugin[] = [];
    const installed = [...this.#installed().values()];
    const entries = await Promise.all(
      installed.map((p) =>
        client.entry(p.id).catch((err) => {
          if ((err as { code?: string }).code === 'CATALOG_PLUGIN_NOT_FOUND') return null;
          throw err;
        }),
      ),
    );
    installed.forEach((p, i) => {
      const top = entries[i]?.releases[0];
      if (top && semver.valid(p.version) && semver.gt(top.version, p.version))
        out.push({ id: p.id, installed: p.version, latest: top.version, catalog: entries[i]!.catalog });
    });
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  /**
   * Updates the named plugins (default: every outdated one) to their highest
   * release, with whatever those releases newly depend on, as one set.
   */
  async update(
    ids: readonly string[] = [],
    options: { force?: boolean; actor?: string } = {},
  ): Promise<CatalogInstallResult> {
    const installed = this.#installed();
    for (const id of ids) if (!installed.has(id)) throw createError('PLUGIN_NOT_FOUND', { id });
    const client = new CatalogClient(this.#client);
    const outdated = await this.#outdated(client);
    const wanted = outdated.filter((o) => ids.length === 0 || ids.includes(o.id));
    if (!wanted.length) return { installed: [], kept: [] };
    return this.#install(
      client,
      wanted.map((o) => ({ id: o.id, range: `>${o.installed}` })),
      options,
    );
  }
}

export function createCatalog(manager: PluginManager, options: CatalogServiceOptions = {}): Catalog {
  return new Catalog(manager, options);
}
