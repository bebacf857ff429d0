/**
 * cgroups for process sandboxes: where the host may make them (v2 with a
 * writable delegated subtree, or v1 hierarchies), one cgroup per sandbox
 * process with a hard memory limit (heap and off-heap alike), a CPU quota
 * (a hard cap, not a share) and a pids limit, the host's reading of what it
 * uses, and its removal once its processes are gone.
 *
 * Where: under a `databridge/` folder of the host's own cgroup first, then
 * of the hierarchy's root. Our own cgroup comes first so that a sandbox
 * counts against whatever limits the host itself runs under (a host in a
 * 4 GiB container cannot hand out more by escaping it); the root is the
 * fallback for a host whose own cgroup is not writable. The `databridge/`
 * folder is removed again when its last sandbox goes, so that whoever
 * manages the host's cgroup can still remove it.
 */

import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export type Controller = 'memory' | 'cpu' | 'pids';
const CONTROLLERS: readonly Controller[] = ['memory', 'cpu', 'pids'];

/** Where sandbox cgroups go: v2, one folder; v1, one folder per hierarchy (cpuacct for CPU time). */
export type CgroupLayout =
  | { version: 2; base: string; controllers: Controller[] }
  | { version: 1; bases: Partial<Record<Controller | 'cpuacct', string>>; controllers: Controller[] };

/** Default pids limit: Node itself runs ~11 threads, each counts. */
export const DEFAULT_PIDS_MAX = 64;

const CPU_PERIOD_US = 100_000;

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

