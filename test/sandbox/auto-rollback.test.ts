import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { createFlowController } from '../../src/flow/controller.ts';
import { createPluginManager } from '../../src/index.ts';
import { type Emitted, registerSink } from '../flow-harness.ts';
import { tempDir } from '../helpers.ts';
import { makePlugin, newKey, sign, trustKey, upperCode } from '../plugin-fixtures.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a bad upgrade that crashes during its probation is replaced by the previous version, with an alert and an audit entry', async (t) => {
  const dir = tempDir(t);
  const manager = await createPluginManager({
    dataDir: join(dir, 'data'),
    pluginDir: join(dir, 'plugins'),
    logLevel: false,
    autoRollback: { probationMs: 30_000 },
  });
  t.after(() => manager.shutdown());
  const key = newKey();
  await trustKey(manager, key);
  const v1 = makePlugin(join(dir, 'v1'), { id: 'acme.steady', version: '1.0.0', code: upperCode('Steady') });
  const v2 = makePlugin(join(dir, 'v2'), {
    id: 'acme.steady',
    version: '2.0.0',
    code: upperCode('Steady').replace(
      'async onTrigger(ctx, session) {',
      'async onTrigger(ctx, session) { process.exit(7);',
    ),
  });
  await sign(v1, key);
  await sign(v2, key);
  await manager.install(v1);

  const out: Emitted[] = [];
  const flow = await createFlowController({ manager, repository: 'memory' });
  t.after(() => flow.close());
  // a steady stream, so that the new version surely gets work during its probation
  flow.createProcessorByType('GenerateFlowFile', {
    id: 'src',
    properties: { 'Custom Text': 'item', 'Batch Size': '1' },
    schedule: { period: '30 ms' },
  });
  flow.createProcessorByType('Steady', {
    id: 'steady',
    penaltyDuration: '50 ms',
    schedule: { batchSize: 2, period: '20 ms' },
  });
  flow.createProcessorByType(registerSink(manager, out), { id: 'sink' });
  flow.connect({ source: 'src', relationship: 'success', destination: 'steady' });
  flow.connect({ source: 'steady', relationship: 'success', destination: 'sink' });
  await flow.startAll();
  while (out.length < 4) await sleep(20);

  const { outcome } = await manager.install(v2);
  assert.equal(outcome.action, 'upgrade');
  const start = Date.now();
  while (!manager.alerts().some((a) => a.code === 'AUTO_ROLLBACK') && Date.now() - start < 20_000) await sleep(50);
  const rollback = manager.alerts().find((a) => a.code === 'AUTO_ROLLBACK');
  assert.ok(rollback, 'an AUTO_ROLLBACK alert');
  assert.match(rollback.message, /2\.0\.0 was replaced by 1\.0\.0/);
  assert.equal(manager.get('acme.steady').version, '1.0.0');
  const audit = await manager.store.listAudit({ target: 'acme.steady', action: 'rollback' });
  assert.equal(audit.length, 1);
  assert.match(JSON.stringify(audit[0]!.details), /SANDBOX_CRASHED/);
  assert.deepEqual(
    (await manager.store.installHistory('acme.steady')).map((h) => h.action),
    ['install', 'upgrade', 'downgrade', 'rollback'],
  );
  // the flow goes on with 1.0.0, and every FlowFile arrives exactly once
  const after = out.length;
  while (out.length < after + 5 && Date.now() - start < 30_000) await sleep(50);
  assert.ok(out.length >= after + 5, 'output goes on after the rollback');
  await flow.stop('src');
  const settle = Date.now();
  while (flow.queuedCount() > 0 && Date.now() - settle < 15_000) await sleep(50);
  assert.equal(new Set(out.map((o) => o.id)).size, out.length, 'no FlowFile delivered twice');
  assert.equal(flow.stats().processors.src!.out, out.length + flow.queuedCount(), 'none lost');
  assert.ok(out.every((o) => o.content.toString() === 'ITEM'));
});
