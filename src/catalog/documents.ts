/**
 * What a registry answers, read down to the few parts the catalog uses:
 * a packument's plugin releases and its `latest` tag, a search answer's
 * package names. Nothing in them is trusted: any shape that is not the
 * expected one is skipped or refused, never dereferenced. A large answer is
 * parsed in a worker thread, so a hostile or enormous document (a packument
 * of millions of empty objects takes seconds to parse) never stalls the
 * host's event loop, and only the small result crosses back.
 */

import { Worker } from 'node:worker_threads';
import semver from 'semver';
import { createError } from '../errors.ts';
import { Limiter } from '../limiter.ts';
import { PLUGIN_KEYWORD } from './names.ts';

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

/** What the catalog reads of a packument. */
export interface PackumentParts {
  /** The plugin releases of the id asked for, highest first. */
  releases: CatalogRelease[];
  /** The registry's `latest` tag: shown, never trusted for choosing a version. */
  latestTag: string | null;
  /** Why no release was kept: more than MAX_RELEASES, or more to hold than MAX_PARTS_BYTES. */
  refused?: 'too many' | 'too large';
  /** About how many bytes `releases` take to hold (strings and entries), counted against a question's share. */
  size: number;
}

/** The most plugin releases one packument may list (a plugin with a release a day for five years has 1800). */
export const MAX_RELEASES = 2000;
/** A release's description and deprecation notice are kept to this many characters (shown, never used). */
const MAX_DESCRIPTION = 1024;
/**
 * A release whose metadata passes these is no plugin release (a manifest could not say as much) and is skipped:
 * what the catalog keeps of a release stays a few KiB, so 2000 of them stay a few MiB.
 */
const MAX_DEPENDENCIES = 64;
const MAX_FIELD = 2048;
/** About what one packument's releases may take to hold; more is CATALOG_UNAVAILABLE. */
export const MAX_PARTS_BYTES = 8 * 1024 * 1024;
/** What holding one string or entry costs beside its characters (an estimate of V8's overhead). */
const ENTRY = 32;
/**
 * Large answers parsed at once, each in a worker of its own: what parsing takes stays bounded whatever a search
 * fans out to (an 8 MiB answer of empty objects takes about 400 MiB to parse). The worker has no heap cap of its
 * own: a worker that runs out of heap can abort the whole process while Node disposes of it (seen on Node 24), so
 * the bound is the answer's size (client.ts) and this count.
 */
const WORKERS_AT_ONCE = 1;

export type DocumentRequest = { kind: 'packument'; id: string } | { kind: 'search'; size: number };
type DocumentResult<R extends DocumentRequest> = R extends { kind: 'packument' } ? PackumentParts : string[];

/** Answers up to this size are parsed on the event loop (a plugin's packument is a few KiB a release). */
const INLINE_BYTES = 256 * 1024;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringOrNull(v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}

/** The plugin releases of `id` in a parsed packument: versions that are exact semver, carry the keyword and a tarball. */
export function packumentParts(id: string, packument: unknown): PackumentParts {
  if (!isObject(packument)) return { releases: [], latestTag: null, size: 0 };
  let size = 0;
  const held = (s: string | null) => {
    size += (s?.length ?? 0) + ENTRY;
    return s;
  };
  const versions = isObject(packument.versions) ? packument.versions : {};
  const releases: CatalogRelease[] = [];
  for (const [version, raw] of Object.entries(versions)) {
    // exact: semver.valid would take `v1.0.0` or ` 1.0.0 ` and give back another string than the release's name
    if (!isObject(raw) || semver.valid(version) !== version) continue;
    if (!Array.isArray(raw.keywords) || !raw.keywords.includes(PLUGIN_KEYWORD)) continue;
    const meta = isObject(raw.databridge) ? raw.databridge : {};
    if (meta.id !== undefined && meta.id !== id) continue;
    const dist = isObject(raw.dist) ? raw.dist : {};
    const tarball = stringOrNull(dist.tarball);
    const integrity = stringOrNull(dist.integrity);
    const publisher = stringOrNull(meta.publisher);
    if (!tarball || [tarball, integrity, publisher].some((s) => s !== null && s.length > MAX_FIELD)) continue;
    const dependencies: Record<string, string> = {};
    if (isObject(meta.dependencies)) {
      const entries = Object.entries(meta.dependencies);
      if (
        entries.length > MAX_DEPENDENCIES ||
        entries.some(([k, r]) => k.length > 256 || typeof r !== 'string' || r.length > 256)
      )
        continue;
      for (const [k, r] of entries) {
        dependencies[k] = r as string;
        size += k.length + (r as string).length + 2 * ENTRY;
      }
    }
    if (releases.length === MAX_RELEASES) return { releases: [], latestTag: null, refused: 'too many', size: 0 };
    releases.push({
      id,
      version: held(version)!,
      publisher: held(publisher),
      description: held((stringOrNull(raw.description) ?? '').slice(0, MAX_DESCRIPTION))!,
      dependencies,
      deprecated: held(stringOrNull(raw.deprecated)?.slice(0, MAX_DESCRIPTION) ?? null),
      integrity: held(integrity),
      tarball: held(tarball)!,
    });
    size += 4 * ENTRY;
    if (size > MAX_PARTS_BYTES) return { releases: [], latestTag: null, refused: 'too large', size };
  }
  const tags = isObject(packument['dist-tags']) ? packument['dist-tags'] : {};
  return {
    releases: releases.sort((a, b) => semver.rcompare(a.version, b.version)),
    latestTag: typeof tags.latest === 'string' && semver.valid(tags.latest) === tags.latest ? tags.latest : null,
    size,
  };
}

