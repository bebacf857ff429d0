/**
 * Bundles: a plugin folder as a `.tgz`. Packing is deterministic (sorted
 * entries, no owners, fixed times). Extraction is hardened: the archive is
 * gunzipped in memory under an output cap, every header is checked before
 * a single byte is written, and files are written by this code (never by an
 * extractor) into a fresh staging folder. Refused: absolute paths, `..`,
 * links, devices, FIFOs, setuid/setgid/sticky bits, names that are not NFC
 * or that collide after case folding, and archives past the size,
 * file-count or expansion caps.
 */

import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createGunzip } from 'node:zlib';
import * as tar from 'tar';
import { createError } from '../errors.ts';
import { listPluginFiles } from './files.ts';
import { type Finding, finding } from './findings.ts';
import { MANIFEST_FILE } from './manifest.ts';
import { isPortablePath } from './signing.ts';
import { formatBytes } from './units.ts';

export interface BundleLimits {
  /** The .tgz itself. Default 50 MiB. */
  maxBytes: number;
  /** All files, uncompressed. Default 200 MiB. */
  maxExpandedBytes: number;
  /** Default 5000. */
  maxFiles: number;
  /** One file. Default 100 MiB. */
  maxFileBytes: number;
  /** Uncompressed over compressed, checked past 1 MiB uncompressed. Default 200. */
  maxRatio: number;
}

export const DEFAULT_BUNDLE_LIMITS: Readonly<BundleLimits> = Object.freeze({
  maxBytes: 50 * 1024 * 1024,
  maxExpandedBytes: 200 * 1024 * 1024,
  maxFiles: 5000,
  maxFileBytes: 100 * 1024 * 1024,
  maxRatio: 200,
});

/** Packs a plugin folder (signature included) into a gzipped tarball; `prefix` puts it in one top folder (`package`, as npm does). */
export async function packPlugin(
  dir: string,
  outFile: string,
  options: { prefix?: string } = {},
): Promise<{ files: string[]; findings: Finding[] }> {
  const { files, findings } = await listPluginFiles(dir);
  if (findings.length) return { files, findings };
  await mkdir(dirname(outFile), { recursive: true });
  await tar.c(
    {
      gzip: { level: 9 },
      cwd: dir,
      file: outFile,
      portable: true,
      mtime: new Date(0),
      noDirRecurse: true,
      ...(options.prefix ? { prefix: options.prefix } : {}),
    },
    files,
  );
  return { files, findings };
}

interface Entry {
  path: string;
  type: 'File' | 'Directory';
  data: Buffer;
}

const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile']);
/** One name in a path, in bytes: what Linux, macOS and Windows file systems all take. */
export const MAX_NAME_BYTES = 255;
/** A whole path inside the plugin, in bytes: well under PATH_MAX (4096) with the plugin folder in front. */
export const MAX_PATH_BYTES = 1024;

/** Why a path cannot be written on any file system we run on, or null. */
function nameProblem(path: string): string | null {
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) return `the path is over ${MAX_PATH_BYTES} bytes`;
  if (path.split('/').some((seg) => Buffer.byteLength(seg) > MAX_NAME_BYTES))
    return `a name in the path is over ${MAX_NAME_BYTES} bytes`;
  return null;
}

/** A path shown in a finding: a hostile name may be 10,000 characters. */
function shown(path: string): string {
  return path.length > 200 ? `${path.slice(0, 200)}…` : path;
}

const SLICE = 1024 * 1024;

type Inflated = { kind: 'ok'; raw: Buffer } | { kind: 'too-large' | 'bomb' | 'not-gzip' };

/**
 * Gunzips off the event loop (zlib's thread pool, a chunk at a time), stopping as soon as the output
 * passes the expansion cap or the ratio cap (checked past 1 MiB, as before): the output only grows, so
 * stopping at the first chunk over a cap refuses exactly what inflating everything would have. Eight
 * bombs inflated at once with gunzipSync held the loop (and /healthz) for about 2 s.
 */
