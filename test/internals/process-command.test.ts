/**
 * The process sandbox's command line, white-box: what the probe found
 * decides the layers (cgroup join → prlimit → bwrap → node), and the
 * plugin's permissions decide what is bound and how.
 */

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { type ConfinementState, confinementState } from '../../src/sandbox/confinement.ts';
import { processCommand } from '../../src/sandbox/process-command.ts';
import { sandboxWritable, tempDir } from '../helpers.ts';

const state = await confinementState();
const limits = { maxFileHandles: 64, maxMemoryMB: 128 };
const withBwrap: ConfinementState = {
  ...state,
  report: { ...state.report, bwrap: { ok: true, path: '/usr/bin/bwrap', detail: 'test' } },
  prlimitPath: '/usr/bin/prlimit',
};

/** The pairs `flag a b` in an argv, as "flag a b" strings. */
function binds(args: string[]): string[] {
  const out: string[] = [];
  args.forEach((a, i) => {
    if (a === '--ro-bind' || a === '--bind') out.push(`${a} ${args[i + 1]} ${args[i + 2]}`);
  });
  return out;
}

test('the probe’s report holds together: full means bwrap and all three controllers, and nothing missing', () => {
  const r = state.report;
  const all = r.bwrap.ok && r.cgroup.memory && r.cgroup.cpu && r.cgroup.pids;
  assert.equal(r.level === 'full', all);
  assert.equal(r.missing.length === 0, all && r.prlimit);
  for (const m of r.missing) assert.match(m, /: /, 'each missing item says how to get it');
});

test('layers, outermost first: the cgroup join, prlimit, bwrap, node; the cgroup paths are arguments', () => {
  const procs = ['/sys/fs/cgroup/memory/x y/cgroup.procs', '/sys/fs/cgroup/pids/$(id)/cgroup.procs'];
  const { command, args } = processCommand({ limits, readPaths: [], permissions: {}, confinement: withBwrap }, procs);
  assert.equal(command, '/bin/sh');
  assert.equal(args[0], '-c');
  for (const p of procs) assert.ok(!args[1]!.includes(p), 'no path in the script');
  assert.deepEqual(args.slice(3, 6), [...procs, '--']);
  assert.equal(args[6], '/usr/bin/prlimit');
  assert.ok(args.indexOf('/usr/bin/bwrap') > args.indexOf('/usr/bin/prlimit'));
  assert.ok(args.includes('--permission'), 'Node’s permission model stays as a second layer');
  assert.ok(args.includes('--no-experimental-sqlite'));
});

test('bwrap: network only when declared; declared paths by real path, read-only or writable; missing ones skipped', (t) => {
  const dir = tempDir(t);
  const read = join(dir, 'read');
  const write = join(dir, 'write');
  mkdirSync(read);
  mkdirSync(write);
  sandboxWritable(write);
  const permissions = { fs: { read: [read, join(dir, 'missing')], write: [write] } };
  const closed = processCommand({ limits, readPaths: [], permissions, confinement: withBwrap });
  assert.ok(closed.args.includes('--unshare-net'));
  assert.equal(closed.confinement.network, false);
  assert.ok(binds(closed.args).includes(`--ro-bind ${read} ${read}`));
  assert.ok(binds(closed.args).includes(`--bind ${write} ${write}`));
  assert.deepEqual(closed.skipped, [`${join(dir, 'missing')}: does not exist`]);
  assert.ok(!binds(closed.args).some((b) => b.startsWith('--bind') && b !== `--bind ${write} ${write}`));
  assert.ok(!binds(closed.args).some((b) => b.includes(' /usr ')), 'no system programs without childProcess');

  const open = processCommand({ limits, readPaths: [], permissions: { network: true }, confinement: withBwrap });
  assert.ok(!open.args.includes('--unshare-net'));
  assert.equal(open.confinement.network, true);

  const shell = processCommand({ limits, readPaths: [], permissions: { childProcess: true }, confinement: withBwrap });
  assert.ok(binds(shell.args).includes('--ro-bind /usr /usr'), 'a plugin that may start processes gets /usr');
});

test('without bwrap, the network namespace of unshare -n; without a probe, the command line of before', () => {
  const none: ConfinementState = {
    ...state,
    report: { ...state.report, bwrap: { ok: false, path: null, detail: 'test' } },
  };
  const { command, args, confinement } = processCommand({
    limits: {},
    readPaths: [],
    permissions: {},
    confinement: none,
  });
  assert.equal(confinement.bwrap, false);
  assert.ok(!args.includes('/usr/bin/bwrap') && command !== '/usr/bin/bwrap');
  assert.ok(command === '/usr/bin/unshare' || command === process.execPath);
  const before = processCommand({ limits: {}, readPaths: [], permissions: {} });
  assert.equal(before.confinement.bwrap, false);
});
