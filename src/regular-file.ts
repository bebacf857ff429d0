/**
 * Reading a file of a plugin folder safely: a regular file only, opened
 * without following links and without waiting (a pipe put where a file was
 * expected), checked on the descriptor, and bounded in size. The plugin
 * loaders and the sandbox's module guard read plugin code this way.
 */

import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';

/** The most a plugin's files may hold in all, as a bundle may expand to (bundle.ts): a hand-placed file is held to it too. */
export const MAX_PLUGIN_BYTES = 200 * 1024 * 1024;

/**
 * How a file of a plugin folder is opened: never through a link, and never
 * waiting (a pipe put where a file was expected would hold the open, and a
 * thread of the host's pool, until a writer came). What was opened is then
 * checked to be a regular file, on the descriptor: nothing can swap it
 * between the check and the read.
 */
export const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** A file of a plugin folder that cannot be read as one: a link, pipe, device or socket, or too large. */
export class PluginFileRefused extends Error {
  readonly path: string;
  /** Why: not a regular file (a link, pipe, device or socket), or past its size bound. */
  readonly reason: 'not-regular' | 'too-large';
  constructor(path: string, message: string, reason: 'not-regular' | 'too-large' = 'not-regular') {
    super(message);
    this.path = path;
    this.reason = reason;
  }
}

/** The refusal of a file past `maxBytes`. */
export function tooLarge(path: string, maxBytes: number): PluginFileRefused {
  return new PluginFileRefused(path, `${path} is larger than ${formatBytes(maxBytes)}`, 'too-large');
}

export function refuseUnlessRegular(path: string, st: { isFile(): boolean; size: number }, maxBytes: number): void {
  if (!st.isFile()) throw new PluginFileRefused(path, 'special files (devices, pipes, sockets) are not allowed');
  if (st.size > maxBytes) throw tooLarge(path, maxBytes);
}

/**
 * The text of a file of a plugin folder (manifest.json, signature.dsse.json),
 * read only if it is a regular file of at most `maxBytes`: throws
 * PluginFileRefused otherwise, and the file system's error (ENOENT…) when
 * it cannot be opened.
 */
export function readPluginFileSync(path: string, maxBytes: number): string {
  return readPluginBytesSync(path, maxBytes).toString('utf8');
}

/** The bytes of a file of a plugin folder, as readPluginFileSync reads them. */
export function readPluginBytesSync(path: string, maxBytes: number): Buffer {
  let fd: number;
  try {
    fd = openSync(path, OPEN_FLAGS);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP')
      throw new PluginFileRefused(path, 'links are not allowed in a plugin');
    throw err;
  }
  try {
    refuseUnlessRegular(path, fstatSync(fd), maxBytes);
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** 1.5 MiB, 200 MiB, 512 bytes: a size as people read it. */
export function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${+(n / (1024 * 1024)).toFixed(1)} MiB`;
  if (n >= 1024) return `${+(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}
