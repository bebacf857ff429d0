/**
 * The process sandbox's channel (frames on descriptor 3, content lanes on 4
 * and 5): batches of any size cross whole with several in flight, and a
 * plugin that writes to the channel itself only ends its own sandbox, with
 * every FlowFile still there.
 */

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { createPluginManager, type PluginManager } from '../../src/index.ts';
import { FrameReader, frame } from '../../src/sandbox/channel.ts';
import { type Emitted, startThrough } from '../flow-harness.ts';
import { tempDir, until } from '../helpers.ts';
import { beforeLoad, makePlugin, newKey, sign, trustKey } from '../plugin-fixtures.ts';

function code(body: string): string {
  return `export default { processors: { Echo: () => ({
  getInfo: () => ({ name: 'Echo', version: '1.0.0', description: 'test', tags: [], properties: [], relationships: [{ name: 'success' }] }),
  async onTrigger(ctx, session) {
    ${body}
  },
}) } };\n`;
}

async function manager(t: import('node:test').TestContext, body: string): Promise<PluginManager> {
  const dir = tempDir(t);
  const dirs = { dataDir: join(dir, 'data'), pluginDir: join(dir, 'plugins') };
  const key = newKey();
  await sign(
    makePlugin(dirs.pluginDir, {
      id: 'acme.echo',
      code: code(body),
      processors: ['Echo'],
      manifest: { limits: { maxConcurrentTasks: 4, maxExecutionMS: 5000, maxMemoryMB: 128 } },
    }),
    key,
  );
  await beforeLoad(dirs, (m) => trustKey(m, key));
  const m = await createPluginManager({ ...dirs, logLevel: false });
  t.after(() => m.shutdown());
  assert.equal(m.sandboxOf('acme.echo')?.mode, 'process');
  return m;
}

test('frames: split anywhere and joined, each delivered whole; one past the cap is refused before its bytes', () => {
  const bodies: string[] = [];
  const reader = new FrameReader(1024, (b) => bodies.push(b.toString()));
  const bytes = Buffer.concat([frame({ a: 1 }), frame({ b: 'x'.repeat(300) }), frame([])]);
  for (let i = 0; i < bytes.length; i += 7) reader.push(bytes.subarray(i, i + 7));
  assert.deepEqual(
    bodies.map((b) => JSON.parse(b)),
    [{ a: 1 }, { b: 'x'.repeat(300) }, []],
  );
  const header = Buffer.alloc(4);
  header.writeUInt32BE(1025);
  assert.throws(() => reader.push(header), /a frame of 1025 bytes/);
});

test('a process sandbox: batches of mixed sizes cross whole, several in flight, several commits a trigger', async (t) => {
  // each input goes on with its content doubled, one commit per FlowFile
  const m = await manager(
    t,
    `for (let ff = session.get(); ff; ff = session.get()) {
      const bytes = await session.read(ff);
      const out = new Uint8Array(bytes.length * 2);
      out.set(bytes); out.set(bytes, bytes.length);
      session.transfer(session.putAttribute(session.write(ff, out), 'seen', String(bytes.length)), 'success');
      session.commit();
    }`,
  );
  const sizes = [0, 1, 1024, 300_000, 17, 2_000_000, 5, 65_536, 3];
  const inputs = Array.from({ length: 45 }, (_, i) => ({
    content: Buffer.alloc(sizes[i % sizes.length]!, 97 + (i % 26)),
    attributes: { n: String(i) },
  }));
  const { out } = await startThrough(t, m, inputs, 'Echo', {
    id: 'echo',
    schedule: { batchSize: 4, concurrentTasks: 4 },
  });
  await until('every FlowFile through', () => out.length === inputs.length, 30_000);
  const byN = new Map(out.map((e: Emitted) => [e.attributes.n, e]));
  assert.equal(byN.size, inputs.length, 'none twice');
  for (const [i, input] of inputs.entries()) {
    const e = byN.get(String(i))!;
    assert.equal(e.attributes.seen, String(input.content.length));
    assert.ok(e.content.equals(Buffer.concat([input.content, input.content])), `content of ${i}`);
  }
});

for (const [what, write] of [
  ['a frame past the cap', 'Buffer.from([0xff, 0xff, 0xff, 0xff])'],
  [
    'a frame that is not JSON',
    "(() => { const b = Buffer.from('{nope'); const h = Buffer.alloc(4); h.writeUInt32BE(b.length); return Buffer.concat([h, b]); })()",
  ],
  [
    'a reply to a trigger it was never sent',
    "(() => { const b = Buffer.from(JSON.stringify({ type: 'triggered', id: 987654, json: 10 })); const h = Buffer.alloc(4); h.writeUInt32BE(b.length); return Buffer.concat([h, b]); })()",
  ],
] as const) {
  test(`a plugin that writes ${what} to its channel ends its own sandbox; the batch rolls back; the host goes on`, async (t) => {
    const m = await manager(
      t,
      `const ff = session.get();
      if (ff && ff.attributes.evil) process.getBuiltinModule('fs').writeSync(3, ${write});
      if (ff) session.transfer(ff, 'success');
      session.commit();`,
    );
    const inputs: { attributes: Record<string, string> }[] = [
      { attributes: { n: '0' } },
      { attributes: { n: '1' } },
      { attributes: { n: '2', evil: '1' } },
    ];
    const { flow, out } = await startThrough(t, m, inputs, 'Echo', {
      id: 'echo',
      penaltyDuration: '50 ms',
      schedule: { batchSize: 1, concurrentTasks: 1 },
    });
    await until('the sandbox ended for breaking the protocol', () =>
      m.alerts().some((a) => a.plugin === 'acme.echo' && /broke the protocol/.test(a.message)),
    );
    await until('the well-behaved FlowFiles delivered', () => out.length === 2);
    await flow.stop('echo');
    const queued = flow.stats().connections.reduce((n, c) => n + c.queued, 0);
    assert.equal(out.length + queued, inputs.length, 'every FlowFile delivered or still queued');
    assert.deepEqual(out.map((e) => e.attributes.n).sort(), ['0', '1']);
  });
}
