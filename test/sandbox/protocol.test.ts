/**
 * A sandbox that talks to the host around its runtime (test/fixtures/hostile/protocol:
 * frames on descriptor 3 in a process sandbox, the worker's parentPort in a
 * worker) and sends each kind of malformed message: the host checks it
 * before acting on it, raises SANDBOX_PROTOCOL_VIOLATION saying what was
 * wrong, kills and restarts the sandbox with the session rolled back, and
 * keeps serving (another plugin's flow goes on). Every FlowFile of the
 * hostile side is counted before and after: delivered once, none lost.
 */

import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { createFlowController } from '../../src/flow/controller.ts';
import { createPluginManager } from '../../src/index.ts';
import { probeConfinement } from '../../src/sandbox/confinement.ts';
import { type Emitted, registerSink, registerSource } from '../flow-harness.ts';
import { ROOT, sandboxWritable, tempDir, until } from '../helpers.ts';
import { beforeLoad, makePlugin, newKey, sign, trustKey, upperCode } from '../plugin-fixtures.ts';

const FIXTURE = join(ROOT, 'test', 'fixtures', 'hostile', 'protocol');
const ID = 'evil.protocol';
/** FlowFiles fed to each side; the last one of the hostile side forges. */
const N = 6;

const report = await probeConfinement();
const noProcess = report.bwrap.ok ? false : `bubblewrap is not usable here: ${report.bwrap.detail}`;

/** Each case (the fixture's CASES), and what the alert must say. */
const CASES: Record<string, RegExp> = {
  'unknown-type': /unknown type "hello"/,
  'wrong-field-types': /a log message that is an Object, not a string/,
  'unknown-level': /a log of level "no-such-level"/,
  'other-plugin': /a log claiming plugin "good\.healthy", which this sandbox does not run/,
  'no-request': /a stopped reply to no request in flight \(id 987654\)/,
  'wrong-kind': /a created reply to (a )?trigger/,
  'duplicate-ids': /new FlowFile id [0-9a-f-]{36} twice/,
  'held-id': /a new FlowFile with id [0-9a-f-]{36}, which the host already holds/,
  'foreign-parent': /a new FlowFile whose parent "[0-9a-f-]{36}" is neither an input nor new/,
  'accounted-twice': /input [0-9a-f-]{36} both consumed and left over/,
  unaccounted: /input [0-9a-f-]{36} neither consumed nor left over/,
  'content-of-empty-input': /content of input [0-9a-f-]{36}, which has none/,
  'negative-length': /length.* -5/,
  'fractional-length': /length.* 1\.5/,
  'too-large-length': /length.* 1099511627776|add up to 1099511627776/,
  'lengths-not-adding-up': /content lengths that add up to 5 bytes, not the 3/,
  'huge-attributes': /more than 1024 attributes on one FlowFile/,
  // a process sandbox's channel refuses its frame first (FRAME_CAPS), before it is parsed
  'huge-log': /a log message of 300000 characters \(at most 65536\)|a frame of 300\d{3} bytes \(at most 262144\)/,
};

