/**
 * The command line of a process sandbox, outermost first:
 *
 *   sh (joins the sandbox's cgroup, then execs) → prlimit (RLIMIT_NOFILE)
 *   → setpriv (as root only: to the sandbox's host uid, never root)
 *   → bwrap (namespaces, a root of only what is bound) → node --permission …
 *
 * Each step execs the next, so the cgroup holds every process of the
 * sandbox from before Node's first instruction, with no window in which it
 * runs unlimited. Where bwrap is unavailable, `unshare -n` keeps the
 * network away as before; where cgroups are, the sh step is left out.
 * Node's permission flags stay inside bwrap as a second layer.
 */

import { existsSync, realpathSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Bind, bwrapArgs } from './bwrap.ts';
import { type ConfinementState, setprivArgs } from './confinement.ts';
import type { PluginPermissions } from './grants.ts';
import { checkGrants, DATABRIDGE_ROOT } from './grants.ts';
import type { ResourceLimits } from './limits.ts';

const SRC = resolve(import.meta.dirname, '..');
const ROOT = resolve(SRC, '..');

/** What confinement a sandbox process actually got. */
export interface SandboxConfinement {
  /** Started under bubblewrap (namespaces, its own root). */
  bwrap: boolean;
  /** The cgroup version its limits are held by, or null (no cgroup). */
  cgroup: 1 | 2 | null;
  /** The cgroup controllers holding it: memory, cpu (a hard quota), pids. */
  controllers: ('memory' | 'cpu' | 'pids')[];
  /** It shares the host's network (declared `network`); false means a network namespace of its own. */
  network: boolean;
}

export interface ProcessCommandOptions {
  limits: ResourceLimits;
  /** Folders the sandbox may read (the plugins' own). */
  readPaths: readonly string[];
  permissions: PluginPermissions;
  /** The data dir and plugin dir: no declared path may be, hold or lie inside one (nor DataBridge's root). */
  protectedRoots?: readonly string[];
  /** The host's probe; absent or null: no bwrap, no cgroup (as before the probe existed). */
  confinement?: ConfinementState | null;
}

/**
 * Joins the cgroups named by the arguments before `--`, then execs the rest.
 * The paths are arguments, never part of the script.
 */
const ATTACH = 'for f do [ "$f" = -- ] && break; echo $$ > "$f" || exit 125; shift; done; shift; exec "$@"';

/**
 * The channel needs no environment: it is descriptors 3 to 5 (channel.ts),
 * which bwrap passes through. Node's own IPC (NODE_CHANNEL_FD) must stay
 * off, or the runtime would read the channel's frames as its messages.
 */
const CHANNEL_ENV = {};

/** The exit code of the sh step when it could not join the cgroup. */
export const ATTACH_FAILED = 125;

function real(path: string): string | null {
  try {
    return realpathSync(path);
  } catch {
    return null;
  }
}

/**
 * Declared paths checked again at this start (grants.ts): a path that is
 * not its own real path any more, or leads into DataBridge's folders, is
 * refused, never bound; a missing one is left out.
 */
function declared(o: ProcessCommandOptions): { read: string[]; write: string[]; skipped: string[] } {
  const checked = checkGrants(o.permissions, {
    protectedRoots: [...(o.protectedRoots ?? []), DATABRIDGE_ROOT],
    uid: o.confinement?.switchTo?.uid ?? null,
  });
  const skipped = [
    ...checked.refused.map((r) => `${r.code}: ${r.message}`),
    ...checked.missing.map((path) => `${path}: does not exist`),
  ];
  return { read: checked.read, write: checked.write, skipped };
}

/**
 * The command line of a process sandbox. `cgroupProcs` are the
 * `cgroup.procs` files to join first (none: no cgroup).
 */
export function processCommand(
  options: ProcessCommandOptions,
  cgroupProcs: readonly string[] = [],
): {
  command: string;
  args: string[];
  confinement: Omit<SandboxConfinement, 'cgroup' | 'controllers'>;
  skipped: string[];
} {
  const p = options.permissions;
  const grants = declared(options);
  const plugins = options.readPaths.map((r) => real(r) ?? r);
  const node = real(process.execPath) ?? process.execPath;
  const nodeArgs = [
    '--permission',
    `--allow-fs-read=${SRC}`,
    `--allow-fs-read=${join(ROOT, 'package.json')}`,
    ...plugins.map((r) => `--allow-fs-read=${r}`),
    ...grants.read.map((r) => `--allow-fs-read=${r}`),
    ...grants.write.flatMap((w) => [`--allow-fs-write=${w}`, `--allow-fs-read=${w}`]),
    ...(p.childProcess ? ['--allow-child-process'] : []),
    // node:sqlite writes anywhere, whatever the permission model says
    '--no-experimental-sqlite',
    ...(options.limits.maxMemoryMB ? [`--max-old-space-size=${options.limits.maxMemoryMB}`] : []),
    join(SRC, 'sandbox', 'process-entry.ts'),
  ];
  const state = options.confinement;
  const network = p.network === true;
  let command = node;
  let args = nodeArgs;
  const bwrap = state?.report.bwrap.ok && state.report.bwrap.path ? state.report.bwrap.path : null;
  if (bwrap) {
    const binds: Bind[] = [
      ...grants.read.filter((r) => !grants.write.includes(r)).map((r) => ({ source: r, dest: r, writable: false })),
      ...grants.write.map((w) => ({ source: w, dest: w, writable: true })),
      // after the grants: at equal depth the later bind wins, so DataBridge's own files stay read-only
      ...plugins.map((r) => ({ source: r, dest: r, writable: false })),
      { source: SRC, dest: SRC, writable: false },
      { source: join(ROOT, 'package.json'), dest: join(ROOT, 'package.json'), writable: false },
    ];
    args = [
      ...bwrapArgs({
        network,
        childProcess: p.childProcess === true,
        binds,
        disableUserns: state!.disableUserns,
        env: CHANNEL_ENV,
      }),
      command,
      ...args,
    ];
    command = bwrap;
    // after the cgroup and prlimit steps (they need root), before bwrap: its uid 65534 maps to this uid, not root
    if (state!.switchTo) {
      args = [...setprivArgs(state!.switchTo.uid), command, ...args];
      command = state!.switchTo.setpriv;
    }
  } else {
    // without bwrap (weaker isolation accepted) a root host still never runs plugin code as root
    if (state?.switchTo) {
      args = [...setprivArgs(state.switchTo.uid), command, ...args];
      command = state.switchTo.setpriv;
    }
    // unshare -n needs root: it runs before the switch
    if (!network && existsSync('/usr/bin/unshare')) {
      args = ['-n', '--', command, ...args];
      command = '/usr/bin/unshare';
    }
  }
  const prlimit = state ? state.prlimitPath : existsSync('/usr/bin/prlimit') ? '/usr/bin/prlimit' : null;
  if (options.limits.maxFileHandles && prlimit) {
    const n = options.limits.maxFileHandles;
    args = [`--nofile=${n}:${n}`, '--', command, ...args];
    command = prlimit;
  }
  if (cgroupProcs.length > 0) {
    args = ['-c', ATTACH, 'sh', ...cgroupProcs, '--', command, ...args];
    command = '/bin/sh';
  }
  return { command, args, confinement: { bwrap: bwrap !== null, network }, skipped: grants.skipped };
}