function tryWrite(path: string, value: string): boolean {
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

function removeDir(dir: string): boolean {
  try {
    rmdirSync(dir);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

function detectV2(mount: Mount, own: string | undefined): { layout: CgroupLayout | null; detail: string } {
  for (const base of candidates(mount.dir, own)) {
    const parent = dirname(base);
    const available = (readText(join(parent, 'cgroup.controllers')) ?? '').trim().split(/\s+/);
    const wanted = CONTROLLERS.filter((c) => available.includes(c));
    if (wanted.length === 0) continue;
    // enabling a controller for children fails (EBUSY) in a non-root cgroup that holds processes
    const enabled = wanted.filter((c) => tryWrite(join(parent, 'cgroup.subtree_control'), `+${c}`));
    if (enabled.length === 0) continue;
    let ok: Controller[] = [];
    const made = canCreate(base, () => {
      ok = enabled.filter((c) => tryWrite(join(base, 'cgroup.subtree_control'), `+${c}`));
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

export interface CgroupLimits {
  /** Hard memory limit in MiB, heap and off-heap together. */
  memoryMB?: number;
  /** CPU quota in percent of one core: a hard cap. */
  cpuPercent?: number;
  pidsMax?: number;
}

export interface CgroupUsage {
  /** Bytes charged to the cgroup (what its limit is held against). */
  memory: number | null;
  /** CPU time in µs. */
  cpu: { user: number; system: number } | null;
  /** Periods in which the quota throttled the sandbox. */
  throttled: number | null;
  /** Times the kernel killed a process of the cgroup for memory. */
  oomKills: number;
}

function statField(text: string | null, key: string): number | null {
  if (!text) return null;
  const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : null;
}

function readNumber(path: string): number | null {
  const text = readText(path);
  if (text === null) return null;
  const n = Number(text.trim());
  return Number.isFinite(n) ? n : null;
}

/** One sandbox process's cgroup (one folder in v2, one per hierarchy in v1). */
export class SandboxCgroup {
  readonly version: 1 | 2;
  /** The `cgroup.procs` files to write the process's pid into, before it execs. */
  readonly procsFiles: string[];
  readonly limits: Readonly<CgroupLimits>;
  readonly #dirs: Partial<Record<Controller | 'cpuacct', string>>;
  #removed = false;

  private constructor(version: 1 | 2, dirs: Partial<Record<Controller | 'cpuacct', string>>, limits: CgroupLimits) {
    this.version = version;
    this.limits = { ...limits };
    this.#dirs = dirs;
    this.procsFiles = [...new Set(Object.values(dirs))].map((d) => join(d, 'cgroup.procs'));
  }

  /** Makes the cgroup and writes its limits; throws if a limit cannot be written. */
  static create(layout: CgroupLayout, name: string, limits: CgroupLimits): SandboxCgroup {
    const dirs: Partial<Record<Controller | 'cpuacct', string>> = {};
    if (layout.version === 2) for (const c of layout.controllers) dirs[c] = join(layout.base, name);
    else for (const [c, base] of Object.entries(layout.bases)) dirs[c as Controller | 'cpuacct'] = join(base, name);
    const group = new SandboxCgroup(layout.version, dirs, limits);
    try {
      for (const dir of new Set(Object.values(dirs))) makeDir(dir, layout.version === 2 ? layout.controllers : []);
      group.#limit(limits);
    } catch (err) {
      void group.remove();
      throw err;
    }
    return group;
  }

  #limit(l: CgroupLimits): void {
    const { memory, cpu, pids } = this.#dirs;
    const v2 = this.version === 2;
    if (memory && l.memoryMB) {
      const bytes = String(Math.floor(l.memoryMB * 1024 * 1024));
      writeFileSync(join(memory, v2 ? 'memory.max' : 'memory.limit_in_bytes'), bytes);
      // swap would let the sandbox hold more than its limit; not every kernel has these files
      if (v2) {
        tryWrite(join(memory, 'memory.swap.max'), '0');
        // a breach kills the whole sandbox, not just its largest process
        tryWrite(join(memory, 'memory.oom.group'), '1');
      } else if (!tryWrite(join(memory, 'memory.memsw.limit_in_bytes'), bytes)) {
        tryWrite(join(memory, 'memory.swappiness'), '0');
      }
    }
    if (cpu && l.cpuPercent) {
      const quota = String(Math.max(1000, Math.round((l.cpuPercent / 100) * CPU_PERIOD_US)));
      if (v2) writeFileSync(join(cpu, 'cpu.max'), `${quota} ${CPU_PERIOD_US}`);
      else {
        writeFileSync(join(cpu, 'cpu.cfs_period_us'), String(CPU_PERIOD_US));
        writeFileSync(join(cpu, 'cpu.cfs_quota_us'), quota);
      }
    }
    if (pids) writeFileSync(join(pids, 'pids.max'), String(l.pidsMax ?? DEFAULT_PIDS_MAX));
  }

  /** The pids in the cgroup (all of them: bwrap, its init, node, the plugin's child processes). */
  pids(): number[] {
    const first = this.procsFiles[0];
    const text = first ? readText(first) : null;
    return (text ?? '').split('\n').filter(Boolean).map(Number);
  }

  usage(): CgroupUsage {
    const { memory, cpu, cpuacct } = this.#dirs;
    if (this.version === 2) {
      const stat = readText(join((cpu ?? memory ?? this.#dirs.pids)!, 'cpu.stat'));
      const user = statField(stat, 'user_usec');
      const system = statField(stat, 'system_usec');
      return {
        memory: memory ? readNumber(join(memory, 'memory.current')) : null,
        cpu: user !== null && system !== null ? { user, system } : null,
        throttled: statField(stat, 'nr_throttled'),
        oomKills: (memory && statField(readText(join(memory, 'memory.events')), 'oom_kill')) || 0,
      };
    }
    const user = cpuacct ? readNumber(join(cpuacct, 'cpuacct.usage_user')) : null;
    const system = cpuacct ? readNumber(join(cpuacct, 'cpuacct.usage_sys')) : null;
    return {
      memory: memory ? readNumber(join(memory, 'memory.usage_in_bytes')) : null,
      cpu:
        user !== null && system !== null ? { user: Math.round(user / 1000), system: Math.round(system / 1000) } : null,
      throttled: cpu ? statField(readText(join(cpu, 'cpu.stat')), 'nr_throttled') : null,
      oomKills: (memory && statField(readText(join(memory, 'memory.oom_control')), 'oom_kill')) || 0,
    };
  }

  /**
   * Kills what is left in the cgroup and removes its folders. A cgroup can
   * only be removed once its processes are gone, and a killed process
   * leaves a moment later, so it retries for a while.
   */
  async remove(): Promise<boolean> {
    if (this.#removed) return true;
    const dirs = [...new Set(Object.values(this.#dirs))];
    for (let attempt = 0; attempt < 100; attempt++) {
      for (const pid of this.pids()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      const left = dirs.filter((d) => existsSync(d) && !removeDir(d));
      if (left.length === 0) {
        this.#removed = true;
        // the shared folder goes with its last sandbox; busy (others in it) is fine
        for (const d of dirs) removeDir(dirname(d));
        return true;
      }
      await new Promise((r) => setTimeout(r, Math.min(5 * (attempt + 1), 50)));
    }
    return false;
  }
}

/** Makes a sandbox's folder (and the shared parent, in v2 handing it the controllers for its children). */
function makeDir(dir: string, enable: readonly Controller[]): void {
  // the shared parent may be removed by another sandbox's cleanup between the two steps
  for (let i = 0; ; i++) {
    try {
      mkdirSync(dirname(dir), { recursive: true });
      for (const c of enable) tryWrite(join(dirname(dir), 'cgroup.subtree_control'), `+${c}`);
      mkdirSync(dir);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || i >= 3) throw err;
    }
  }
}

/**
 * Removes the empty cgroups a host that died left behind (named
 * `<its pid>-<n>`); a live host's are left alone, even one not yet joined.
 */
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
