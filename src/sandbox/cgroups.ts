/**
 * One sandbox process's cgroup: a hard memory limit (heap and off-heap
 * alike), a CPU quota (a hard cap, not a share) and a pids limit, the
 * host's reading of what it uses, and its removal once its processes are
 * gone. Where it goes is cgroup-layout.ts's business.
 */

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  type CgroupLayout,
  type Controller,
  CPU_PERIOD_US,
  DEFAULT_PIDS_MAX,
  readText,
  removeDir,
  tryWrite,
} from './cgroup-layout.ts';

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
  /** Times the kernel killed a process of the cgroup for memory (null: this kernel does not count them). */
  oomKills: number | null;
  /** Times its usage hit the memory limit (the kernel reclaimed or killed): for kernels without the oom_kill count. */
  limitHits: number;
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
        oomKills: memory ? statField(readText(join(memory, 'memory.events')), 'oom_kill') : null,
        limitHits: (memory && statField(readText(join(memory, 'memory.events')), 'max')) || 0,
      };
    }
    const user = cpuacct ? readNumber(join(cpuacct, 'cpuacct.usage_user')) : null;
    const system = cpuacct ? readNumber(join(cpuacct, 'cpuacct.usage_sys')) : null;
    return {
      memory: memory ? readNumber(join(memory, 'memory.usage_in_bytes')) : null,
      cpu:
        user !== null && system !== null ? { user: Math.round(user / 1000), system: Math.round(system / 1000) } : null,
      throttled: cpu ? statField(readText(join(cpu, 'cpu.stat')), 'nr_throttled') : null,
      oomKills: memory ? statField(readText(join(memory, 'memory.oom_control')), 'oom_kill') : null,
      limitHits: (memory && readNumber(join(memory, 'memory.failcnt'))) || 0,
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
