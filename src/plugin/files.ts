/**
 * The files of a plugin folder: walked without following links, named
 * portably (NFC, `/`-separated, no `..`), hashed with streamed reads.
 */

import { createHash } from 'node:crypto';
import { lstat, open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Finding, finding } from './findings.ts';

/** One file of a release: what the signed statement lists. */
export interface FileEntry {
  path: string;
  sha256: string;
  size: number;
}

export const MAX_PLUGIN_FILES = 5000;
const MAX_DEPTH = 32;
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

/** sha256 and size of a file: small ones in one read, large ones streamed in 1 MiB chunks. */
export async function hashFile(
  path: string,
  scratch: { buffer?: Buffer } = {},
): Promise<{ sha256: string; size: number }> {
  const st = await lstat(path);
  if (!st.isFile()) throw new Error(`${path} is not a regular file`);
  if (st.size < CHUNK) {
    const data = await readFile(path);
    return { sha256: createHash('sha256').update(data).digest('hex'), size: data.length };
  }
  scratch.buffer ??= Buffer.allocUnsafe(CHUNK);
  const chunk = scratch.buffer;
  const handle = await open(path, 'r');
  try {
    const hash = createHash('sha256');
    let size = 0;
    for (;;) {
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      hash.update(bytesRead === chunk.length ? chunk : chunk.subarray(0, bytesRead));
      size += bytesRead;
    }
    return { sha256: hash.digest('hex'), size };
  } finally {
    await handle.close();
  }
}

/** Hashes files under `dir`, a few at a time; a worker makes a chunk buffer only when it meets a large file. */
export async function hashFiles(dir: string, paths: readonly string[], concurrency = 4): Promise<FileEntry[]> {
  const out: FileEntry[] = new Array(paths.length);
  let next = 0;
  const worker = async () => {
    const scratch: { buffer?: Buffer } = {};
    while (next < paths.length) {
      const i = next++;
      const { sha256, size } = await hashFile(join(dir, paths[i]!), scratch);
      out[i] = { path: paths[i]!, sha256, size };
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
