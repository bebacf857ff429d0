// The example plugins, each tested with the harness authors use
// (databridge/sdk/testing), in a process sandbox as a host runs them.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ReportingTaskRunner, TestRunner } from 'databridge/sdk/testing';
import { createPluginManager } from '../../src/index.ts';
import { ROOT, sandboxWritable, tempDir } from '../helpers.ts';

const EXAMPLES = join(ROOT, 'examples', 'plugins');
const example = (id: string) => join(EXAMPLES, id);

test('every example plugin is signed by the example key and validates against it', async (t) => {
  const dir = tempDir(t);
  const manager = await createPluginManager({
    dataDir: join(dir, 'data'),
    pluginDir: join(dir, 'plugins'),
    logLevel: false,
    autoLoad: false,
  });
  t.after(() => manager.shutdown());
  const pem = readFileSync(join(ROOT, 'examples', 'keys', 'acme-example.pub'), 'utf8');
  await manager.trust.addKey({ publisher: 'acme', publicKeyPem: pem, namespaces: ['acme.*'] });
  const ids = readdirSync(EXAMPLES).sort();
  assert.deepEqual(ids, ['acme.archive', 'acme.metrics-log', 'acme.rates', 'acme.reverse', 'acme.stamp', 'acme.upper']);
  for (const id of ids) {
    const report = await manager.validate(example(id));
    assert.deepEqual(
      report.findings.filter((f) => f.severity === 'error'),
      [],
      `${id} validates`,
    );
    assert.equal(report.signer?.publisher, 'acme', `${id} is signed by acme`);
  }
});

describe('acme.upper: a pure transform, in a process sandbox like every untrusted plugin', () => {
  test('upper-cases content and keeps attributes', async (t) => {
    const runner = await TestRunner.forPlugin(example('acme.upper'), 'UpperCase');
    t.after(() => runner.close());
    assert.equal(runner.isolation, 'process');
    runner.enqueue('hello', { filename: 'a.txt' }).enqueue('');
    await runner.run();
    runner.assertAllFlowFilesTransferred('success', 2);
    runner.flowFiles('success')[0]!.assertContentEquals('HELLO');
    runner.flowFiles('success')[0]!.assertAttributeEquals('filename', 'a.txt');
    runner.flowFiles('success')[1]!.assertContentEquals('');
  });
});

describe('acme.reverse: a transform in a child process with no access', () => {
  test('reverses each line and marks the FlowFile', async (t) => {
    const runner = await TestRunner.forPlugin(example('acme.reverse'), 'ReverseLines');
    t.after(() => runner.close());
    assert.equal(runner.isolation, 'process');
    runner.enqueue('abc\nxyz');
    await runner.run();
    runner.assertAllFlowFilesTransferred('success', 1);
    runner.flowFiles('success')[0]!.assertContentEquals('cba\nzyx');
    runner.flowFiles('success')[0]!.assertAttributeEquals('reversed.by', 'acme.reverse');
  });
});

describe('acme.stamp: attributes only', () => {
  test('sets the configured attribute; an empty name is refused', async (t) => {
    const runner = await TestRunner.forPlugin(example('acme.stamp'), 'Stamp', {
      inline: true,
      properties: { Attribute: 'batch', Value: '42' },
    });
    t.after(() => runner.close());
    runner.enqueue('x');
    await runner.run();
    runner.flowFiles('success')[0]!.assertAttributeEquals('batch', '42');
    assert.deepEqual(
      runner.lineage().map((e) => e.type),
      ['ATTRIBUTES_MODIFIED', 'ROUTE'],
    );
    const bad = await TestRunner.forPlugin(example('acme.stamp'), 'Stamp', {
      inline: true,
      properties: { Attribute: '' },
    });
    t.after(() => bad.close());
    await bad.assertNotValid();
  });
});

