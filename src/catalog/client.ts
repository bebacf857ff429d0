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

import { createError, DataBridgeError } from '../errors.ts';
import { Limiter } from '../limiter.ts';
import { DEFAULT_BUNDLE_LIMITS } from '../plugin/bundle.ts';
import { type CatalogRelease, type DocumentRequest, type PackumentParts, readDocument } from './documents.ts';
import { PLUGIN_KEYWORD, packageName, pluginIdOf, scopeOf } from './names.ts';
import { RegistryError, type RegistryGet, registryGet } from './registry-http.ts';

export type { CatalogRelease } from './documents.ts';

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
  /** The deadline of everything one client asks (a search, a resolution and its downloads). Default 5 min. */
  totalTimeoutMs?: number;
  /** The most bytes of answers (packuments, searches) one client reads. Default 128 MiB. */
  maxQuestionBytes?: number;
  /** The largest tarball downloaded. Default: the largest bundle an install takes (50 MiB). */
  maxTarballBytes?: number;
}

/**
 * The largest packument or search answer read. A plugin's packument is a few KiB a release (npm's full document
 * per version), so 2000 releases (the most one may list) fit; what parsing a hostile one takes is bounded by it.
 */
const MAX_DOCUMENT_BYTES = 8 * 1024 * 1024;
/** The most bytes of answers (packuments, searches) one client reads: what it keeps of them stays bounded. */
const MAX_QUESTION_BYTES = 128 * 1024 * 1024;
/** About the most one client keeps of what it read (the releases of every packument). */
const MAX_KEPT_BYTES = 32 * 1024 * 1024;
/** The most search hits read, and the most packuments asked for at once. */
export const MAX_SEARCH_SIZE = 100;
const PARALLEL = 8;

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
      : e.code === 'ETIMEDOUT' && err instanceof RegistryError
        ? err.message
        : UNREACHABLE.has(e.code ?? '')
          ? `it cannot be reached (${e.code})`
          : e.statusCode
            ? `it answered HTTP ${e.statusCode}`
            : err instanceof RegistryError
              ? err.message
              : `it gave an answer that could not be read (${e.code ?? e.message ?? 'invalid'})`;
  return createError('CATALOG_UNAVAILABLE', { catalog, reason }, { cause: err });
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
  /** Aborts every request once the client's whole time is spent. */
  readonly #signal: AbortSignal;
  /** Packuments in flight (a search or a set fans out; memory stays bounded). */
  readonly #packuments = new Limiter(PARALLEL);
  /** Bytes of answers read so far, and about what is kept of them. */
  #documentBytes = 0;
  #keptBytes = 0;

  constructor(options: CatalogClientOptions) {
    this.#o = options;
    this.catalogs = (options.catalogs.length ? options.catalogs : [DEFAULT_CATALOG]).map(normalizeCatalog);
    this.#npmrc = options.npmrc ?? {};
    this.#signal = AbortSignal.timeout(options.totalTimeoutMs ?? 300_000);
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
      maxBytes: kind === 'json' ? MAX_DOCUMENT_BYTES : (this.#o.maxTarballBytes ?? DEFAULT_BUNDLE_LIMITS.maxBytes),
      signal: this.#signal,
      ...extra,
    });
  }

  /** A JSON answer from `catalog`, read down to what `request` asks for. */
  async #document<R extends DocumentRequest>(url: string, catalog: string, request: R) {
    const body = await this.#get(url, catalog, 'json');
    this.#documentBytes += body.length;
    const most = this.#o.maxQuestionBytes ?? MAX_QUESTION_BYTES;
    if (this.#documentBytes > most)
      throw createError('CATALOG_UNAVAILABLE', { catalog, reason: `its answers to one question passed ${most} bytes` });
    const read = await readDocument(request, body, catalog, url);
    // what is kept of the answers counts too: many packuments each under their caps must not add up without end
    if (!Array.isArray(read)) {
      this.#keptBytes += (read as PackumentParts).size;
      if (this.#keptBytes > MAX_KEPT_BYTES)
        throw createError('CATALOG_UNAVAILABLE', {
          catalog,
          reason: `the releases its answers to one question describe pass ${MAX_KEPT_BYTES / 1024 / 1024} MiB`,
        });
    }
    return read;
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
      let parts: PackumentParts;
      try {
        parts = await this.#packuments.run(() => this.#packument(id, name, catalog));
      } catch (err) {
        const coded = catalogError(catalog, err);
        if (coded) throw coded;
        continue;
      }
      const { releases, latestTag } = parts;
      if (!releases.length) continue;
      return { id, package: name, catalog, description: releases[0]!.description, latestTag, releases };
    }
    throw createError('CATALOG_PLUGIN_NOT_FOUND', { id, catalogs });
  }

  /**
   * A package's packument, at the address npm asks (`@scope%2fname`). The
   * full document: the abbreviated one (`application/vnd.npm.install-v1+json`)
   * has no `keywords` and no `databridge` field (id, publisher, dependencies),
   * which are what make a version a plugin release.
   */
  #packument(id: string, name: string, catalog: string): Promise<PackumentParts> {
    return this.#document(`${catalog}${name.replace('/', '%2f')}`, catalog, { kind: 'packument', id });
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
    if (!Number.isInteger(size) || size < 1 || size > MAX_SEARCH_SIZE)
      throw createError('USAGE', { message: `a search's size is 1 to ${MAX_SEARCH_SIZE}, not ${size}` });
    const hits = new Map<string, SearchHit>();
    for (const catalog of this.catalogs) {
      const ask = async (words: string): Promise<string[]> => {
        const url = new URL('-/v1/search', catalog);
        url.searchParams.set('text', words);
        url.searchParams.set('size', String(size));
        try {
          // no more hits are read than were asked for, whatever the registry sends
          return await this.#document(url.href, catalog, { kind: 'search', size });
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

  async #searchHits(catalog: string, names: readonly string[], hits: Map<string, SearchHit>): Promise<number> {
    let found = 0;
    const ids = [...new Set(names.map(pluginIdOf))].filter((id): id is string => id !== null && !hits.has(id));
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
