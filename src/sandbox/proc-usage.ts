/**
 * What the host reads of a sandbox process from /proc, never asking the
 * sandbox: which process is its Node (under bwrap it is a grandchild of the
 * process the host spawned), its resident memory, its CPU time and its open
 * descriptors. Used where there is no cgroup to read, and for descriptors
 * always (cgroups do not count them).
 */

import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat: 100 on every Linux this runs on (USER_HZ). */
const TICKS_PER_SECOND = 100;

function children(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const task of tasks) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8');
      for (const c of text.split(' ')) if (c.trim()) out.push(Number(c));
    } catch {
      // the task ended meanwhile
    }
  }
  return out;
}

function exe(pid: number): string | null {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return null;
  }
}

/**
 * The first process, breadth first from `root`, that runs the Node binary:
 * the sandbox's runtime (processes the plugin starts lie deeper).
 */
export function findNodeProcess(root: number, node: string): number | null {
  const queue = [root];
  for (let seen = 0; queue.length > 0 && seen < 64; seen++) {
    const pid = queue.shift()!;
    if (exe(pid) === node) return pid;
    queue.push(...children(pid));
  }
  return null;
}

/** Resident memory in bytes (VmRSS). */
export function residentBytes(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** CPU time in µs, its own and its waited-for children's. */
export function cpuTime(pid: number): { user: number; system: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) may hold spaces and parentheses: count fields after its last ')'
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const tick = 1e6 / TICKS_PER_SECOND;
    const [utime, stime, cutime, cstime] = [11, 12, 13, 14].map((i) => Number(fields[i]));
    return { user: (utime! + cutime!) * tick, system: (stime! + cstime!) * tick };
  } catch {
    return null;
  }
}

/** Open file descriptors. */
export function openDescriptors(pid: number): number | null {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}
