/**
 * Starting a sandbox: a worker thread with a hard heap cap, or a child
 * process confined by the OS where the host's probe found the means
 * (bubblewrap namespaces, a cgroup with memory, CPU and pids limits; see
 * process-command.ts), under Node's permission model (only the paths its
 * manifest declares), with a hard file-descriptor limit, an empty
 * environment and no inherited descriptors but stdio pipes and the
 * channel (descriptors 3 to 5: frames and content lanes, channel.ts). A
 * process sandbox's usage is measured by the host (its cgroup, /proc),
 * never taken from what the sandbox says.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, realpathSync } from 'node:fs';
import { constants } from 'node:os';
import type { Duplex } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { DEFAULT_PIDS_MAX } from './cgroup-layout.ts';
import { SandboxCgroup } from './cgroups.ts';
import { CHANNEL_FD, hostChannel, type Lanes, openLanes, replyContentCap } from './channel.ts';
import { cpuTime, findNodeProcess, openDescriptors, residentBytes } from './proc-usage.ts';
import {
  ATTACH_FAILED,
  type ProcessCommandOptions,
  processCommand,
  type SandboxConfinement,
} from './process-command.ts';
import type { HostMessage } from './protocol.ts';
import { readLines } from './rate-limit.ts';

export { processCommand, type SandboxConfinement };

/** What the host measures of a sandbox, without asking it. */
export interface HostMeasure {
  /** CPU time (µs). */
  cpu: { user: number; system: number } | null;
  /** Memory in bytes: a process's cgroup charge (heap and off-heap) or RSS; a worker's heap. */
  memory: number | null;
  /** Open descriptors (process mode). */
  handles: number | null;
  /** Periods its CPU quota throttled it so far (cgroup cpu controller only). */
  throttled: number | null;
}

export interface Transport {
  readonly mode: 'worker' | 'process';
  send(message: HostMessage, transfer?: ArrayBuffer[]): void;
  /** The sandbox's usage as the host reads it (worker: the Worker's counters; process: cgroup, /proc). */
  measure(): Promise<HostMeasure>;
  terminate(): Promise<void>;
  readonly pid: number | null;
  /** Process mode: the confinement it got. */
  readonly confinement: SandboxConfinement | null;
}

export interface TransportEvents {
  /** A message from the sandbox, as it came: the receiver checks it (protocol-check.ts) before acting on it. */
  message(message: unknown): void;
  /** The channel itself read something that breaks the protocol; the sandbox is being killed. */
  violation(reason: string): void;
  /** The sandbox is gone: why, as people read it. */
  exit(reason: string): void;
  stderr(line: string): void;
}

export interface SpawnOptions extends ProcessCommandOptions {
  /** Process mode: the pids limit of its cgroup. Default 64. */
  pidsMax?: number;
}

export function spawnWorker(options: SpawnOptions, events: TransportEvents): Transport {
  const heap = options.limits.maxMemoryMB;
  const worker = new Worker(new URL('./worker-entry.ts', import.meta.url), {
    env: {},
    argv: [],
    stdout: true,
    stderr: true,
    resourceLimits: heap
      ? { maxOldGenerationSizeMb: heap, maxYoungGenerationSizeMb: Math.max(4, Math.min(32, Math.floor(heap / 4))) }
      : undefined,
  });
  let gone = false;
  let reason: string | null = null;
  worker.on('message', (m: unknown) => events.message(m));
  worker.on('messageerror', (err: Error) => events.violation(`a message that could not be read: ${err.message}`));
  worker.on('error', (err: Error & { code?: string }) => {
    reason =
      err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? `out of memory (heap cap ${heap} MiB)` : `crashed: ${err.message}`;
  });
  worker.on('exit', (code) => {
    gone = true;
    events.exit(reason ?? `exited with code ${code}`);
  });
  // cut and rate-limited (rate-limit.ts): a sandbox writing without end must not make the host log without end
  readLines(worker.stderr, events.stderr);
  readLines(worker.stdout, events.stderr);
  return {
    mode: 'worker',
    pid: null,
    confinement: null,
    send: (message, transfer = []) => {
      if (!gone) worker.postMessage(message, transfer);
    },
    // a worker can die between the check and the call (out of memory): then there is no reading
    measure: async () => ({
      cpu: gone ? null : await worker.cpuUsage().catch(() => null),
      memory: gone
        ? null
        : await worker
            .getHeapStatistics()
            .then((h) => h.used_heap_size)
            .catch(() => null),
      handles: null,
      throttled: null,
    }),
    terminate: async () => {
      if (!gone) await worker.terminate();
    },
  };
}

let cgroupSeq = 0;

