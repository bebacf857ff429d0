/**
 * The catalog client: packuments, tarballs and search from npm-compatible
 * registries, asked as npm asks (`registry-http.ts`: npm's credential
 * lookup and agent, so `.npmrc` auth, scopes, proxies and TLS settings hold;
 * integrity). Which catalog answers for a plugin: the registry `.npmrc`
 * names for its scope when there is one, else the configured catalogs in
 * order, the first that has the package winning. A catalog that cannot be
 * reached is CATALOG_UNAVAILABLE, never skipped: the answer must not depend
 * on which registry happened to be up. Nothing here is trusted; the
 * installer verifies every release it downloads.
 */

import semver from 'semver';
import { createError, DataBridgeError } from '../errors.ts';
import { DEFAULT_BUNDLE_LIMITS } from '../plugin/bundle.ts';
import { PLUGIN_KEYWORD, packageName, pluginIdOf, scopeOf } from './names.ts';
import { RegistryError, type RegistryGet, registryGet } from './registry-http.ts';

/** One release as the catalog describes it (unverified). */
export interface CatalogRelease {
  id: string;
  version: string;
  /** The publisher the package metadata claims; the signature says who really signed. */
  publisher: string | null;
  description: string;
  /** The plugin's dependencies (id → range) as the package metadata says; checked against the manifest after download. */
  dependencies: Record<string, string>;
  deprecated: string | null;
  integrity: string | null;
  tarball: string;
}

/** A plugin in a catalog: its releases carrying the plugin keyword, highest first. */
export interface CatalogEntry {
  id: string;
  package: string;
  catalog: string;
  description: string;
  /** The registry's `latest` tag: shown, never trusted for choosing a version. */
  latestTag: string | null;
  releases: CatalogRelease[];
}

export interface SearchHit {
  id: string;
  package: string;
  catalog: string;
  version: string;
  description: string;
  publisher: string | null;
}

export interface CatalogClientOptions {
  /** Registry addresses, in the order they are asked. */
  catalogs: readonly string[];
  /** `.npmrc` settings (auth, scope registries). */
  npmrc?: Record<string, string>;
  /** One request's deadline, redirects included. Default 30 s. */
  timeoutMs?: number;
  /** The largest tarball downloaded. Default: the largest bundle an install takes (50 MiB). */
  maxTarballBytes?: number;
}

/** The largest packument read (a plugin's is a few KiB a release; npm's largest are tens of MiB). */
const MAX_PACKUMENT_BYTES = 64 * 1024 * 1024;

/** The public npm registry: the catalog when none is configured. */
export const DEFAULT_CATALOG = 'https://registry.npmjs.org/';

/** A registry address, checked and with one trailing slash. */
export function normalizeCatalog(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch {
    throw createError('USAGE', { message: `"${url}" is not a catalog address (http:// or https://)` });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw createError('USAGE', { message: `"${url}" is not a catalog address (http:// or https://)` });
  return parsed.href.endsWith('/') ? parsed.href : `${parsed.href}/`;
}

const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'FETCH_ERROR',
  'ECONNECTIONTIMEOUT',
  'EIDLETIMEOUT',
  'ERESPONSETIMEOUT',
  'ETRANSFERTIMEOUT',
]);

/** Turns a fetch failure into our codes; `null` for "this catalog has no such package". */
function catalogError(catalog: string, err: unknown): DataBridgeError | null {
  if (err instanceof DataBridgeError) return err;
  const e = err as { code?: string; statusCode?: number | null; message?: string };
  if (e.code === 'E404' || e.statusCode === 404) return null;
  const reason =
    e.statusCode === 401 || e.statusCode === 403
      ? 'it refused the credentials (see .npmrc)'
      : UNREACHABLE.has(e.code ?? '')
        ? `it cannot be reached (${e.code})`
        : e.statusCode
          ? `it answered HTTP ${e.statusCode}`
          : err instanceof RegistryError
            ? err.message
            : `it gave an answer that could not be read (${e.code ?? e.message ?? 'invalid'})`;
  return createError('CATALOG_UNAVAILABLE', { catalog, reason }, { cause: err });
}

/** The parts of a search answer read here. */
interface SearchBody {
  objects?: { package?: { name?: string } }[];
}

/** The parts of a packument read here; nothing in it is trusted. */
interface Packument {
  versions?: Record<string, unknown>;
  'dist-tags'?: Record<string, string>;
}

function stringOrNull(v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}

