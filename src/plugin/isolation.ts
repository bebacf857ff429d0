/**
 * Where an external plugin runs, and what holds it there. Every external
 * plugin runs in a process sandbox unless the operator lists it as trusted
 * for `worker` or `inline`; a manifest's `isolation` is a request that can
 * only make it stricter. Worker and inline are trust, not a boundary: only
 * the process sandbox, confined by the OS, is one, and where the host
 * cannot confine it fully a plugin is refused unless the operator accepted
 * weaker isolation (shared/DESIGN.md, "Sandboxes: a boundary only where the
 * OS holds it").
 */

import { createError } from '../errors.ts';
import type { PinoLogger } from '../log.ts';
import { type ConfinementReport, probeConfinement } from '../sandbox/confinement.ts';
import type { SandboxConfinement } from '../sandbox/transport.ts';
import type { PluginInfo, SandboxMode } from './types.ts';

/** A plugin id, `prefix.*` (the ids under it) or `*` (every plugin). */
export const TRUST_PATTERN = '^(\\*|[a-zA-Z0-9][a-zA-Z0-9._-]*(\\.\\*)?)$';

/** The operator's lists, as the configuration holds them. */
export interface TrustLists {
  workerPlugins: readonly string[];
  inlinePlugins: readonly string[];
}

/** Whether `id` is named by one of `patterns` (`acme.upper`, `acme.*`, `*`). */
export function listed(id: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => p === '*' || p === id || (p.endsWith('.*') && id.startsWith(p.slice(0, -1))));
}

const STRICTNESS: Record<SandboxMode, number> = { inline: 0, worker: 1, process: 2 };

/**
 * The mode a plugin runs in: what the operator trusts it with (inline before
 * worker, process otherwise), made stricter by what its manifest asks for,
 * never looser.
 */
export function modeOf(id: string, requested: SandboxMode | undefined, lists: TrustLists): SandboxMode {
  const trusted: SandboxMode = listed(id, lists.inlinePlugins)
    ? 'inline'
    : listed(id, lists.workerPlugins)
      ? 'worker'
      : 'process';
  return requested && STRICTNESS[requested] > STRICTNESS[trusted] ? requested : trusted;
}

/**
 * What holds a plugin, as its status shows it. `full`, `partial`, `none`:
 * the OS confinement of a process sandbox on this host (`missing` says
 * what is not there and how to get it). `trusted`: a worker or inline
 * plugin (or a built-in), run as the operator trusts it: not a security
 * boundary.
 */
export interface ConfinementInfo {
  level: 'full' | 'partial' | 'none' | 'trusted';
  missing: string[];
  /** The plugin runs with less than full confinement because the operator accepted weaker isolation. */
  weak: boolean;
  /** One line for people: what holds. */
  summary: string;
}

/** The host's isolation as `/healthz` and the console's banner show it. */
export interface IsolationStatus {
  /** What this host can hold around a process sandbox (probed once, at start). */
  level: ConfinementReport['level'];
  missing: string[];
  /** The operator started with `allowWeakIsolation` while the level is not `full`: process sandboxes run with what holds. */
  weakAccepted: boolean;
}

export function isolationStatus(report: ConfinementReport, allowWeak: boolean): IsolationStatus {
  return { level: report.level, missing: [...report.missing], weakAccepted: allowWeak && report.level !== 'full' };
}

const TRUSTED_SUMMARY: Record<Exclude<SandboxMode, 'process'>, string> = {
  worker: 'trusted: not a security boundary (a worker thread: fault, heap and deadline containment only)',
  inline: "trusted: not a security boundary (runs on the host's thread)",
};

/** What holds a plugin that runs (or would run) in `mode` on a host whose probe gave `report`. */
export function confinementOf(mode: SandboxMode, report: ConfinementReport, allowWeak: boolean): ConfinementInfo {
  if (mode !== 'process') return { level: 'trusted', missing: [], weak: false, summary: TRUSTED_SUMMARY[mode] };
  if (report.level === 'full') {
    return {
      level: 'full',
      missing: [],
      weak: false,
      summary: 'a process confined by the OS: bubblewrap namespaces and cgroup memory, cpu and pids limits',
    };
  }
  return {
    level: report.level,
    missing: [...report.missing],
    weak: allowWeak,
    summary: `${report.level} confinement${allowWeak ? ', accepted by the operator' : ''}: missing ${report.missing.join('; ')}`,
  };
}

