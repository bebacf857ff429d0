/**
 * The files of a plugin folder: walked without following links, named
 * portably (NFC, `/`-separated, no `..`), hashed with streamed reads.
 */

import { createHash } from 'node:crypto';
import { type FileHandle, open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  formatBytes,
  MAX_PLUGIN_BYTES,
  OPEN_FLAGS,
  PluginFileRefused,
  readPluginBytesSync,
  readPluginFileSync,
  refuseUnlessRegular,
  tooLarge,
} from '../regular-file.ts';
import { type Finding, finding } from './findings.ts';

export { formatBytes, MAX_PLUGIN_BYTES, PluginFileRefused, readPluginBytesSync, readPluginFileSync };

/** One file of a release: what the signed statement lists. */
export interface FileEntry {
  path: string;
  sha256: string;
  size: number;
}

export const MAX_PLUGIN_FILES = 5000;

async function openRegular(path: string, maxBytes: number): Promise<{ handle: FileHandle; size: number }> {
  let handle: FileHandle;
  try {
    handle = await open(path, OPEN_FLAGS);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP')
      throw new PluginFileRefused(path, 'links are not allowed in a plugin');
    throw err;
  }
  try {
    const st = await handle.stat();
    refuseUnlessRegular(path, st, maxBytes);
    return { handle, size: st.size };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** How deep a plugin's folders may nest (the watcher looks as deep). */
export const MAX_DEPTH = 32;
const CHUNK = 1024 * 1024;

/**
 * Relative paths of every regular file under `dir`, sorted. Links, special
 * files, names that are not NFC and names that collide after case folding
 * are findings; `skip` names files at the root to leave out.
 */
export async function listPluginFiles(
  dir: string,
  skip: readonly string[] = [],
): Promise<{ files: string[]; findings: Finding[] }> {
  const files: string[] = [];
  const findings: Finding[] = [];
  const folded = new Map<string, string>();
  const walk = async (abs: string, rel: string, depth: number): Promise<void> => {
    if (depth > MAX_DEPTH) {
      findings.push(finding('STRUCTURE_INVALID', `folders nest deeper than ${MAX_DEPTH}`, { path: rel }));
      return;
    }
    const entries = await readdir(abs, { withFileTypes: true });
    for (const e of entries) {
      const path = rel ? `${rel}/${e.name}` : e.name;
      if (!rel && skip.includes(e.name)) continue;
      if (e.name.normalize('NFC') !== e.name) {
        findings.push(finding('STRUCTURE_INVALID', 'the name is not in Unicode NFC form', { path }));
        continue;
      }
      const key = path.toLowerCase();
      const other = folded.get(key);
      if (other !== undefined) {
        findings.push(finding('STRUCTURE_INVALID', `collides with "${other}" where case is ignored`, { path }));
        continue;
      }
      folded.set(key, path);
      if (e.isSymbolicLink())
        findings.push(
          finding(
            'STRUCTURE_INVALID',
            path.split('/').includes('node_modules')
              ? 'links are not allowed in a plugin (is this a plugin project? build it and install its dist/, or pack it)'
              : 'links are not allowed in a plugin',
            { path },
          ),
        );
      else if (e.isDirectory()) await walk(join(abs, e.name), path, depth + 1);
      else if (e.isFile()) {
        if (files.length >= MAX_PLUGIN_FILES) {
          findings.push(finding('STRUCTURE_INVALID', `more than ${MAX_PLUGIN_FILES} files`, { path }));
          return;
        }
        files.push(path);
      } else
        findings.push(
          finding('STRUCTURE_INVALID', 'special files (devices, pipes, sockets) are not allowed', { path }),
        );
    }
  };
  await walk(dir, '', 0);
  return { files: files.sort(), findings };
}

/**
 * sha256 and size of a file of a plugin folder: small ones in one read,
 * large ones streamed in 1 MiB chunks. A file that is not regular, or larger
 * than `maxBytes`, is refused (PluginFileRefused) before anything is read.
 */
export async function hashFile(
  path: string,
  scratch: { buffer?: Buffer } = {},
  maxBytes = MAX_PLUGIN_BYTES,
): Promise<{ sha256: string; size: number }> {
  const { handle, size: stated } = await openRegular(path, maxBytes);
  try {
    if (stated < CHUNK) {
      const data = await handle.readFile();
      return { sha256: createHash('sha256').update(data).digest('hex'), size: data.length };
    }
    scratch.buffer ??= Buffer.allocUnsafe(CHUNK);
    const chunk = scratch.buffer;
    const hash = createHash('sha256');
    let size = 0;
    for (;;) {
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      size += bytesRead;
      // a file that grows while it is read is held to the same bound
      if (size > maxBytes) throw tooLarge(path, maxBytes);
      hash.update(bytesRead === chunk.length ? chunk : chunk.subarray(0, bytesRead));
    }
    return { sha256: hash.digest('hex'), size };
  } finally {
    await handle.close();
  }
}

/**
 * Hashes files under `dir`, a few at a time; a worker makes a chunk buffer
 * only when it meets a large file. The files together may hold at most
 * MAX_PLUGIN_BYTES: past it, or at a file that is not regular, it throws
 * PluginFileRefused (its path relative to `dir`).
 */
export async function hashFiles(dir: string, paths: readonly string[], concurrency = 4): Promise<FileEntry[]> {
  const out: FileEntry[] = new Array(paths.length);
  let next = 0;
  let total = 0;
  const worker = async () => {
    const scratch: { buffer?: Buffer } = {};
    while (next < paths.length) {
      const i = next++;
      const rel = paths[i]!;
      try {
        const { sha256, size } = await hashFile(join(dir, rel), scratch, MAX_PLUGIN_BYTES - total);
        total += size;
        if (total > MAX_PLUGIN_BYTES) throw tooLarge(rel, MAX_PLUGIN_BYTES);
        out[i] = { path: rel, sha256, size };
      } catch (err) {
        if (!(err instanceof PluginFileRefused)) throw err;
        if (err.reason === 'too-large')
          throw new PluginFileRefused(
            rel,
            `the plugin's files hold more than ${formatBytes(MAX_PLUGIN_BYTES)}`,
            err.reason,
          );
        throw new PluginFileRefused(rel, err.message, err.reason);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, paths.length) }, worker));
  return out;
}

/** The digest of a release: sha256 over its sorted file list. Same bytes, same digest, however packed. */
export function releaseDigest(files: readonly FileEntry[]): string {
  const hash = createHash('sha256');
  for (const f of [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    hash.update(`${f.path}\0${f.sha256}\0${f.size}\n`);
  }
  return hash.digest('hex');
}