/** The releases of a packument that are plugin releases of `id`, highest first. */
export function pluginReleases(id: string, packument: Packument): CatalogRelease[] {
  const out: CatalogRelease[] = [];
  for (const [version, raw] of Object.entries(packument.versions ?? {})) {
    const v = raw as {
      keywords?: unknown;
      description?: unknown;
      deprecated?: unknown;
      dist?: { tarball?: unknown; integrity?: unknown };
      databridge?: { id?: unknown; publisher?: unknown; dependencies?: unknown };
    };
    if (!semver.valid(version) || !Array.isArray(v.keywords) || !v.keywords.includes(PLUGIN_KEYWORD)) continue;
    if (v.databridge?.id !== undefined && v.databridge.id !== id) continue;
    const tarball = stringOrNull(v.dist?.tarball);
    if (!tarball) continue;
    const deps: Record<string, string> = {};
    const rawDeps = v.databridge?.dependencies;
    if (rawDeps && typeof rawDeps === 'object')
      for (const [k, r] of Object.entries(rawDeps)) if (typeof r === 'string') deps[k] = r;
    out.push({
      id,
      version,
      publisher: stringOrNull(v.databridge?.publisher),
      description: stringOrNull(v.description) ?? '',
      dependencies: deps,
      deprecated: stringOrNull(v.deprecated),
      integrity: stringOrNull(v.dist?.integrity),
      tarball,
    });
  }
  return out.sort((a, b) => semver.rcompare(a.version, b.version));
}

/**
 * Reads catalogs.
 *
 * @example
 * const client = new CatalogClient({ catalogs: ['http://127.0.0.1:4873/'] });
 * const entry = await client.entry('acme.csv-tools');
 */
export class CatalogClient {
  readonly catalogs: readonly string[];
  readonly #npmrc: Record<string, string>;
  readonly #o: CatalogClientOptions;
  /** Packuments asked for in this client's life: one resolution asks for each once. */
  readonly #entries = new Map<string, Promise<CatalogEntry>>();

  constructor(options: CatalogClientOptions) {
    this.#o = options;
    this.catalogs = (options.catalogs.length ? options.catalogs : [DEFAULT_CATALOG]).map(normalizeCatalog);
    this.#npmrc = options.npmrc ?? {};
  }

  /** The catalogs asked for `id`, in order: the `.npmrc` registry of its scope, else every configured one. */
  catalogsFor(id: string): string[] {
    const scoped = this.#npmrc[`${scopeOf(id)}:registry`];
    return scoped ? [normalizeCatalog(scoped)] : [...this.catalogs];
  }

  /** A GET to `catalog` (or a tarball it names), with its `.npmrc` credentials. */
  #get(url: string, catalog: string, kind: RegistryGet['kind'], extra: Partial<RegistryGet> = {}): Promise<Buffer> {
    return registryGet({
      url,
      registry: catalog,
      npmrc: this.#npmrc,
      kind,
      timeoutMs: this.#o.timeoutMs ?? 30_000,
      maxBytes: kind === 'json' ? MAX_PACKUMENT_BYTES : (this.#o.maxTarballBytes ?? DEFAULT_BUNDLE_LIMITS.maxBytes),
      ...extra,
    });
  }