function gunzipCapped(gz: Buffer, limits: BundleLimits): Promise<Inflated> {
  const cap = limits.maxExpandedBytes + 1024 * 1024;
  return new Promise((resolve) => {
    const gunzip = createGunzip();
    const chunks: Buffer[] = [];
    let total = 0;
    let done = false;
    const finish = (result: Inflated) => {
      if (done) return;
      done = true;
      gunzip.destroy();
      resolve(result);
    };
    gunzip.on('data', (chunk: Buffer) => {
      total += chunk.length;
      if (total > cap) return finish({ kind: 'too-large' });
      if (total > 1024 * 1024 && total / Math.max(gz.length, 1) > limits.maxRatio) return finish({ kind: 'bomb' });
      chunks.push(chunk);
    });
    gunzip.on('end', () => finish({ kind: 'ok', raw: Buffer.concat(chunks, total) }));
    gunzip.on('error', () => finish({ kind: 'not-gzip' }));
    gunzip.end(gz);
  });
}

/** Reads and checks a bundle; returns its entries only when nothing is wrong. */
export async function readBundle(
  source: string | Buffer,
  limits: BundleLimits = DEFAULT_BUNDLE_LIMITS,
): Promise<{ entries: Entry[]; findings: Finding[] }> {
  const fail = (code: 'ARCHIVE_UNSAFE' | 'ARCHIVE_TOO_LARGE', message: string, path: string | null = null) => ({
    entries: [],
    findings: [finding(code, message, { path })],
  });
  const gz = typeof source === 'string' ? await readFile(source) : source;
  if (gz.length > limits.maxBytes)
    return fail(
      'ARCHIVE_TOO_LARGE',
      `the bundle is ${formatBytes(gz.length)}; the most is ${formatBytes(limits.maxBytes)}`,
    );
  const inflated = await gunzipCapped(gz, limits);
  if (inflated.kind === 'too-large')
    return fail('ARCHIVE_TOO_LARGE', `the bundle expands past ${formatBytes(limits.maxExpandedBytes)}`);
  if (inflated.kind === 'bomb')
    return fail('ARCHIVE_TOO_LARGE', `the bundle expands more than ${limits.maxRatio}-fold (a compression bomb?)`);
  if (inflated.kind !== 'ok') return fail('ARCHIVE_UNSAFE', 'not a gzipped tar');
  const raw = inflated.raw;

  const findings: Finding[] = [];
  const entries: Entry[] = [];
  const folded = new Map<string, string>();
  let total = 0;
  let count = 0;
  const parser = new tar.Parser({
    strict: true,
    onReadEntry(e) {
      const path = e.path.replace(/^\.\//, '').replace(/\/$/, '');
      const unsafe = (message: string) => {
        findings.push(finding('ARCHIVE_UNSAFE', message, { path: shown(e.path) }));
        e.resume();
      };
      if (++count > limits.maxFiles) {
        if (count === limits.maxFiles + 1)
          findings.push(finding('ARCHIVE_TOO_LARGE', `more than ${limits.maxFiles} entries`));
        return void e.resume();
      }
      if (path === '' && e.type === 'Directory') return void e.resume();
      if (!isPortablePath(path)) return unsafe('absolute, `..`, empty or non-NFC path');
      const tooLong = nameProblem(path);
      if (tooLong) return unsafe(tooLong);
      const isFile = FILE_TYPES.has(e.type);
      if (!isFile && e.type !== 'Directory')
        return unsafe(`entry type ${e.type} is not allowed (links, devices and pipes are refused)`);
      if ((e.mode ?? 0) & 0o7000) return unsafe('setuid, setgid or sticky bits are not allowed');
      const key = path.toLowerCase();
      const other = folded.get(key);
      if (other !== undefined && !(e.type === 'Directory' && other === path)) {
        return unsafe(`collides with "${other}" where case is ignored`);
      }
      folded.set(key, path);
      const size = e.size ?? 0;
      if (size > limits.maxFileBytes) {
        findings.push(
          finding('ARCHIVE_TOO_LARGE', `${formatBytes(size)}; one file may have ${formatBytes(limits.maxFileBytes)}`, {
            path,
          }),
        );
        return void e.resume();
      }
      total += size;
      if (total > limits.maxExpandedBytes) {
        findings.push(
          finding('ARCHIVE_TOO_LARGE', `the files add up past ${formatBytes(limits.maxExpandedBytes)}`, { path }),
        );
        return void e.resume();
      }
      const chunks: Buffer[] = [];
      e.on('data', (c: Buffer) => chunks.push(c));
      e.on('end', () => entries.push({ path, type: isFile ? 'File' : 'Directory', data: Buffer.concat(chunks) }));
    },
  });
  parser.on('warn', (code: string) => {
    findings.push(
      // the code, not tar's text, which may quote the archive
      finding('ARCHIVE_UNSAFE', `malformed tar (${code})`),
    );
  });
  try {
    // in slices, letting the event loop turn between them: a 200 MiB archive is not read in one go
    for (let at = 0; at < raw.length; at += SLICE) {
      parser.write(raw.subarray(at, at + SLICE));
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    parser.end();
  } catch (err) {
    findings.push(finding('ARCHIVE_UNSAFE', `malformed tar (${(err as { code?: string }).code ?? 'unreadable'})`));
  }
  // a file where another entry needs a folder (`a`, then `a/b`): the second could not be written
  const files = new Map<string, string>();
  for (const e of entries) if (e.type === 'File') files.set(e.path.toLowerCase(), e.path);
  for (const e of entries) {
    const segs = e.path.split('/');
    for (let i = 1; i < segs.length; i++) {
      const file = files.get(segs.slice(0, i).join('/').toLowerCase());
      if (file !== undefined) {
        findings.push(
          finding('ARCHIVE_UNSAFE', `"${shown(file)}" is a file, and another entry needs it to be a folder`, {
            path: shown(e.path),
          }),
        );
        break;
      }
    }
  }
  if (findings.length) return { entries: [], findings };
  // a bundle may wrap the plugin in one top folder (as npm pack does)
  const tops = new Set(entries.map((e) => e.path.split('/')[0]));
  if (tops.size === 1 && !entries.some((e) => e.path === MANIFEST_FILE)) {
    const [top] = tops;
    if (entries.some((e) => e.path === `${top}/${MANIFEST_FILE}`)) {
      return {
        entries: entries.filter((e) => e.path !== top).map((e) => ({ ...e, path: e.path.slice(top!.length + 1) })),
        findings,
      };
    }
  }
  return { entries, findings };
}

/** Writes checked entries into `dir`, which must not exist yet. */
export async function writeEntries(dir: string, entries: readonly Entry[]): Promise<void> {
  await mkdir(dir, { recursive: false });
  for (const e of [...entries].sort((a, b) => a.path.length - b.path.length)) {
    const target = join(dir, e.path);
    try {
      if (e.type === 'Directory') await mkdir(target, { recursive: true });
      else {
        await mkdir(dirname(target), { recursive: true });
        await writeFile(target, e.data, { flag: 'wx', mode: 0o644 });
      }
    } catch (err) {
      // readBundle refuses every name it knows the file system would: one it missed is still the bundle's fault, never a 500
      const code = (err as NodeJS.ErrnoException).code;
      if (code && ENTRY_ERRNOS.has(code)) {
        const refused = finding('ARCHIVE_UNSAFE', 'the file system cannot hold this entry', { path: shown(e.path) });
        throw createError(
          'BUNDLE_INVALID',
          { codes: ['ARCHIVE_UNSAFE'] },
          { details: { findings: [refused] }, cause: err },
        );
      }
      throw err;
    }
  }
}

/** What a file system answers for a name it cannot take. */
const ENTRY_ERRNOS = new Set(['ENAMETOOLONG', 'EEXIST', 'ENOTDIR', 'EISDIR', 'EILSEQ', 'EINVAL']);