/** Makes the sandbox's cgroup where the probe found one can be made; a failure here fails the start. */
function makeCgroup(options: SpawnOptions): SandboxCgroup | null {
  const layout = options.confinement?.layout;
  if (!layout) return null;
  // named after the host's pid: two hosts on one machine never share a name
  return SandboxCgroup.create(layout, `${process.pid}-${++cgroupSeq}`, {
    memoryMB: options.limits.maxMemoryMB,
    cpuPercent: options.limits.maxCPUPercent,
    pidsMax: options.pidsMax ?? DEFAULT_PIDS_MAX,
  });
}

/** Why a sandbox process ended, as people read it. Under bwrap a signal arrives as 128 + its number. */
function exitReason(code: number | null, signal: NodeJS.Signals | null, cgroup: SandboxCgroup | null): string {
  const limit = cgroup?.limits.memoryMB;
  const usage = cgroup?.usage();
  const sigkill = signal === 'SIGKILL' || code === 128 + constants.signals.SIGKILL;
  // the kernel's OOM kill count says it; before Linux 4.13 (v1) only a SIGKILL after hitting the limit does
  if (usage && ((usage.oomKills ?? 0) > 0 || (usage.oomKills === null && sigkill && usage.limitHits > 0)))
    return `out of memory (killed at its memory limit of ${limit} MiB, heap and off-heap)`;
  if (code === ATTACH_FAILED && cgroup) return 'could not start: it could not join its cgroup';
  if (signal) return `killed by ${signal}`;
  if (code === 134 || code === 133) return 'out of memory';
  const name = code !== null && code > 128 ? signalName(code - 128) : null;
  return name ? `killed by ${name}` : `exited with code ${code}`;
}

function signalName(n: number): string | null {
  return Object.entries(constants.signals).find(([, v]) => v === n)?.[0] ?? null;
}

export function spawnProcess(options: SpawnOptions, events: TransportEvents): Transport {
  const cgroup = makeCgroup(options);
  const { command, args, confinement, skipped } = processCommand(options, cgroup?.procsFiles ?? []);
  for (const reason of skipped) events.stderr(`declared path not bound: ${reason}`);
  let child: ChildProcess;
  let lanes: Lanes | null = null;
  try {
    lanes = openLanes();
    // descriptors 3 to 5 (channel.ts): the frame socket and the two content lanes, nothing else
    child = spawn(command, args, {
      env: {},
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', ...lanes.child],
      detached: false,
    });
  } catch (err) {
    void cgroup?.remove();
    if (lanes) for (const fd of [lanes.down, lanes.up]) closeSync(fd);
    throw err;
  } finally {
    for (const fd of lanes?.child ?? []) closeSync(fd);
  }
  let gone = false;
  let violation: string | null = null;
  // removing the cgroup waits for its last process; terminate() waits for that
  let removed: Promise<unknown> = Promise.resolve();
  const ended = (reason: string): void => {
    if (gone) return;
    gone = true;
    if (cgroup) removed = cgroup.remove();
    channel.close();
    events.exit(reason);
  };
  const channel = hostChannel(
    child.stdio[CHANNEL_FD] as Duplex,
    lanes,
    events.message,
    (reason) => {
      violation = `broke the protocol: ${reason}`;
      child.kill('SIGKILL');
      events.violation(reason);
    },
    replyContentCap(options.limits.maxMemoryMB),
  );
  child.on('exit', (code, signal) => ended(violation ?? exitReason(code, signal, cgroup)));
  child.on('error', (err) => ended(`could not start: ${err.message}`));
  readLines(child.stderr, events.stderr);
  readLines(child.stdout, events.stderr);
  const node = realpathSync(process.execPath);
  let nodePid: number | null = null;
  const measure = async (): Promise<HostMeasure> => {
    if (gone || !child.pid) return { cpu: null, memory: null, handles: null, throttled: null };
    // under bwrap and sh the runtime is a descendant; found once, its pid stays for its life
    nodePid ??= findNodeProcess(child.pid, node);
    const fromCgroup = cgroup?.usage();
    return {
      cpu: fromCgroup?.cpu ?? (nodePid ? cpuTime(nodePid) : null),
      memory: fromCgroup?.memory ?? (nodePid ? residentBytes(nodePid) : null),
      handles: nodePid ? openDescriptors(nodePid) : null,
      throttled: fromCgroup?.throttled ?? null,
    };
  };
  return {
    mode: 'process',
    get pid() {
      return child.pid ?? null;
    },
    confinement: {
      ...confinement,
      cgroup: cgroup?.version ?? null,
      controllers: cgroup ? (options.confinement?.layout?.controllers ?? []) : [],
    },
    send: (message) => {
      if (!gone) channel.send(message);
    },
    measure,
    terminate: async () => {
      if (!gone) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await exited;
      }
      await removed;
    },
  };
}
