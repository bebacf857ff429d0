/**
 * Where sandbox cgroups can go on this host: cgroup v2 with a writable
 * (delegated) subtree, or the v1 hierarchies, found by really making a test
 * cgroup with a limit written, and removing it.
 *
 * Where: under a `databridge/` folder of the host's own cgroup first, then
 * of the hierarchy's root. Our own cgroup comes first so that a sandbox
 * counts against whatever limits the host itself runs under (a host in a
 * 4 GiB container cannot hand out more by escaping it); the root is the
 * fallback for a host whose own cgroup is not writable. The `databridge/`
 * folder is removed again when its last sandbox goes, so that whoever
 * manages the host's cgroup can still remove it.
 */

import { mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export type Controller = 'memory' | 'cpu' | 'pids';
export const CONTROLLERS: readonly Controller[] = ['memory', 'cpu', 'pids'];

/** Where sandbox cgroups go: v2, one folder; v1, one folder per hierarchy (cpuacct for CPU time). */
export type CgroupLayout =
  | { version: 2; base: string; controllers: Controller[] }
  | { version: 1; bases: Partial<Record<Controller | 'cpuacct', string>>; controllers: Controller[] };

/** Default pids limit: Node itself runs ~11 threads, each counts. */
export const DEFAULT_PIDS_MAX = 64;

export const CPU_PERIOD_US = 100_000;

export function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

export function tryWrite(path: string, value: string): boolean {
  try {
    writeFileSync(path, value);
    return true;
  } catch {
    return false;
  }
}

interface Mount {
  type: 'cgroup' | 'cgroup2';
  dir: string;
  options: string[];
}

function mounts(): Mount[] {
  const out: Mount[] = [];
  for (const line of (readText('/proc/mounts') ?? '').split('\n')) {
    const [, dir, type, opts] = line.split(' ');
    if ((type === 'cgroup' || type === 'cgroup2') && dir) out.push({ type, dir, options: (opts ?? '').split(',') });
  }
  return out;
}

/** Our own cgroup per hierarchy, from /proc/self/cgroup: '' for v2, the controller list for v1. */
function ownCgroups(): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of (readText('/proc/self/cgroup') ?? '').split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    for (const c of m[1]!.split(',')) out.set(c, m[2]!);
  }
  return out;
}

/** The folder's candidates: under our own cgroup, then under the hierarchy's root. */
function candidates(mount: string, own: string | undefined): string[] {
  const list = own && own !== '/' ? [join(mount, own, 'databridge')] : [];
  list.push(join(mount, 'databridge'));
  return list;
}

/** Makes a test cgroup under `base` and removes it: a base that cannot hold one is no use. */
function canCreate(base: string, write?: (dir: string) => boolean): boolean {
  const test = join(base, `probe-${process.pid}-${Date.now()}`);
  try {
    mkdirSync(test, { recursive: true });
  } catch {
    return false;
  }
  try {
    return write ? write(test) : true;
  } finally {
    removeDir(test);
    removeDir(base);
  }
}

