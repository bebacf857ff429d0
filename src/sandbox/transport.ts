/**
 * Starting a sandbox: a worker thread with a hard heap cap, or a child
 * process under Node's permission model (only the paths its manifest
 * declares), in a network namespace of its own unless it may use the
 * network, with a hard file-descriptor limit, an empty environment and no
 * inherited descriptors but stdio pipes and the IPC channel.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { PluginPermissions } from '../plugin/manifest.ts';
import type { ResourceLimits } from './limits.ts';
import type { HostMessage, SandboxMessage } from './protocol.ts';

const SRC = resolve(import.meta.dirname, '..');
const ROOT = resolve(SRC, '..');

export interface Transport {
  readonly mode: 'worker' | 'process';
  send(message: HostMessage, transfer?: ArrayBuffer[]): void;
  /** CPU time of the sandbox (µs), where the host can read it directly. */
  cpuUsage(): Promise<{ user: number; system: number } | null>;
  /** Heap in use (bytes), where the host can read it directly. */
  heapUsed(): Promise<number | null>;
  terminate(): Promise<void>;
  readonly pid: number | null;
}

export interface TransportEvents {
  message(message: SandboxMessage): void;
  /** The sandbox is gone: why, as people read it. */
  exit(reason: string): void;
  stderr(line: string): void;
}

export interface SpawnOptions {
  limits: ResourceLimits;
  /** Process mode: folders the sandbox may read (the plugins' own). */
  readPaths: readonly string[];
  permissions: PluginPermissions;
}

function lines(stream: NodeJS.ReadableStream | null, fn: (line: string) => void): void {
  let buf = '';
  stream?.setEncoding('utf8');
  stream?.on('data', (d: string) => {
    buf += d;
    let i = buf.indexOf('\n');
    while (i >= 0) {
      fn(buf.slice(0, i));
      buf = buf.slice(i + 1);
      i = buf.indexOf('\n');
    }
    if (buf.length > 64 * 1024) buf = buf.slice(-64 * 1024);
  });
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
  worker.on('message', (m: SandboxMessage) => events.message(m));
  worker.on('error', (err: Error & { code?: string }) => {
    reason =
      err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? `out of memory (heap cap ${heap} MiB)` : `crashed: ${err.message}`;
  });
  worker.on('exit', (code) => {
    gone = true;
    events.exit(reason ?? `exited with code ${code}`);
  });
  lines(worker.stderr, events.stderr);
  lines(worker.stdout, events.stderr);
  return {
    mode: 'worker',
    pid: null,
    send: (message, transfer = []) => {
      if (!gone) worker.postMessage(message, transfer);
    },
    // a worker can die between the check and the call (out of memory): then there is no reading
    cpuUsage: async () => (gone ? null : worker.cpuUsage().catch(() => null)),
    heapUsed: async () =>
      gone
        ? null
        : worker
            .getHeapStatistics()
            .then((h) => h.used_heap_size)
            .catch(() => null),
    terminate: async () => {
      if (!gone) await worker.terminate();
    },
  };
}

function real(path: string): string | null {
  try {
    return realpathSync(path);
  } catch {
    return null;
  }
}

/** The command line of a process sandbox: prlimit → unshare -n → node --permission …. */
export function processCommand(options: SpawnOptions): { command: string; args: string[] } {
  const p = options.permissions;
  const node = [
    '--permission',
    `--allow-fs-read=${SRC}`,
    `--allow-fs-read=${join(ROOT, 'package.json')}`,
    ...options.readPaths.map((r) => `--allow-fs-read=${real(r) ?? r}`),
    // grant real paths: a link inside a granted folder must not lead out of it
    ...(p.fs?.read ?? [])
      .map((r) => real(r))
      .filter((r): r is string => r !== null)
      .map((r) => `--allow-fs-read=${r}`),
    ...(p.fs?.write ?? [])
      .map((w) => real(w))
      .filter((w): w is string => w !== null)
      .flatMap((w) => [`--allow-fs-write=${w}`, `--allow-fs-read=${w}`]),
    ...(p.childProcess ? ['--allow-child-process'] : []),
    // node:sqlite writes anywhere, whatever the permission model says
    '--no-experimental-sqlite',
    ...(options.limits.maxMemoryMB ? [`--max-old-space-size=${options.limits.maxMemoryMB}`] : []),
    join(SRC, 'sandbox', 'process-entry.ts'),
  ];
  let command = process.execPath;
  let args = node;
  if (!p.network && existsSync('/usr/bin/unshare')) {
    args = ['-n', '--', command, ...args];
    command = '/usr/bin/unshare';
  }
  if (options.limits.maxFileHandles && existsSync('/usr/bin/prlimit')) {
    const n = options.limits.maxFileHandles;
    args = [`--nofile=${n}:${n}`, '--', command, ...args];
    command = '/usr/bin/prlimit';
  }
  return { command, args };
}

export function spawnProcess(options: SpawnOptions, events: TransportEvents): Transport {
  const { command, args } = processCommand(options);
  const child: ChildProcess = spawn(command, args, {
    env: {},
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    serialization: 'advanced',
    detached: false,
  });
  let gone = false;
  let lastUsage: { user: number; system: number } | null = null;
  child.on('message', (m: SandboxMessage) => {
    if (m.type === 'usage') lastUsage = { user: m.cpuUser, system: m.cpuSystem };
    events.message(m);
  });
  child.on('exit', (code, signal) => {
    gone = true;
    events.exit(
      signal ? `killed by ${signal}` : code === 134 || code === 133 ? 'out of memory' : `exited with code ${code}`,
    );
  });
  child.on('error', (err) => {
    gone = true;
    events.exit(`could not start: ${err.message}`);
  });
  lines(child.stderr, events.stderr);
  lines(child.stdout, events.stderr);
  return {
    mode: 'process',
    get pid() {
      return child.pid ?? null;
    },
    send: (message) => {
      if (!gone && child.connected) child.send(message);
    },
    cpuUsage: async () => lastUsage,
    heapUsed: async () => null,
    terminate: async () => {
      if (gone) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    },
  };
}
