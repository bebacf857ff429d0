/**
 * The bubblewrap command line of a process sandbox: new user, PID, IPC,
 * UTS, cgroup and (unless the plugin may use the network) network
 * namespaces, an unprivileged uid, and a root file system that holds only
 * what the sandbox needs: the Node binary and its shared libraries,
 * DataBridge's runtime files and the plugins' folders read-only, the
 * plugin's declared paths, a private /tmp, its own /proc and a minimal
 * /dev. Whatever is not bound does not exist inside: no host file, Unix
 * socket or process is reachable, and a child process the plugin starts
 * sees the same.
 *
 * Programs: without `childProcess` there is no /bin/sh or any program but
 * Node inside (Node's permission model refuses to spawn anyway); with it,
 * /usr and the merged-/usr links (/bin, /lib, …) are bound read-only so a
 * shell and the usual tools run, still seeing no /etc, /home, data
 * directory or other plugin.
 *
 * Who it runs as: uid and gid 65534 inside a new user namespace, with
 * every capability dropped and no new user namespaces of its own
 * (`--disable-userns`). bwrap maps that uid to whoever starts bwrap: when
 * DataBridge runs as root that is never root but the sandbox's host uid
 * (setpriv, process-command.ts; 65534 unless configured), so files it
 * writes in a declared folder are that uid's and root's 0600 files stay
 * closed; when DataBridge is not root, it is DataBridge's own user. It
 * holds no capability outside its namespaces, so it reaches only what is
 * bound, by that uid's permissions.
 */

import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readlinkSync, realpathSync } from 'node:fs';
import { isAbsolute, sep } from 'node:path';

/** The uid and gid inside the sandbox: nobody. */
export const SANDBOX_UID = 65534;

export interface Bind {
  source: string;
  dest: string;
  writable: boolean;
}

export interface BwrapOptions {
  /** Share the host's network namespace (the plugin declared `network`). */
  network: boolean;
  /** Bind the system's programs (the plugin declared `childProcess`). */
  childProcess: boolean;
  /** DataBridge's runtime, the plugins' folders and the declared paths, by real path. */
  binds: readonly Bind[];
  /** bwrap 0.8 and later can stop the sandbox making user namespaces of its own. */
  disableUserns: boolean;
  /** The only environment inside (the rest is cleared). */
  env?: Readonly<Record<string, string>>;
}

function real(path: string): string | null {
  try {
    return realpathSync(path);
  } catch {
    return null;
  }
}

let libsCache: Bind[] | null = null;

/**
 * The Node binary and the shared libraries it links, at the paths its
 * loader looks for them (the ELF interpreter's path, and the libraries'
 * default directories, as there is no ld.so.cache inside). From `ldd`;
 * where that is missing, the library folders whole.
 */
export function nodeFiles(): Bind[] {
  if (libsCache) return libsCache;
  const node = real(process.execPath) ?? process.execPath;
  const out: Bind[] = [{ source: node, dest: node, writable: false }];
  let listed: string[] = [];
  try {
    const text = execFileSync('ldd', [node], { encoding: 'utf8', timeout: 10_000, env: {} });
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" and "/lib64/ld-linux-x86-64.so.2 (0x…)"
    for (const line of text.split('\n')) {
      const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
      if (m) listed.push(m[1]!);
    }
  } catch {
    listed = [];
  }
  if (listed.length > 0) {
    for (const path of listed) {
      const source = real(path);
      if (source) out.push({ source, dest: path, writable: false });
    }
  } else {
    for (const dir of ['/lib', '/lib64', '/usr/lib', '/usr/lib64']) {
      const source = real(dir);
      if (source) out.push({ source, dest: dir, writable: false });
    }
  }
  libsCache = out;
  return out;
}

/** The system's programs for a plugin that may start processes: /usr and the merged-/usr links. */
function systemFiles(): { binds: Bind[]; links: [string, string][] } {
  const binds: Bind[] = [];
  const links: [string, string][] = [];
  for (const dir of ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32']) {
    let stat: ReturnType<typeof lstatSync>;
    try {
      stat = lstatSync(dir);
    } catch {
      continue;
    }
    if (stat.isSymbolicLink()) links.push([readlinkSync(dir), dir]);
    else if (stat.isDirectory()) binds.push({ source: dir, dest: dir, writable: false });
  }
  return { binds, links };
}

/** Name resolution for a plugin that may use the network. */
const NETWORK_FILES = ['/etc/resolv.conf', '/etc/hosts', '/etc/nsswitch.conf', '/etc/host.conf', '/etc/gai.conf'];

const depth = (p: string): number => p.split(sep).filter(Boolean).length;

/**
 * The bwrap arguments before the command (`--` included). Binds are made
 * parents first, so a declared folder inside a read-only one is writable,
 * and DataBridge's files inside a declared writable folder stay read-only.
 */
export function bwrapArgs(o: BwrapOptions): string[] {
  const args = [
    '--unshare-user',
    '--uid',
    String(SANDBOX_UID),
    '--gid',
    String(SANDBOX_UID),
    '--unshare-pid',
    '--unshare-ipc',
    '--unshare-uts',
    '--unshare-cgroup-try',
    ...(o.network ? [] : ['--unshare-net']),
    ...(o.disableUserns ? ['--disable-userns'] : []),
    '--die-with-parent',
    '--new-session',
    '--clearenv',
    ...Object.entries(o.env ?? {}).flatMap(([k, v]) => ['--setenv', k, v]),
    '--cap-drop',
    'ALL',
    '--hostname',
    'sandbox',
    '--dev',
    '/dev',
    '--proc',
    '/proc',
    '--tmpfs',
    '/tmp',
  ];
  const [node, ...libs] = nodeFiles();
  const binds: Bind[] = [node!];
  const links: [string, string][] = [];
  if (o.childProcess) {
    // the system's folders hold Node's libraries too; binding them again into a read-only /usr would fail
    const system = systemFiles();
    binds.push(...system.binds);
    links.push(...system.links);
  } else binds.push(...libs);
  if (o.network) {
    for (const f of NETWORK_FILES) {
      const source = existsSync(f) ? real(f) : null;
      if (source) binds.push({ source, dest: f, writable: false });
    }
  }
  binds.push(...o.binds.filter((b) => isAbsolute(b.dest)));
  for (const [target, path] of links) args.push('--symlink', target, path);
  // a stable sort: at equal depth the later (more specific grant) wins
  for (const b of binds.sort((a, b) => depth(a.dest) - depth(b.dest))) {
    args.push(b.writable ? '--bind' : '--ro-bind', b.source, b.dest);
  }
  args.push('--chdir', '/', '--');
  return args;
}