export function removeDir(dir: string): boolean {
  try {
    rmdirSync(dir);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

const V2_LIMIT_FILES: Record<Controller, [string, string]> = {
  memory: ['memory.max', String(64 * 1024 * 1024)],
  cpu: ['cpu.max', `${CPU_PERIOD_US} ${CPU_PERIOD_US}`],
  pids: ['pids.max', '16'],
};

/**
 * Enables `controllers` for the children of `dir`. cgroup v2 refuses that
 * (EBUSY) in a non-root cgroup that holds processes, which is where a
 * delegated host usually sits (systemd's Delegate=yes puts the service in
 * its own cgroup): then the cgroup's processes, ours among them, move to a
 * leaf `databridge-host` beside the sandboxes first, as systemd's
 * delegation rules ask of whoever manages a delegated subtree.
 */
function enableForChildren(dir: string, controllers: readonly Controller[]): Controller[] {
  const enable = () => controllers.filter((c) => tryWrite(join(dir, 'cgroup.subtree_control'), `+${c}`));
  const first = enable();
  if (first.length > 0 || controllers.length === 0) return first;
  const procs = (readText(join(dir, 'cgroup.procs')) ?? '').split('\n').filter(Boolean);
  if (procs.length === 0) return first;
  const leaf = join(dir, 'databridge-host');
  try {
    mkdirSync(leaf, { recursive: true });
  } catch {
    return first;
  }
  for (const pid of procs) tryWrite(join(leaf, 'cgroup.procs'), pid);
  return enable();
}

function detectV2(mount: Mount, own: string | undefined): { layout: CgroupLayout | null; detail: string } {
  for (const base of candidates(mount.dir, own)) {
    const parent = dirname(base);
    const available = (readText(join(parent, 'cgroup.controllers')) ?? '').trim().split(/\s+/);
    const wanted = CONTROLLERS.filter((c) => available.includes(c));
    if (wanted.length === 0) continue;
    const enabled = enableForChildren(parent, wanted);
    if (enabled.length === 0) continue;
    let ok: Controller[] = [];
    const made = canCreate(base, (test) => {
      const forTest = enabled.filter((c) => tryWrite(join(base, 'cgroup.subtree_control'), `+${c}`));
      ok = forTest.filter((c) => tryWrite(join(test, V2_LIMIT_FILES[c][0]), V2_LIMIT_FILES[c][1]));
      return ok.length > 0;
    });
    if (made && ok.length > 0) return { layout: { version: 2, base, controllers: ok }, detail: `cgroup v2 at ${base}` };
  }
  return {
    layout: null,
    detail: `cgroup v2 at ${mount.dir}: no writable subtree with the memory, cpu or pids controller`,
  };
}

const LIMIT_FILES: Record<Controller | 'cpuacct', [string, string] | null> = {
  memory: ['memory.limit_in_bytes', String(64 * 1024 * 1024)],
  cpu: ['cpu.cfs_quota_us', String(CPU_PERIOD_US)],
  pids: ['pids.max', '16'],
  cpuacct: null,
};

function detectV1(all: Mount[], own: Map<string, string>): { layout: CgroupLayout | null; detail: string } {
  const bases: Partial<Record<Controller | 'cpuacct', string>> = {};
  const notes: string[] = [];
  for (const c of [...CONTROLLERS, 'cpuacct'] as const) {
    const mount = all.find((m) => m.type === 'cgroup' && m.options.includes(c));
    if (!mount) {
      notes.push(`no v1 ${c} hierarchy`);
      continue;
    }
    const limit = LIMIT_FILES[c];
    const base = candidates(mount.dir, own.get(c)).find((b) =>
      canCreate(b, limit ? (dir) => tryWrite(join(dir, limit[0]), limit[1]) : undefined),
    );
    if (base) bases[c] = base;
    else notes.push(`v1 ${c} at ${mount.dir} not writable`);
  }
  const controllers = CONTROLLERS.filter((c) => bases[c]);
  if (controllers.length === 0) return { layout: null, detail: notes.join('; ') || 'no cgroup v1 hierarchy' };
  const where = controllers.map((c) => bases[c]).join(', ');
  return {
    layout: { version: 1, bases, controllers },
    detail: `cgroup v1 at ${where}${notes.length ? `; ${notes.join('; ')}` : ''}`,
  };
}

/**
 * Finds where sandbox cgroups can go, by really making (and removing) a
 * test cgroup with a limit written: v2 when its subtree gives more
 * controllers, else v1. Synchronous: it runs once, at the host's start.
 */
export function detectCgroups(): { layout: CgroupLayout | null; detail: string } {
  const all = mounts();
  const own = ownCgroups();
  const v2mount = all.find((m) => m.type === 'cgroup2');
  const v2 = v2mount ? detectV2(v2mount, own.get('')) : { layout: null, detail: 'no cgroup v2 mounted' };
  if (v2.layout && v2.layout.controllers.length === CONTROLLERS.length) return v2;
  const v1 = detectV1(all, own);
  const better = v1.layout && (!v2.layout || v1.layout.controllers.length > v2.layout.controllers.length) ? v1 : v2;
  if (better.layout) return better;
  return { layout: null, detail: `${v2.detail}; ${v1.detail}` };
}

export function removeStale(layout: CgroupLayout): string[] {
  const bases = layout.version === 2 ? [layout.base] : Object.values(layout.bases);
  const removed: string[] = [];
  for (const base of bases) {
    let names: string[] = [];
    try {
      names = readdirSync(base);
    } catch {
      continue;
    }
    for (const name of names) {
      const owner = Number(/^(\d+)-\d+$/.exec(name)?.[1]);
      if (!owner || owner === process.pid || alive(owner)) continue;
      if (removeDir(join(base, name))) removed.push(join(base, name));
    }
    removeDir(base);
  }
  return removed;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
