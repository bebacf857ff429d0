/**
 * What confinement this host can give a process sandbox, found by trying
 * it (once, then cached): bubblewrap really starts Node in the namespaces
 * a sandbox gets, a test cgroup is really made with a limit written and
 * removed, prlimit really sets a limit. The mode policy decides from this
 * report whether an untrusted plugin may start; the spawn path uses it to
 * pick its command line.
 */

import { execFile } from 'node:child_process';
import { accessSync, constants, realpathSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { bwrapArgs, SANDBOX_UID } from './bwrap.ts';
import { type CgroupLayout, detectCgroups, removeStale } from './cgroup-layout.ts';

export interface ConfinementReport {
  bwrap: { ok: boolean; path: string | null; detail: string };
  cgroup: { version: 1 | 2 | null; memory: boolean; cpu: boolean; pids: boolean; detail: string };
  prlimit: boolean;
  /** 'full' when bwrap runs and the memory, cpu and pids controllers are writable; 'partial' when some hold; 'none' when none */
  level: 'full' | 'partial' | 'none';
  /** What is missing, each saying how to get it, e.g. "bubblewrap: apt-get install bubblewrap" */
  missing: string[];
}

/** What the spawn path needs beyond the report. @internal */
export interface ConfinementState {
  report: ConfinementReport;
  layout: CgroupLayout | null;
  /** Whether this bwrap takes `--disable-userns` (0.8 and later). */
  disableUserns: boolean;
  prlimitPath: string | null;
}

function which(name: string): string | null {
  const dirs = ['/usr/bin', '/bin', '/usr/local/bin', '/usr/sbin', ...(process.env.PATH ?? '').split(delimiter)];
  for (const dir of dirs) {
    if (!dir) continue;
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return realpathSync(path);
    } catch {
      // not here
    }
  }
  return null;
}

function run(command: string, args: string[]): Promise<{ ok: boolean; out: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { env: {}, timeout: 15_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ ok: !err, out: `${stdout}${stderr}`.trim() || (err?.message ?? '') });
    });
  });
}

const UID_CHECK = `process.stdout.write(String(process.getuid()))`;

async function probeBwrap(): Promise<{ report: ConfinementReport['bwrap']; disableUserns: boolean }> {
  const path = which('bwrap');
  if (!path) return { report: { ok: false, path: null, detail: 'bwrap not found' }, disableUserns: false };
  const node = realpathSync(process.execPath);
  // the namespaces and binds a sandbox gets; older bwrap lacks --disable-userns
  let last = '';
  for (const disableUserns of [true, false]) {
    const args = bwrapArgs({ network: false, childProcess: false, binds: [], disableUserns });
    const { ok, out } = await run(path, [...args, node, '-e', UID_CHECK]);
    if (ok && out === String(SANDBOX_UID)) {
      return {
        report: { ok: true, path, detail: `${path} runs Node as uid ${SANDBOX_UID} in new namespaces` },
        disableUserns,
      };
    }
    last = out.split('\n')[0] ?? '';
  }
  return { report: { ok: false, path, detail: `${path} could not start a sandbox: ${last}` }, disableUserns: false };
}

async function probePrlimit(): Promise<string | null> {
  const path = which('prlimit');
  if (!path) return null;
  const { ok } = await run(path, ['--nofile=64:64', '--', realpathSync(process.execPath), '-e', '0']);
  return ok ? path : null;
}

function missingOf(report: Omit<ConfinementReport, 'missing' | 'level'>): string[] {
  const missing: string[] = [];
  if (!report.bwrap.path) missing.push('bubblewrap: apt-get install bubblewrap');
  else if (!report.bwrap.ok)
    missing.push(
      `bubblewrap: ${report.bwrap.detail}; allow user namespaces (sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0) or run as root`,
    );
  for (const c of ['memory', 'cpu', 'pids'] as const) {
    if (!report.cgroup[c])
      missing.push(
        `cgroup ${c} controller: run on cgroup v2 with a delegated subtree that has ${c} enabled (systemd: Delegate=yes), or as root with the cgroup v1 ${c} hierarchy mounted`,
      );
  }
  if (!report.prlimit) missing.push('prlimit: apt-get install util-linux');
  return missing;
}

async function probe(): Promise<ConfinementState> {
  const [bwrap, prlimitPath] = await Promise.all([probeBwrap(), probePrlimit()]);
  const { layout, detail } = detectCgroups();
  // a host that was killed could not remove its sandboxes' cgroups; they would be there for good
  if (layout) removeStale(layout);
  const has = (c: 'memory' | 'cpu' | 'pids'): boolean => layout?.controllers.includes(c) ?? false;
  const partial: Omit<ConfinementReport, 'missing' | 'level'> = {
    bwrap: bwrap.report,
    cgroup: { version: layout?.version ?? null, memory: has('memory'), cpu: has('cpu'), pids: has('pids'), detail },
    prlimit: prlimitPath !== null,
  };
  const held = [bwrap.report.ok, has('memory'), has('cpu'), has('pids')];
  const level = held.every(Boolean) ? 'full' : held.some(Boolean) ? 'partial' : 'none';
  return {
    report: { ...partial, level, missing: missingOf(partial) },
    layout,
    disableUserns: bwrap.disableUserns,
    prlimitPath,
  };
}

/** The probed layout with only the controllers a report keeps. */
function narrowLayout(layout: CgroupLayout | null, report: ConfinementReport): CgroupLayout | null {
  if (!layout || layout.version !== report.cgroup.version) return null;
  const controllers = layout.controllers.filter((c) => report.cgroup[c]);
  if (controllers.length === 0) return null;
  if (layout.version === 2) return { ...layout, controllers };
  const bases = { ...layout.bases };
  for (const c of ['memory', 'cpu', 'pids'] as const) if (!controllers.includes(c)) delete bases[c];
  return { ...layout, bases, controllers };
}

let cached: Promise<ConfinementState> | null = null;

/** Probes once (really runs bwrap, really creates and removes a test cgroup), then caches. */
export function probeConfinement(): Promise<ConfinementReport> {
  return confinementState().then((s) => s.report);
}

/** The probe's result with what the spawn path needs. @internal */
export function confinementState(): Promise<ConfinementState> {
  cached ??= probe();
  return cached;
}

/**
 * Tests: `null` forgets the cached probe (the next call probes again); a
 * report replaces it, taking away what it says is missing (it cannot add
 * what the host lacks: bwrap or cgroups the probe did not find stay off).
 * @internal
 */
export function overrideConfinement(report: ConfinementReport | null): void {
  if (!report) {
    cached = null;
    return;
  }
  const real = confinementState();
  cached = real.then((s) => ({
    report,
    layout: narrowLayout(s.layout, report),
    disableUserns: s.disableUserns,
    prlimitPath: report.prlimit ? s.prlimitPath : null,
  }));
}
