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
import { decodeTriggered, encodeTriggered } from '../../src/sandbox/codec.ts';
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

async function manager(
  t: import('node:test').TestContext,
  body: string,
  /** Where the host's log lines go, when the test reads them. */
  logLines?: string[],
): Promise<PluginManager> {
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
  const m = await createPluginManager({
    ...dirs,
    ...(logLines
      ? { logLevel: 'info', logDestination: { write: (l: string) => void logLines.push(l) } }
      : { logLevel: false }),
  });
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

test('a process sandbox: children, clones of part of an input, empty content and removals cross as the session made them', async (t) => {
  // per input: a child with "<n>:" + its content, a clone of its first 3 bytes, an empty child; the input removed
  const m = await manager(
    t,
    `for (let ff = session.get(); ff; ff = session.get()) {
      const bytes = await session.read(ff);
      const child = session.putAttribute(session.createChild(ff), 'kind', 'child');
      const prefix = new TextEncoder().encode(ff.attributes.n + ':');
      const out = new Uint8Array(prefix.length + bytes.length);
      out.set(prefix); out.set(bytes, prefix.length);
      session.transfer(session.write(child, out), 'success');
      session.transfer(session.putAttribute(session.clone(ff, { offset: 0, length: 3 }), 'kind', 'clone'), 'success');
      session.transfer(session.putAttribute(session.createChild(ff), 'kind', 'empty'), 'success');
      session.remove(ff);
    }
    session.commit();`,
  );
  const inputs = Array.from({ length: 12 }, (_, i) => ({ content: `content ${i}`, attributes: { n: String(i) } }));
  const { out } = await startThrough(t, m, inputs, 'Echo', {
    id: 'echo',
    schedule: { batchSize: 5, concurrentTasks: 2 },
  });
  await until('every output through', () => out.length === inputs.length * 3);
  for (const [i, input] of inputs.entries()) {
    const mine = out.filter((e) => e.attributes.n === String(i));
    const kind = (k: string) => mine.find((e) => e.attributes.kind === k)!;
    assert.equal(kind('child').content.toString(), `${i}:${input.content}`);
    assert.equal(kind('clone').content.toString(), input.content.slice(0, 3));
    assert.equal(kind('empty').content.length, 0);
    assert.equal(kind('child').parentIds.length, 1);
    assert.notEqual(kind('child').id, kind('empty').id);
  }
});

test('a process sandbox: a child of a FlowFile made and removed in the same session crosses, no protocol violation', async (t) => {
  // the scratch FlowFile never reaches the host: the runtime leaves it out of its child's parents
  const m = await manager(
    t,
    `for (let ff = session.get(); ff; ff = session.get()) {
      const scratch = session.createChild(ff);
      const out = session.putAttribute(session.createChild([ff, scratch]), 'kind', 'grandchild');
      session.remove(scratch);
      session.remove(ff);
      session.transfer(out, 'success');
    }
    session.commit();`,
  );
  const inputs = Array.from({ length: 6 }, (_, i) => ({ content: `c${i}`, attributes: { n: String(i) } }));
  const { out } = await startThrough(t, m, inputs, 'Echo', { id: 'echo', schedule: { batchSize: 3 } });
  await until('every output through', () => out.length === inputs.length);
  for (const e of out) {
    assert.equal(e.attributes.kind, 'grandchild');
    assert.equal(e.parentIds.length, 1, 'its input, not the scratch FlowFile');
  }
  assert.deepEqual(
    m.alerts().filter((a) => a.code === 'SANDBOX_PROTOCOL_VIOLATION'),
    [],
    'the runtime sends only what the host accepts',
  );
});

test('a reply is read strictly: inputs by index in range, a new FlowFile with its id, attributes as strings', () => {
  const inputs = [{ id: 'a', attributes: {}, size: 3, entryDate: 1, lineageStartDate: 1, parentIds: [] }];
  const at = new Map([['a', 0]]);
  const good = JSON.parse(
    encodeTriggered(
      {
        type: 'triggered',
        id: 7,
        outcomes: [
          {
            outputs: [
              {
                id: 'a',
                attributes: null,
                entryDate: 1,
                lineageStartDate: 1,
                parentIds: [],
                content: { kind: 'new', index: 0, offset: 0, length: 3 },
                relationship: 'success',
                penalize: false,
              },
            ],
            consumed: ['a'],
            packed: new ArrayBuffer(3),
            lengths: [3],
          },
        ],
        leftovers: [],
        yielded: false,
        error: null,
      },
      at,
      ['success'],
    ),
  );
  const decoded = decodeTriggered(good, 7, inputs, ['success']);
  assert.equal(decoded.outcomes[0]!.outputs[0]!.id, 'a');
  assert.deepEqual(decoded.outcomes[0]!.consumed, ['a']);
  const bad = (edit: (j: { outcomes: unknown[][][] }) => void, why: RegExp) => {
    const j = structuredClone(good);
    edit(j);
    assert.throws(() => decodeTriggered(j, 7, inputs, ['success']), why);
  };
  bad((j) => ((j.outcomes[0]![0]![0] as unknown[])[0] = 1), /an input index 1/);
  bad((j) => ((j.outcomes[0]![0]![0] as unknown[])[1] = 2), /a relationship index 2/);
  bad((j) => ((j.outcomes[0]![0]![0] as unknown[])[0] = -1), /a new FlowFile without its id/);
  bad((j) => ((j.outcomes[0]![0]![0] as unknown[])[3] = { x: 1 }), /attribute x not a string/);
  bad((j) => ((j.outcomes[0]![0]![0] as unknown[])[5] = 4), /a buffer index 4/);
  bad((j) => (j.outcomes[0]![1] = [0.5]), /a consumed index 0.5/);
  assert.throws(() => decodeTriggered(good, 8, inputs, ['success']), /no reply to trigger 8/);
});

for (const [what, write] of [
  ['a frame past the cap', 'Buffer.from([0xff, 0xff, 0xff, 0xff])'],
  [
    'a frame that is not JSON',
    "(() => { const b = Buffer.from('{nope'); const h = Buffer.alloc(4); h.writeUInt32BE(b.length); return Buffer.concat([h, b]); })()",
  ],
  [
    'a reply of another kind to the trigger it runs',
    // the plugin cannot know its trigger's id: it answers every one up to 200
    "Buffer.concat(Array.from({ length: 200 }, (_, i) => { const b = Buffer.from(JSON.stringify({ type: 'created', id: i + 1, findings: [] })); const h = Buffer.alloc(4); h.writeUInt32BE(b.length); return Buffer.concat([h, b]); }))",
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

/**
 * Runs three FlowFiles one at a time through a plugin whose code, on the one
 * marked evil, does `evil`: its sandbox ends with a protocol violation
 * saying `why`, and every FlowFile is delivered or still queued.
 */
async function endsItsOwnSandbox(t: import('node:test').TestContext, evil: string, why: RegExp): Promise<void> {
  const m = await manager(
    t,
    `const ff = session.get();
    if (ff && ff.attributes.evil) { ${evil} }
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
  const alert = m.alerts().find((a) => a.plugin === 'acme.echo' && /broke the protocol/.test(a.message))!;
  assert.match(alert.message, why);
  await until('the well-behaved FlowFiles delivered', () => out.length === 2);
  await flow.stop('echo');
  const queued = flow.stats().connections.reduce((n, c) => n + c.queued, 0);
  assert.equal(out.length + queued, inputs.length, 'every FlowFile delivered or still queued');
  assert.deepEqual(out.map((e) => e.attributes.n).sort(), ['0', '1']);
}

/**
 * Finding 6 (attack run 2026-12-02): makes the runtime's next reply claim
 * `claim` bytes of new content for its output, in an up lane grown to 16 GiB
 * of holes (ftruncate: it costs the sandbox nothing). Its head frame says
 * the same, so the lengths add up.
 */
const sparseReply = (claim: number) => `
  const fs = process.getBuiltinModule('fs');
  const stringify = JSON.stringify;
  JSON.stringify = function (v, ...rest) {
    if (v && v.type === 'triggered') {
      if (Array.isArray(v.outcomes)) {
        fs.ftruncateSync(5, 8 * 2 ** 31);
        for (const o of v.outcomes) { o[2] = [${claim}]; for (const out of o[0]) { out[4] = 2; out[5] = 0; out[6] = 0; out[7] = ${claim}; } }
      } else {
        v.content = ${claim};
        JSON.stringify = stringify;
      }
    }
    return stringify.call(this, v, ...rest);
  };`;

test('a reply claiming content its sandbox never wrote (holes in a sparse lane) ends its sandbox; nothing is read', async (t) => {
  // 100 MiB: under the sandbox's memory limit (128 MiB), so only the lane's blocks tell
  await endsItsOwnSandbox(t, sparseReply(100 * 1024 * 1024), /holding \d+ bytes written/);
});

test("a reply claiming more content than its sandbox's memory limit ends its sandbox before anything is read", async (t) => {
  await endsItsOwnSandbox(t, sparseReply(200 * 1024 * 1024), /content bytes: 209715200/);
});

/** A frame of `body` (a JS expression of a string) as the plugin writes it, with the length prefix it says. */
const rawFrame = (body: string, prefix = 'b.length') =>
  `const b = Buffer.from(${body}); const h = Buffer.alloc(4); h.writeUInt32BE(${prefix});
  process.getBuiltinModule('fs').writeSync(3, Buffer.concat([h, b]));`;

test('a log frame past its cap ends its sandbox, though its message is within the protocol bounds', async (t) => {
  // 40 Ki characters: under BOUNDS.logMessage (64 Ki), over a log frame's 32 KiB
  const log = `JSON.stringify({ type: 'log', level: 'info', message: 'x'.repeat(40 * 1024), fields: {}, plugin: 'acme.echo' })`;
  await endsItsOwnSandbox(t, rawFrame(log), /a log frame of \d+ bytes \(at most 32768\)/);
});

test('a length prefix past the cap ends its sandbox at once: the host keeps none of what follows', async (t) => {
  // 1 MiB announced (64 MiB passed before), and only a little sent: the host does not wait for the rest
  await endsItsOwnSandbox(t, rawFrame("'[{},{},{}'", '1024 * 1024'), /a frame of 1048576 bytes \(at most 262144\)/);
});

test('a plugin that logs without end: the host logs at most a bounded rate of it and says how many it dropped', async (t) => {
  const lines: string[] = [];
  const m = await manager(
    t,
    `const ff = session.get();
    if (ff && ff.attributes.loud) for (let i = 0; i < 3000; i++) session.logger.info('flood ' + i);
    if (ff) session.transfer(ff, 'success');
    session.commit();`,
    lines,
  );
  const { out } = await startThrough(t, m, [{ attributes: { loud: '1' } }], 'Echo', { id: 'echo' });
  await until('the FlowFile through', () => out.length === 1);
  const logged = () => lines.map((l) => JSON.parse(l) as { msg: string; code?: string; dropped?: number });
  await until('the dropped messages counted', () => logged().some((l) => l.code === 'SANDBOX_LOG_DROPPED'));
  const passed = logged().filter((l) => /^flood \d+$/.test(l.msg)).length;
  const dropped = logged()
    .filter((l) => l.code === 'SANDBOX_LOG_DROPPED')
    .reduce((n, l) => n + l.dropped!, 0);
  assert.ok(dropped > 0 && passed < 3000, `${passed} logged, ${dropped} dropped`);
  assert.equal(passed + dropped, 3000, 'every message logged or counted as dropped');
  assert.equal(m.alerts().filter((a) => a.code === 'SANDBOX_PROTOCOL_VIOLATION').length, 0, 'logging is no violation');
});

test("a plugin that floods its stderr: the host's log gets lines cut to 8 KiB, at a bounded rate, and a count of the rest", async (t) => {
  const lines: string[] = [];
  const m = await manager(
    t,
    `const ff = session.get();
    if (ff && ff.attributes.loud) {
      process.stderr.write('y'.repeat(100 * 1024) + '\\n');
      for (let i = 0; i < 5000; i++) process.stderr.write('noise ' + i + '\\n');
    }
    if (ff) session.transfer(ff, 'success');
    session.commit();`,
    lines,
  );
  const { out } = await startThrough(t, m, [{ attributes: { loud: '1' } }], 'Echo', { id: 'echo' });
  await until('the FlowFile through', () => out.length === 1);
  const sandbox = () =>
    lines.map((l) => (JSON.parse(l) as { msg: string }).msg).filter((s) => s.startsWith('sandbox: '));
  await until('the dropped lines counted', () => sandbox().some((s) => /^sandbox: dropped \d+ lines/.test(s)));
  const long = sandbox().find((s) => s.startsWith('sandbox: yyy'))!;
  assert.ok(long.length < 8 * 1024 + 100, `a line of ${long.length} characters`);
  assert.match(long, /… \(94208 more bytes cut\)$/);
  const noise = sandbox().filter((s) => /^sandbox: noise \d+$/.test(s)).length;
  const dropped = sandbox()
    .map((s) => /^sandbox: dropped (\d+) lines/.exec(s))
    .reduce((n, r) => n + (r ? Number(r[1]) : 0), 0);
  assert.ok(noise < 5000, `${noise} lines logged`);
  assert.equal(noise + 1 + dropped, 5001, 'every line logged or counted as dropped');
});