/** The package names of a parsed search answer (`objects[].package.name`), the first `size` of them. */
export function searchNames(body: unknown, size: number): string[] {
  if (!isObject(body) || !Array.isArray(body.objects)) return [];
  const names: string[] = [];
  for (const o of body.objects) {
    if (names.length >= size) break;
    if (isObject(o) && isObject(o.package) && typeof o.package.name === 'string') names.push(o.package.name);
  }
  return names;
}

/** Parses and reads one answer (what the worker runs, and the event loop for a small one). */
export function readParsed<R extends DocumentRequest>(request: R, text: string): DocumentResult<R> | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  return (
    request.kind === 'packument' ? packumentParts(request.id, parsed) : searchNames(parsed, request.size)
  ) as DocumentResult<R>;
}

/**
 * Reads what `catalog` answered for `url`: on the event loop when small, in
 * a worker thread when large. An answer that is not JSON is CATALOG_UNAVAILABLE.
 */
export async function readDocument<R extends DocumentRequest>(
  request: R,
  body: Buffer,
  catalog: string,
  url: string,
): Promise<DocumentResult<R>> {
  const result =
    body.length <= INLINE_BYTES ? readParsed(request, body.toString('utf8')) : await inWorker(request, body);
  if (result === null)
    throw createError('CATALOG_UNAVAILABLE', { catalog, reason: `it answered ${url} with what is not JSON` });
  if (result === 'failed')
    throw createError('CATALOG_UNAVAILABLE', { catalog, reason: `its answer to ${url} could not be read` });
  if (!Array.isArray(result) && result.refused) {
    const id = (request as { id: string }).id;
    throw createError('CATALOG_UNAVAILABLE', {
      catalog,
      reason:
        result.refused === 'too many'
          ? `it lists more than ${MAX_RELEASES} releases of ${id} (${url})`
          : `its releases of ${id} say more than ${MAX_PARTS_BYTES / 1024 / 1024} MiB about themselves (${url})`,
    });
  }
  return result;
}

const workers = new Limiter(WORKERS_AT_ONCE);

function inWorker<R extends DocumentRequest>(request: R, body: Buffer): Promise<DocumentResult<R> | null | 'failed'> {
  return workers.run(() => runWorker(request, body));
}

function runWorker<R extends DocumentRequest>(request: R, body: Buffer): Promise<DocumentResult<R> | null | 'failed'> {
  return new Promise((resolve) => {
    // copied once into a buffer of their own (a small Buffer shares a pooled one), which is then moved
    const bytes = new Uint8Array(body.buffer, body.byteOffset, body.byteLength).slice();
    const worker = new Worker(new URL('./document-worker.ts', import.meta.url), {
      workerData: { request, bytes },
      transferList: [bytes.buffer],
      env: {},
      argv: [],
    });
    worker.once('message', (result: DocumentResult<R> | null) => resolve(result));
    worker.once('error', () => resolve('failed'));
    worker.once('exit', (code) => {
      if (code !== 0) resolve('failed');
    });
  });
}
