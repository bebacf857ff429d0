import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { Processor } from '../../src/sdk/index.ts';
import { TestRunner } from '../../src/testing/index.ts';
import { ROOT } from '../helpers.ts';

/** Routes FlowFiles whose text contains "Needle" to "matched", the rest to "unmatched"; splits on "|" when asked. */
function finder(): Processor {
  return {
    getInfo: () => ({
      name: 'FindNeedle',
      version: '1.0.0',
      description: 'finds a needle',
      tags: [],
      properties: [
        { name: 'Needle', description: 'what to find', required: true },
        { name: 'Split', description: 'split on |', allowedValues: ['true', 'false'], defaultValue: 'false' },
      ],
      relationships: [{ name: 'matched' }, { name: 'unmatched' }],
    }),
    async onTrigger(ctx, session) {
      const needle = ctx.getProperty('Needle').asString();
      for (let ff = session.get(); ff; ff = session.get()) {
        const text = new TextDecoder().decode(await session.read(ff));
        if (text === 'boom') throw new Error('boom');
        if (ctx.getProperty('Split').asBoolean()) {
          for (const part of text.split('|')) {
            session.transfer(
              session.write(session.createChild(ff), part),
              part.includes(needle) ? 'matched' : 'unmatched',
            );
          }
          session.remove(ff);
        } else {
          session.transfer(
            session.putAttribute(ff, 'found', String(text.includes(needle))),
            text.includes(needle) ? 'matched' : 'unmatched',
          );
        }
      }
      session.commit();
    },
  };
}

describe('TestRunner (databridge/sdk/testing)', () => {
  test('routes, attributes, content, and the lineage', async (t) => {
    const runner = await TestRunner.of(finder, { properties: { Needle: 'hay' } });
    t.after(() => runner.close());
    runner.enqueue('a haystack', { filename: 'a' }).enqueue('nothing here', { filename: 'b' });
    await runner.run();
    runner.assertTransferCount('matched', 1);
    runner.assertTransferCount('unmatched', 1);
    const [hit] = runner.flowFiles('matched');
    hit!.assertAttributeEquals('found', 'true');
    hit!.assertAttributeEquals('filename', 'a');
    hit!.assertContentEquals('a haystack');
    assert.throws(() => runner.assertAllFlowFilesTransferred('matched'), /went to "unmatched"/);
    const types = runner.lineage().map((e) => e.type);
    assert.deepEqual(types, ['ATTRIBUTES_MODIFIED', 'ROUTE', 'ATTRIBUTES_MODIFIED', 'ROUTE']);
    assert.equal(runner.isolation, 'inline');
  });

  test('children are forks of their parent; the parent is dropped', async (t) => {
    const runner = await TestRunner.of(finder, { properties: { Needle: 'x', Split: 'true' } });
    t.after(() => runner.close());
    runner.enqueue('ax|b|xc');
    await runner.run();
    runner.assertTransferCount('matched', 2);
    assert.deepEqual(
      runner.flowFiles('matched').map((f) => f.text()),
      ['ax', 'xc'],
    );
    const lineage = runner.lineage();
    assert.equal(lineage.filter((e) => e.type === 'FORK').length, 3);
    assert.equal(lineage.filter((e) => e.type === 'DROP').length, 1);
  });

  test('bad properties are findings, and run() refuses them with a clear error', async (t) => {
    const runner = await TestRunner.of(finder, { properties: { Split: 'maybe' } });
    t.after(() => runner.close());
    await runner.assertNotValid();
    const findings = await runner.validate();
    assert.ok(findings.some((f) => f.property === 'Needle'));
    assert.ok(findings.some((f) => f.property === 'Split'));
    await assert.rejects(runner.run(), (e: Error & { code?: string }) => e.code === 'PROCESSOR_INVALID');
    assert.throws(() => runner.setProperty('Needle', 'x'), /before the first run/);
  });

  test('a failing trigger rolls back: the input waits again and the error is kept', async (t) => {
    const runner = await TestRunner.of(finder, { properties: { Needle: 'x' }, batchSize: 1 });
    t.after(() => runner.close());
    runner.enqueue('boom');
    await runner.run(2);
    assert.equal(runner.errors().length, 2);
    assert.match(runner.errors()[0]!.message, /boom/);
    assert.equal(runner.queued(), 1);
    runner.assertTransferCount('matched', 0);
  });

  test('a plugin folder runs in its real sandbox', async (t) => {
    const runner = await TestRunner.forPlugin(join(ROOT, 'examples', 'plugins', 'acme.upper'), 'UpperCase');
    t.after(() => runner.close());
    assert.equal(runner.isolation, 'process');
    runner.enqueue('shout', { filename: 'x.txt' });
    await runner.run();
    runner.assertAllFlowFilesTransferred('success', 1);
    runner.flowFiles('success')[0]!.assertContentEquals('SHOUT');
    runner.flowFiles('success')[0]!.assertAttributeEquals('filename', 'x.txt');
    assert.deepEqual(
      runner.lineage().map((e) => e.type),
      ['CONTENT_MODIFIED', 'ROUTE'],
    );
  });
});