async function attack(t: TestContext, mode: 'process' | 'worker', forge: string, why: RegExp): Promise<void> {
  const dir = tempDir(t);
  const pluginDir = join(dir, 'plugins');
  const dataDir = join(dir, 'data');
  const grant = join(dir, 'grant');
  mkdirSync(grant);
  sandboxWritable(grant);
  const folder = join(pluginDir, ID);
  cpSync(FIXTURE, folder, { recursive: true });
  const manifest = join(folder, 'manifest.json');
  writeFileSync(manifest, readFileSync(manifest, 'utf8').replaceAll('${GRANT}', grant));
  const healthy = makePlugin(pluginDir, { id: 'good.healthy', publisher: 'good', code: upperCode('Healthy') });
  const key = newKey();
  const goodKey = newKey();
  await sign(folder, key);
  await sign(healthy, goodKey);
  await beforeLoad({ dataDir, pluginDir }, async (m) => {
    await trustKey(m, key, 'evil');
    await trustKey(m, goodKey, 'good');
  });
  const manager = await createPluginManager({
    dataDir,
    pluginDir,
    logLevel: false,
    // a worker is the operator's trust: both plugins listed for it, or both in process sandboxes (the default)
    ...(mode === 'worker' ? { workerPlugins: [ID, 'good.healthy'] } : {}),
  });
  const flow = await createFlowController({ manager, repository: 'memory' });
  t.after(async () => {
    await flow.close();
    await manager.shutdown();
  });
  assert.equal(manager.get(ID).status, 'active', `${ID} loads: ${manager.get(ID).statusReason}`);
  assert.equal(manager.sandboxOf(ID)?.mode, mode);

  const out = { hostile: [] as Emitted[], healthy: [] as Emitted[] };
  const feed = (side: string, extra: (i: number) => Record<string, string>) =>
    Array.from({ length: N }, (_, i) => {
      const attributes: Record<string, string> = { n: String(i), ...extra(i) };
      return { content: attributes.forge === 'content-of-empty-input' ? '' : `${side} ${i}`, attributes };
    });
  flow.createProcessorByType(
    registerSource(
      manager,
      feed('hostile', (i): Record<string, string> => (i === N - 1 ? { forge, grant } : {})),
    ),
    { id: 'src-hostile' },
  );
  flow.createProcessorByType('Forger', {
    id: 'hostile',
    penaltyDuration: '50 ms',
    schedule: { batchSize: N - 1, concurrentTasks: 1 },
  });
  flow.createProcessorByType(registerSink(manager, out.hostile), { id: 'sink-hostile' });
  flow.connect({ source: 'src-hostile', relationship: 'success', destination: 'hostile' });
  flow.connect({ source: 'hostile', relationship: 'success', destination: 'sink-hostile' });
  flow.createProcessorByType('Healthy', { id: 'healthy', schedule: { batchSize: 5 } });
  flow.createProcessorByType(registerSink(manager, out.healthy), { id: 'sink-healthy' });
  flow.connect({ source: 'healthy', relationship: 'success', destination: 'sink-healthy' });
  for (const p of ['healthy', 'sink-healthy']) await flow.start(p);
  let feeds = 0;
  const feedHealthy = async () => {
    const src = `src-healthy-${++feeds}`;
    flow.createProcessorByType(
      registerSource(
        manager,
        feed(`healthy${feeds}`, () => ({})),
      ),
      { id: src },
    );
    flow.connect({ source: src, relationship: 'success', destination: 'healthy' });
    await flow.start(src);
  };
  await feedHealthy();
  await until('the healthy plugin’s first FlowFiles', () => out.healthy.length === N);

  // every FlowFile of the hostile side, queued anywhere (or in a task) or delivered
  const count = () =>
    flow
      .stats()
      .connections.filter((c) => c.source === 'src-hostile' || c.destination === 'sink-hostile')
      .reduce((n, c) => n + c.queued, 0) + out.hostile.length;
  await flow.start('src-hostile');
  await until('the source’s FlowFiles queued', () => count() === N);
  // the sink waits: what the hostile plugin sent on stays queued, held by the host (its ids, for held-id)
  await flow.start('hostile');

  const sandbox = manager.sandboxOf(ID)!;
  const alert = await until('the violation alerted', () =>
    manager.alerts().find((a) => a.code === 'SANDBOX_PROTOCOL_VIOLATION' && a.plugin === ID),
  );
  assert.match(alert.message, /broke the protocol/);
  assert.match(alert.message, why, JSON.stringify(manager.alerts()));
  assert.equal(count(), N, 'every FlowFile delivered or queued once the session rolled back');

  // the host serves on: another plugin's flow flows, its sandbox untouched
  const healthyBox = manager.sandboxOf('good.healthy')!;
  await feedHealthy();
  await until('the healthy plugin serves on', () => out.healthy.length === 2 * N);
  assert.equal(healthyBox.stats.crashes, 0, 'the healthy sandbox never died');

  // the hostile sandbox restarts, and its FlowFiles all go through once (it forges only once)
  await until('the hostile sandbox restarted', () => sandbox.stats.restarts >= 1 && sandbox.state === 'ready');
  await flow.start('sink-hostile');
  await until('every hostile FlowFile delivered', () => out.hostile.length === N);
  await flow.stop('hostile');
  assert.equal(count(), N, 'no FlowFile lost or duplicated');
  assert.deepEqual(
    out.hostile.map((e) => Number(e.attributes.n)).sort((a, b) => a - b),
    Array.from({ length: N }, (_, i) => i),
    'each delivered exactly once',
  );
  assert.equal(new Set(out.hostile.map((e) => e.id)).size, N, 'no id twice');
  assert.equal(readFileSync(join(grant, `forged-${N - 1}`), 'utf8'), forge, 'the forged message was sent');
  // a failed task (PROCESSOR_FAILED) is the rolled-back session; a timeout would mean the violation went unseen
  const faults = manager
    .alerts()
    .filter((a) => a.plugin === ID && !['SANDBOX_PROTOCOL_VIOLATION', 'PROCESSOR_FAILED'].includes(a.code));
  assert.deepEqual(faults, [], 'no other fault of the hostile sandbox');
  assert.equal(
    manager.alerts().filter((a) => a.code === 'SANDBOX_PROTOCOL_VIOLATION').length,
    1,
    'one violation: the fixture forges once',
  );
}

for (const mode of ['process', 'worker'] as const) {
  describe(`a ${mode} sandbox that writes to its channel itself`, { skip: mode === 'process' && noProcess }, () => {
    for (const [forge, why] of Object.entries(CASES)) {
      test(`${forge}: a protocol violation, the sandbox restarts, nothing lost, the host serves on`, (t) =>
        attack(t, mode, forge, why));
    }
  });
}