/**
 * The refusal of a process-mode plugin on a host that cannot confine it:
 * what is missing, how to get it, and how to start knowingly without it.
 */
export function isolationUnavailable(id: string, report: ConfinementReport) {
  return createError('ISOLATION_UNAVAILABLE', { id, level: report.level, missing: report.missing });
}

/** One sandbox's isolation, as `GET /api/sandboxes` shows it: its mode, level and what holds. */
export interface SandboxIsolation extends ConfinementInfo {
  mode: 'worker' | 'process';
  /** true: what the running sandbox got; false: what it will get when it starts (from the host's probe). */
  actual: boolean;
  holds: {
    /** bubblewrap's namespaces, read-only binds, private /tmp, unprivileged uid. */
    bwrap: boolean;
    /** The cgroup controllers that cap it (version 1 or 2), or null where none does. */
    cgroup: { version: 1 | 2 | null; memory: boolean; cpu: boolean; pids: boolean } | null;
    /** A hard RLIMIT_NOFILE. */
    prlimit: boolean;
    /** `isolated`: a network namespace of its own; `host`: the host's network (a worker, or a plugin that declared `network`). */
    network: 'isolated' | 'host';
  };
}

/**
 * What holds a sandbox of `mode`: what the running process got where it
 * has started (`actual`), else what the host's probe says it will get (a
 * plugin that declared `network` shares the host's).
 */
export function sandboxIsolation(
  mode: 'worker' | 'process',
  report: ConfinementReport,
  allowWeak: boolean,
  declaresNetwork: boolean,
  actual: SandboxConfinement | null,
): SandboxIsolation {
  const info = confinementOf(mode, report, allowWeak);
  if (mode === 'worker') {
    return { ...info, mode, actual: false, holds: { bwrap: false, cgroup: null, prlimit: false, network: 'host' } };
  }
  if (actual) {
    const has = (c: 'memory' | 'cpu' | 'pids') => actual.controllers.includes(c);
    const held = [actual.bwrap, has('memory'), has('cpu'), has('pids')];
    const level = held.every(Boolean) ? 'full' : held.some(Boolean) ? 'partial' : 'none';
    return {
      ...info,
      level,
      weak: level !== 'full' && allowWeak,
      mode,
      actual: true,
      holds: {
        bwrap: actual.bwrap,
        cgroup: actual.cgroup
          ? { version: actual.cgroup, memory: has('memory'), cpu: has('cpu'), pids: has('pids') }
          : null,
        prlimit: report.prlimit,
        network: actual.network ? 'host' : 'isolated',
      },
    };
  }
  const { version, memory, cpu, pids } = report.cgroup;
  return {
    ...info,
    mode,
    actual: false,
    holds: {
      bwrap: report.bwrap.ok,
      cgroup: memory || cpu || pids ? { version, memory, cpu, pids } : null,
      prlimit: report.prlimit,
      // without bwrap the spawn keeps the network away with unshare -n where it can; not promised here
      network: declaresNetwork || !report.bwrap.ok ? 'host' : 'isolated',
    },
  };
}

/**
 * The host's confinement, probed once at start (a probe that fails is a
 * host that confines nothing, said so); anything short of full is logged.
 */
export async function probeHostConfinement(allowWeak: boolean, log: PinoLogger): Promise<ConfinementReport> {
  let report: ConfinementReport;
  try {
    report = await probeConfinement();
  } catch (err) {
    const detail = `the probe failed: ${(err as Error).message}`;
    report = {
      bwrap: { ok: false, path: null, detail },
      cgroup: { version: null, memory: false, cpu: false, pids: false, detail },
      prlimit: false,
      level: 'none',
      missing: [`confinement (${detail})`],
    };
  }
  if (report.level !== 'full') {
    log.warn(
      { level: report.level, missing: report.missing, weakAccepted: allowWeak },
      allowWeak
        ? 'process sandboxes run with weaker isolation: the operator accepted it'
        : 'process sandboxes cannot be confined fully: plugins that need one are refused (ISOLATION_UNAVAILABLE)',
    );
  }
  return report;
}

/** What holds a plugin, as the API lists it: a built-in one runs on the host's thread. */
export function pluginConfinement(
  plugin: Pick<PluginInfo, 'source' | 'isolation'>,
  report: ConfinementReport,
  allowWeak: boolean,
): ConfinementInfo {
  const info = confinementOf(plugin.isolation, report, allowWeak);
  return plugin.source === 'builtin'
    ? { ...info, summary: "built in: ships with DataBridge and runs on the host's thread" }
    : info;
}
