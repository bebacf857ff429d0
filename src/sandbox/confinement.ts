/**
 * What confinement this host can give a process sandbox, found by trying
 * it (once, then cached): bubblewrap really starts Node in the namespaces
 * a sandbox gets, a test cgroup is really made with a limit written and
 * removed, prlimit really sets a limit. The mode policy decides from this
 * report whether an untrusted plugin may start; the spawn path uses it to
 * pick its command line.
 */

import { execFile } from 'node:child_process';
import { accessSync, constants, realpathSync, statSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { bwrapArgs, SANDBOX_UID } from './bwrap.ts';
import { type CgroupLayout, detectCgroups, removeStale } from './cgroup-layout.ts';

export interface ConfinementReport {
  bwrap: { ok: boolean; path: string | null; detail: string };
  cgroup: { version: 1 | 2 | null; memory: boolean; cpu: boolean; pids: boolean; detail: string };
  prlimit: boolean;
  /**
   * Whom a sandbox is on the host. As root, DataBridge switches to `uid`
   * (setpriv) before bwrap, so the sandbox's uid 65534 is host uid `uid`:
   * not root, whatever it writes or reads in a bound folder. Not as root it
   * cannot switch: the sandbox is DataBridge's own user (`switched: false`).
   */
  uid?: { uid: number; switched: boolean; ok: boolean; detail: string };
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
  /** setpriv and the host uid to run bwrap as (DataBridge runs as root), or null: no switch. */
  switchTo: { setpriv: string; uid: number } | null;
}

/** The host uid a sandbox runs as when DataBridge runs as root, unless configured: nobody. */
export const DEFAULT_SANDBOX_HOST_UID = 65534;
let configuredUid = DEFAULT_SANDBOX_HOST_UID;

/** The host uid sandboxes run as when DataBridge is root (the manager's `sandboxUid`). @internal */
export function configureSandboxUid(uid: number): void {
  configuredUid = uid;
}

/** The first of the runtime's files (or a folder above one) `uid` cannot reach, with what to do about it. */
export function unreadableBy(uid: number, paths: readonly string[]): string | null {
  for (const path of paths) {
    const chain: string[] = [];
    for (let p = resolve(path); ; p = dirname(p)) {
      chain.unshift(p);
      if (p === dirname(p)) break;
    }
    for (const [i, p] of chain.entries()) {
      let st: ReturnType<typeof statSync>;
      try {
        st = statSync(p);
      } catch (err) {
        return `${p}: ${(err as Error).message}`;
      }
      const last = i === chain.length - 1;
      // setpriv --clear-groups: the uid's own gid (the same number) and no other group
      const shift = st.uid === uid ? 6 : st.gid === uid ? 3 : 0;
      const bits = (st.mode >> shift) & 7;
      const need = last ? (st.isDirectory() ? 5 : 4) : 1;
      if ((bits & need) !== need) {
        const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
        const fix = st.isDirectory() ? `chmod o+${last ? 'rx' : 'x'} ${p}` : `chmod o+r ${p}`;
        return `uid ${uid} cannot ${last ? 'read' : 'enter'} ${p} (mode ${mode}, owner uid ${st.uid}), so it cannot read ${path}: ${fix}, or run DataBridge from a folder that uid can read`;
      }
    }
  }
  return null;
}

const SRC = resolve(import.meta.dirname, '..');

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

async function probeBwrap(
  switchTo: ConfinementState['switchTo'],
): Promise<{ report: ConfinementReport['bwrap']; disableUserns: boolean }> {
  const path = which('bwrap');
  if (!path) return { report: { ok: false, path: null, detail: 'bwrap not found' }, disableUserns: false };
  const node = realpathSync(process.execPath);
  // the namespaces and binds a sandbox gets; older bwrap lacks --disable-userns
  let last = '';
  for (const disableUserns of [true, false]) {
    const args = bwrapArgs({ network: false, childProcess: false, binds: [], disableUserns });
    const command = [path, ...args, node, '-e', UID_CHECK];
    if (switchTo) command.unshift(switchTo.setpriv, ...setprivArgs(switchTo.uid));
    const { ok, out } = await run(command[0]!, command.slice(1));
    if (ok && out === String(SANDBOX_UID)) {
      const as = switchTo ? ` (host uid ${switchTo.uid})` : '';
      return {
        report: { ok: true, path, detail: `${path} runs Node as uid ${SANDBOX_UID}${as} in new namespaces` },
        disableUserns,
      };
    }
    last = out.split('\n')[0] ?? '';
  }
  return { report: { ok: false, path, detail: `${path} could not start a sandbox: ${last}` }, disableUserns: false };
}

/** setpriv's arguments that make the rest run as `uid` (and gid of the same number, no other group). */
export function setprivArgs(uid: number): string[] {
  return [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--'];
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
  if (report.uid && !report.uid.ok) missing.push(`sandbox uid: ${report.uid.detail}`);
  return missing;
}

/**
 * As root, a sandbox must not be root on the host: bwrap maps its uid to
 * whoever starts it, so files it writes would be root's (a setuid-root
 * program planted in a declared folder) and root's 0600 files and sockets
 * in a bound folder would be its own. It runs as `uid` instead, which must
 * reach DataBridge's runtime files.
 */
function probeUid(uid: number): {
  report: NonNullable<ConfinementReport['uid']>;
  switchTo: ConfinementState['switchTo'];
} {
  const self = process.getuid?.() ?? -1;
  if (self !== 0) {
    const detail = `DataBridge runs as uid ${self}, not root: it cannot switch, so a sandbox is that user on the host (files it writes in a declared folder are that user's)`;
    return { report: { uid: self, switched: false, ok: true, detail }, switchTo: null };
  }
  const setpriv = which('setpriv');
  if (!setpriv)
    return {
      report: {
        uid,
        switched: false,
        ok: false,
        detail: 'setpriv not found (apt-get install util-linux): a sandbox would be root on the host',
      },
      switchTo: null,
    };
  const node = realpathSync(process.execPath);
  const unreadable = unreadableBy(uid, [SRC, join(SRC, '..', 'package.json'), node]);
  if (unreadable) return { report: { uid, switched: false, ok: false, detail: unreadable }, switchTo: null };
  return {
    report: { uid, switched: true, ok: true, detail: `a sandbox runs as host uid ${uid}, not root` },
    switchTo: { setpriv, uid },
  };
}

async function probe(uid: number): Promise<ConfinementState> {
  const who = probeUid(uid);
  const [bwrap, prlimitPath] = await Promise.all([probeBwrap(who.switchTo), probePrlimit()]);
  const { layout, detail } = detectCgroups();
  // a host that was killed could not remove its sandboxes' cgroups; they would be there for good
  if (layout) removeStale(layout);
  const has = (c: 'memory' | 'cpu' | 'pids'): boolean => layout?.controllers.includes(c) ?? false;
  const partial: Omit<ConfinementReport, 'missing' | 'level'> = {
    bwrap: bwrap.report,
    cgroup: { version: layout?.version ?? null, memory: has('memory'), cpu: has('cpu'), pids: has('pids'), detail },
    prlimit: prlimitPath !== null,
    uid: who.report,
  };
  const held = [bwrap.report.ok && who.report.ok, has('memory'), has('cpu'), has('pids')];
  const level = held.every(Boolean) ? 'full' : held.some(Boolean) ? 'partial' : 'none';
  return {
    report: { ...partial, level, missing: missingOf(partial) },
    layout,
    disableUserns: bwrap.disableUserns,
    prlimitPath,
    switchTo: who.switchTo,
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

const cached = new Map<number, Promise<ConfinementState>>();
let overridden: Promise<ConfinementState> | null = null;

/** Probes once (really runs bwrap, really creates and removes a test cgroup), then caches. */
export function probeConfinement(): Promise<ConfinementReport> {
  return confinementState().then((s) => s.report);
}

/** The probe's result with what the spawn path needs. @internal */
export function confinementState(uid = configuredUid): Promise<ConfinementState> {
  if (overridden) return overridden;
  const state = cached.get(uid) ?? probe(uid);
  cached.set(uid, state);
  return state;
}

/**
 * Tests: `null` forgets the cached probe (the next call probes again); a
 * report replaces it, taking away what it says is missing (it cannot add
 * what the host lacks: bwrap or cgroups the probe did not find stay off).
 * @internal
 */
export function overrideConfinement(report: ConfinementReport | null): void {
  overridden = null;
  if (!report) {
    cached.clear();
    return;
  }
  const real = confinementState();
  overridden = real.then((s) => ({
    report,
    layout: narrowLayout(s.layout, report),
    disableUserns: s.disableUserns,
    prlimitPath: report.prlimit ? s.prlimitPath : null,
    switchTo: s.switchTo,
  }));
}
