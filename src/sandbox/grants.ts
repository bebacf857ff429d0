/**
 * Which of a plugin's declared paths a process sandbox may have bound, checked
 * at load and again at every (re)start, since a plugin that may write or
 * start processes can change the host's folders between two starts:
 *
 * - absolute and normalized (no `..`, no relative path resolved against
 *   the host's working directory);
 * - its own real path: no symbolic link anywhere in it (a link planted
 *   where a declared path was missing would lead the bind elsewhere);
 * - not `/`, not under the host's kernel and system folders (`/proc`, `/sys`,
 *   `/dev`, `/run`, `/boot`, `/etc`), and neither is, holds nor lies inside
 *   DataBridge's data dir, plugin dir or its own root;
 * - reachable by the sandbox's host uid (when DataBridge runs as root):
 *   readable, and writable when declared writable.
 *
 * A path that fails is refused (never bound), with a coded reason.
 */

import { chownSync, lstatSync, mkdirSync, realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, normalize, resolve, sep } from 'node:path';

/** What a plugin's manifest asks of the sandbox: folders to read and write, network, child processes. */
export interface PluginPermissions {
  fs?: { read?: string[]; write?: string[] };
  network?: boolean;
  childProcess?: boolean;
}

/** An absolute, normalized path: what `permissions.fs` may hold. */
export function isNormalizedPath(path: string): boolean {
  return isAbsolute(path) && normalize(path) === path && (path === '/' || !path.endsWith('/'));
}

export type GrantCode = 'PATH_INVALID' | 'PATH_FORBIDDEN' | 'PATH_SYMLINK' | 'PATH_NOT_ACCESSIBLE';

export interface GrantRefusal {
  code: GrantCode;
  path: string;
  message: string;
}

export interface GrantContext {
  /** Folders no grant may be, hold or lie inside: the data dir, the plugin dir, DataBridge's root. */
  protectedRoots: readonly string[];
  /** The host uid the sandbox runs as, when DataBridge switches to one (runs as root); null: no switch. */
  uid: number | null;
  /** Make a missing writable folder (owned by `uid`); only at load. */
  create?: boolean;
}

/** Kernel and system folders no plugin may declare: the host's procfs, devices, sockets, boot and configuration. */
export const SYSTEM_ROOTS = ['/proc', '/sys', '/dev', '/run', '/boot', '/etc'] as const;

/** DataBridge's own root (where src/ and package.json are). */
export const DATABRIDGE_ROOT = resolve(import.meta.dirname, '..', '..');

const within = (path: string, root: string): boolean =>
  path === root || path.startsWith(root === '/' ? '/' : `${root}${sep}`);

function realOr(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

/** Whether `uid` (and only its own gid) may do `need` (bits of rwx) on `path`, walking every folder above it. */
function accessFor(uid: number, path: string, need: number): string | null {
  const chain: string[] = [];
  for (let p = path; ; p = dirname(p)) {
    chain.unshift(p);
    if (p === dirname(p)) break;
  }
  for (const [i, p] of chain.entries()) {
    const st = statSync(p);
    const shift = st.uid === uid ? 6 : st.gid === uid ? 3 : 0;
    const bits = (st.mode >> shift) & 7;
    const want = i === chain.length - 1 ? need : 1;
    if ((bits & want) !== want) return p;
  }
  return null;
}

function refusal(code: GrantCode, path: string, message: string): GrantRefusal {
  return { code, path, message: `declared path ${path}: ${message}` };
}

/** One declared path, or why it is refused; null path: it does not exist (left out). */
function checkOne(path: string, writable: boolean, ctx: GrantContext): GrantRefusal | { ok: string | null } {
  if (typeof path !== 'string' || !isNormalizedPath(path))
    return refusal(
      'PATH_INVALID',
      String(path),
      'must be absolute and normalized (no "..", ".", "//" or trailing "/")',
    );
  if (path === '/') return refusal('PATH_FORBIDDEN', path, 'the whole file system cannot be declared');
  const system = SYSTEM_ROOTS.find((r) => within(path, r));
  if (system)
    return refusal('PATH_FORBIDDEN', path, `${system} is the host's own (kernel, devices, sockets, configuration)`);
  for (const root of ctx.protectedRoots.map(realOr)) {
    if (within(path, root) || within(root, path))
      return refusal(
        'PATH_FORBIDDEN',
        path,
        `it is, holds or lies inside ${root}, which is DataBridge's (data, plugins or its own files)`,
      );
  }
  let exists = true;
  try {
    lstatSync(path);
  } catch {
    exists = false;
  }
  if (!exists && writable && ctx.create) {
    // made by the host, owned by the sandbox's uid, so it is writable there and nobody else's to redirect
    const parent = dirname(path);
    if (realOr(parent) !== parent)
      return refusal('PATH_SYMLINK', path, `a folder above it resolves to ${realOr(parent)}`);
    try {
      mkdirSync(path, { recursive: true, mode: 0o755 });
      if (ctx.uid !== null) chownSync(path, ctx.uid, ctx.uid);
      exists = true;
    } catch {
      // left out below, as a missing path
    }
  }
  if (!exists) return { ok: null };
  const real = realOr(path);
  if (real !== path)
    return refusal(
      'PATH_SYMLINK',
      path,
      `it resolves to ${real}: a declared path must be its own real path, with no symbolic link in it`,
    );
  if (ctx.uid !== null) {
    const dir = statSync(path).isDirectory();
    const need = writable ? (dir ? 3 : 2) : dir ? 5 : 4;
    const stop = accessFor(ctx.uid, path, need);
    if (stop) {
      const fix =
        stop === path && writable
          ? `chown ${ctx.uid} ${path}`
          : `chmod o+${stop === path ? (dir ? 'rx' : 'r') : 'x'} ${stop}`;
      return refusal(
        'PATH_NOT_ACCESSIBLE',
        path,
        `the sandbox's uid ${ctx.uid} cannot ${writable ? 'write' : 'read'} it (stopped at ${stop}): ${fix}`,
      );
    }
  }
  return { ok: path };
}

/** The declared paths a sandbox gets bound, the ones refused (with their code) and the missing ones. */
export function checkGrants(
  permissions: PluginPermissions,
  ctx: GrantContext,
): { read: string[]; write: string[]; refused: GrantRefusal[]; missing: string[] } {
  const out = { read: [] as string[], write: [] as string[], refused: [] as GrantRefusal[], missing: [] as string[] };
  for (const [list, writable] of [
    [permissions.fs?.read ?? [], false],
    [permissions.fs?.write ?? [], true],
  ] as const) {
    for (const path of list) {
      const r = checkOne(path, writable, ctx);
      if ('code' in r) out.refused.push(r);
      else if (r.ok === null) out.missing.push(path);
      else (writable ? out.write : out.read).push(r.ok);
    }
  }
  return out;
}

/** Why the sandbox's uid cannot read a plugin's own folder (bound read-only), or null. */
export function folderUnreadable(folder: string, uid: number | null): GrantRefusal | null {
  if (uid === null) return null;
  const path = realOr(folder);
  const stop = accessFor(uid, path, 5);
  return stop
    ? refusal(
        'PATH_NOT_ACCESSIBLE',
        path,
        `the sandbox's uid ${uid} cannot read the plugin's folder (stopped at ${stop}): chmod o+rx ${stop}`,
      )
    : null;
}