describe('acme.rates: a controller service used by a processor', () => {
  test('converts with the rates of the service, in the plugin sandbox', async (t) => {
    const runner = await TestRunner.forPlugin(example('acme.rates'), 'ConvertCurrency', {
      properties: { 'Rate Table': 'rates' },
    });
    t.after(() => runner.close());
    assert.equal(runner.isolation, 'process');
    runner.addControllerService('rates', 'RateTable', { Rates: 'EUR=1.10, GBP=1.25' });
    runner
      .enqueue('', { amount: '10', currency: 'eur' })
      .enqueue('', { amount: '4', currency: 'GBP' })
      .enqueue('', { amount: '1', currency: 'XYZ' })
      .enqueue('', { currency: 'EUR' });
    await runner.run();
    runner.assertTransferCount('success', 2);
    runner.flowFiles('success')[0]!.assertAttributeEquals('amount.converted', '11.00');
    runner.flowFiles('success')[1]!.assertAttributeEquals('amount.converted', '5.00');
    const failed = runner.flowFiles('failure');
    assert.deepEqual(
      failed.map((f) => f.attributes['convert.error']),
      ['unknown currency "XYZ"', 'no number in "amount"'],
    );
    const enabled = runner.logs().find((l) => l.message === 'rate table enabled');
    assert.equal(enabled?.fields.currencies, 2);
    assert.equal(enabled?.fields.service, 'rates');
  });

  test('without the service, or with bad rates, the configuration is refused', async (t) => {
    const none = await TestRunner.forPlugin(example('acme.rates'), 'ConvertCurrency', {
      inline: true,
      properties: { 'Rate Table': 'rates' },
    });
    t.after(() => none.close());
    assert.match(JSON.stringify(await none.validate()), /does not have/);
    const bad = await TestRunner.forPlugin(example('acme.rates'), 'ConvertCurrency', {
      inline: true,
      properties: { 'Rate Table': 'rates' },
    });
    t.after(() => bad.close());
    bad.addControllerService('rates', 'RateTable', { Rates: 'euros please' });
    assert.match(JSON.stringify(await bad.validate()), /not valid/);
  });
});

describe('acme.metrics-log: a reporting task that logs metrics', () => {
  test('logs totals and the busiest processors; warns past the threshold', async (t) => {
    const runner = await ReportingTaskRunner.forPlugin(example('acme.metrics-log'), 'LogMetrics', {
      properties: { 'Queue Warning': '100', 'Top Processors': '1' },
    });
    t.after(() => runner.close());
    await runner.assertValid();
    const processors = {
      read: { in: 0, out: 7, bytesIn: 0, bytesOut: 70, tasks: 3, errors: 0 },
      write: { in: 5, out: 5, bytesIn: 50, bytesOut: 50, tasks: 2, errors: 1 },
    };
    await runner.run({ processors, queued: 2, queuedBytes: 20 });
    await runner.run({ processors, queued: 150, queuedBytes: 1500 });
    assert.deepEqual(runner.errors(), []);
    const lines = runner.logs();
    const first = lines.find((l) => l.message === 'flow metrics')!;
    assert.equal(first.fields.queued, 2);
    assert.equal(first.fields.out, 12);
    assert.equal(first.fields.errors, 1);
    assert.deepEqual(first.fields.busiest, [{ id: 'read', in: 0, out: 7, errors: 0 }]);
    const warnings = lines.filter((l) => l.level === 'warn');
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]!.fields.queued, 150);
  });

  test('a threshold that is not a number is refused', async (t) => {
    const runner = await ReportingTaskRunner.forPlugin(example('acme.metrics-log'), 'LogMetrics', {
      inline: true,
      properties: { 'Queue Warning': 'lots' },
    });
    t.after(() => runner.close());
    await runner.assertNotValid();
    await assert.rejects(runner.run(), /findings/);
  });
});

describe('acme.archive: reads and writes its declared folder, in a child process', () => {
  const ARCHIVE = '/tmp/databridge-archive';

  test('archives, spots duplicates, and cannot leave its folder', async (t) => {
    mkdirSync(ARCHIVE, { recursive: true });
    sandboxWritable(ARCHIVE);
    const dir = sandboxWritable(mkdtempSync(join(ARCHIVE, 'test-')));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const runner = await TestRunner.forPlugin(example('acme.archive'), 'ArchiveFile', {
      properties: { Directory: dir },
    });
    t.after(() => runner.close());
    assert.equal(runner.isolation, 'process');
    runner.enqueue('one', { filename: 'a.txt' }).enqueue('two', { filename: 'b.txt' });
    await runner.run();
    runner.assertAllFlowFilesTransferred('success', 2);
    assert.equal(readFileSync(join(dir, 'a.txt'), 'utf8'), 'one');
    runner.flowFiles('success')[1]!.assertAttributeEquals('archive.path', join(dir, 'b.txt'));
    runner.enqueue('one', { filename: 'a.txt' }).enqueue('ONE', { filename: 'a.txt' });
    await runner.run();
    runner.assertTransferCount('duplicate', 1);
    runner.assertTransferCount('success', 3);
    assert.equal(readFileSync(join(dir, 'a.txt'), 'utf8'), 'ONE');

    const outside = await TestRunner.forPlugin(example('acme.archive'), 'ArchiveFile', {
      properties: { Directory: '/tmp' },
    });
    t.after(() => outside.close());
    assert.match(JSON.stringify(await outside.validate()), /must be under \/tmp\/databridge-archive/);
  });
});