  /** A JSON document from `catalog`; an answer that is not JSON is CATALOG_UNAVAILABLE. */
  async #json<T>(url: string, catalog: string): Promise<T> {
    const body = await this.#get(url, catalog, 'json');
    try {
      return JSON.parse(body.toString('utf8')) as T;
    } catch {
      throw createError('CATALOG_UNAVAILABLE', { catalog, reason: `it answered ${url} with what is not JSON` });
    }
  }

  /** The plugin in the first catalog that has it. CATALOG_PLUGIN_NOT_FOUND or CATALOG_UNAVAILABLE. */
  entry(id: string): Promise<CatalogEntry> {
    let pending = this.#entries.get(id);
    if (!pending) {
      pending = this.#fetchEntry(id);
      this.#entries.set(id, pending);
      // a failure is not kept: the next question asks again
      pending.catch(() => this.#entries.delete(id));
    }
    return pending;
  }

  async #fetchEntry(id: string): Promise<CatalogEntry> {
    const name = packageName(id);
    const catalogs = this.catalogsFor(id);
    for (const catalog of catalogs) {
      let packument: Packument;
      try {
        packument = await this.#packument(name, catalog);
      } catch (err) {
        const coded = catalogError(catalog, err);
        if (coded) throw coded;
        continue;
      }
      const releases = pluginReleases(id, packument);
      if (!releases.length) continue;
      const tags = packument['dist-tags'] ?? {};
      return {
        id,
        package: name,
        catalog,
        description: releases[0]!.description,
        latestTag: tags.latest ?? null,
        releases,
      };
    }
    throw createError('CATALOG_PLUGIN_NOT_FOUND', { id, catalogs });
  }

  /**
   * A package's packument, at the address npm asks (`@scope%2fname`). The
   * full document: the abbreviated one (`application/vnd.npm.install-v1+json`)
   * has no `keywords` and no `databridge` field (id, publisher, dependencies),
   * which are what make a version a plugin release.
   */
  #packument(name: string, catalog: string): Promise<Packument> {
    return this.#json<Packument>(`${catalog}${name.replace('/', '%2f')}`, catalog);
  }

  /**
   * A release's tarball, from the packument's address, its integrity checked
   * against the packument's. Nothing is cached: a packument is asked for anew
   * every time, so an update is seen at once, and the release is verified
   * after download in any case.
   */
  async tarball(release: CatalogRelease, catalog: string): Promise<Buffer> {
    const spec = `${packageName(release.id)}@${release.version}`;
    try {
      return await this.#get(release.tarball, catalog, 'tarball', { integrity: release.integrity });
    } catch (err) {
      const e = err as { code?: string };
      if (e.code === 'EINTEGRITY' || e.code === 'ETOOLARGE') {
        const code = e.code === 'EINTEGRITY' ? 'CHECKSUM_MISMATCH' : 'ARCHIVE_TOO_LARGE';
        const message =
          e.code === 'EINTEGRITY'
            ? `the tarball ${catalog} served (${spec}) does not match the integrity it published`
            : `the tarball ${catalog} serves (${spec}) is larger than the largest bundle an install takes`;
        throw createError(
          'INSTALL_REFUSED',
          { codes: [code] },
          {
            cause: err,
            details: {
              findings: [
                {
                  code,
                  severity: 'error',
                  path: null,
                  pointer: null,
                  message: `${release.id}@${release.version}: ${message}`,
                },
              ],
            },
          },
        );
      }
      throw (
        catalogError(catalog, err) ?? createError('CATALOG_PLUGIN_NOT_FOUND', { id: release.id, catalogs: [catalog] })
      );
    }
  }

  /**
   * Searches every catalog (`/-/v1/search`) and keeps the packages that are
   * plugin releases: a registry's search may ignore `keywords:`, so each hit's
   * packument is read and must carry the plugin keyword. Where two catalogs
   * have the same plugin, the one asked first wins.
   */
  async search(text: string, size = 20): Promise<SearchHit[]> {
    const hits = new Map<string, SearchHit>();
    for (const catalog of this.catalogs) {
      const ask = async (words: string): Promise<SearchBody> => {
        const url = new URL('-/v1/search', catalog);
        url.searchParams.set('text', words);
        url.searchParams.set('size', String(size));
        try {
          return await this.#json<SearchBody>(url.href, catalog);
        } catch (err) {
          throw (
            catalogError(catalog, err) ?? createError('CATALOG_UNAVAILABLE', { catalog, reason: 'it has no search' })
          );
        }
      };
      const found = await this.#searchHits(
        catalog,
        await ask(text ? `${text} keywords:${PLUGIN_KEYWORD}` : `keywords:${PLUGIN_KEYWORD}`),
        hits,
      );
      // a registry that reads `keywords:` as words (Verdaccio matches names and descriptions) finds nothing so
      // (every plugin's package name holds `databridge-`, so an empty search asks for that)
      if (found === 0) await this.#searchHits(catalog, await ask(text || 'databridge'), hits);
    }
    return [...hits.values()];
  }

  async #searchHits(catalog: string, body: SearchBody, hits: Map<string, SearchHit>): Promise<number> {
    let found = 0;
    const ids = (body.objects ?? [])
      .map((o) => (typeof o.package?.name === 'string' ? pluginIdOf(o.package.name) : null))
      .filter((id): id is string => id !== null && !hits.has(id));
    const entries = await Promise.all(
      ids.map((id) =>
        this.entry(id).catch((err) => {
          if ((err as DataBridgeError).code === 'CATALOG_PLUGIN_NOT_FOUND') return null;
          throw err;
        }),
      ),
    );
    for (const entry of entries) {
      // the hit must come from the catalog that answers for the plugin (its scope's, or the first that has it)
      if (!entry || entry.catalog !== catalog || hits.has(entry.id)) continue;
      const top = entry.releases[0]!;
      hits.set(entry.id, {
        id: entry.id,
        package: entry.package,
        catalog,
        version: top.version,
        description: top.description,
        publisher: top.publisher,
      });
      found++;
    }
    return found;
  }
}
